-- Every finding and occurrence NTSB coded for an aircraft, in one shape, from both codings:
--   since 2008: Findings (code, description, cause/factor) and Events_Sequence (occurrences
--               with their phase of flight, coded as phase + occurrence);
--   before:     seq_of_events (subject codes, cause/factor) within Occurrences (occurrence
--               code and phase of flight).
-- A table: dim_causes and the bridge both read it, and its labels are looked up row by row.
-- Incremental: the events changed since the last run (macros/incremental.sql).
{%- set since = ntsb_since() %}
with findings as (
    select
        'finding' as cause_kind,
        ev_id,
        aircraft_key,
        cast(null as {{ ntsb_type('int') }}) as occurrence_no,
        finding_no as seq_no,
        finding_code as cause_code,
        finding_description as cause_description,
        split_part(finding_description, '-', 1) as category,
        cause_factor,
        cast(null as {{ ntsb_type('string') }}) as occurrence_code,
        cast(null as {{ ntsb_type('string') }}) as occurrence_label,
        cast(null as {{ ntsb_type('string') }}) as phase_of_flight,
        cast(null as {{ ntsb_type('string') }}) as phase_of_flight_label
    from {{ ntsb_changed_rows(ref('stg_ntsb__findings'), since) }} as f
),

occurrences_since_2008 as (
    select
        'occurrence' as cause_kind,
        ev_id,
        aircraft_key,
        occurrence_no,
        cast(null as {{ ntsb_type('int') }}) as seq_no,
        occurrence_code as cause_code,
        occurrence_description as cause_description,
        'Occurrence' as category,
        cast(null as {{ ntsb_type('string') }}) as cause_factor,
        occurrence_code,
        regexp_replace(occurrence_description, '^[^-]*-', '') as occurrence_label,
        phase_no as phase_of_flight,
        split_part(occurrence_description, '-', 1) as phase_of_flight_label
    from {{ ntsb_changed_rows(ref('stg_ntsb__events_sequence'), since) }} as f
),

occurrences_before_2008 as (
    select
        'occurrence' as cause_kind,
        ev_id,
        aircraft_key,
        occurrence_no,
        cast(null as {{ ntsb_type('int') }}) as seq_no,
        occurrence_code as cause_code,
        occurrence_label as cause_description,
        'Occurrence' as category,
        cast(null as {{ ntsb_type('string') }}) as cause_factor,
        occurrence_code,
        occurrence_label,
        phase_of_flight,
        phase_of_flight_label
    from {{ ntsb_changed_rows(ref('stg_ntsb__occurrences'), since) }} as o
),

findings_before_2008 as (
    select
        'finding' as cause_kind,
        s.ev_id,
        s.aircraft_key,
        s.occurrence_no,
        s.seq_event_no as seq_no,
        s.subject_code as cause_code,
        s.subject_label as cause_description,
        s.group_label as category,
        s.cause_factor,
        o.occurrence_code,
        o.occurrence_label,
        o.phase_of_flight,
        o.phase_of_flight_label
    from {{ ntsb_changed_rows(ref('stg_ntsb__seq_of_events'), since) }} as s
    left join {{ ntsb_changed_rows(ref('stg_ntsb__occurrences'), since) }} as o
        on s.ev_id = o.ev_id and s.aircraft_key = o.aircraft_key and s.occurrence_no = o.occurrence_no
),

unioned as (
    select * from findings
    union all
    select * from occurrences_since_2008
    union all
    select * from occurrences_before_2008
    union all
    select * from findings_before_2008
)

select
    unioned.*,
    coalesce(cause_factor = 'cause', false) as in_probable_cause,
    {{ ntsb_hash_key(['cause_kind', 'cause_code', 'cause_description', 'category', 'cause_factor',
                      'occurrence_code', 'occurrence_label', 'phase_of_flight', 'phase_of_flight_label']) }} as cause_key,
    {{ ntsb_loaded_through() }} as loaded_through
from unioned
