-- Occurrences of events from 2008 on: code (phase + occurrence), description, and whether
-- it is the event's defining occurrence.
{%- set raw = ntsb_raw('events_sequence') %}
select
    {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
    {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
    {{ ntsb_col(raw, 'occurrence_no', 'int') }} as occurrence_no,
    {{ ntsb_col(raw, 'eventsoe_no', 'string') }} as eventsoe_no,
    {{ ntsb_code(ntsb_col(raw, 'occurrence_code', 'string')) }} as occurrence_code,
    {{ ntsb_text(ntsb_col(raw, 'occurrence_description', 'string')) }} as occurrence_description,
    {{ ntsb_code(ntsb_col(raw, 'phase_no', 'string')) }} as phase_no,
    coalesce({{ ntsb_col(raw, 'defining_ev', 'bool') }}, false) as is_defining_event,
    {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
from {{ ntsb_from(raw) }}
