-- The sequence of events within each pre-2008 occurrence: subject, modifier, person, and
-- whether NTSB called it a cause or a factor.
{%- set raw = ntsb_raw('seq_of_events') %}
with src as (
    select
        {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
        {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
        {{ ntsb_col(raw, 'occurrence_no', 'int') }} as occurrence_no,
        {{ ntsb_col(raw, 'seq_event_no', 'int') }} as seq_event_no,
        {{ ntsb_code(ntsb_col(raw, 'group_code', 'string')) }} as group_code,
        {{ ntsb_code(ntsb_col(raw, 'subj_code', 'string')) }} as subject_code,
        {{ ntsb_code(ntsb_col(raw, 'modifier_code', 'string')) }} as modifier_code,
        {{ ntsb_code(ntsb_col(raw, 'person_code', 'string')) }} as person_code,
        case {{ ntsb_code(ntsb_col(raw, 'cause_factor', 'string')) }}
            when 'C' then 'cause' when 'F' then 'factor'
        end as cause_factor,
        {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
    from {{ ntsb_from(raw) }}
)

select
    src.*,
    {{ ntsb_label('seq_of_events', 'group_code', 'src.group_code') }} as group_label,
    {{ ntsb_label('seq_of_events', 'subj_code', 'src.subject_code') }} as subject_label,
    {{ ntsb_label('seq_of_events', 'modifier_code', 'src.modifier_code') }} as modifier_label,
    {{ ntsb_label('seq_of_events', 'person_code', 'src.person_code') }} as person_label
from src
