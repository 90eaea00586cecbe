-- Occurrences of events before 2008 (NTSB's older coding), with their phase of flight.
{%- set raw = ntsb_raw('occurrences') %}
with src as (
    select
        {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
        {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
        {{ ntsb_col(raw, 'occurrence_no', 'int') }} as occurrence_no,
        {{ ntsb_code(ntsb_col(raw, 'occurrence_code', 'string')) }} as occurrence_code,
        {{ ntsb_code(ntsb_col(raw, 'phase_of_flight', 'string')) }} as phase_of_flight,
        {{ ntsb_col(raw, 'altitude', 'int') }} as altitude_ft,
        {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
    from {{ ntsb_from(raw) }}
)
select
    src.*,
    {{ ntsb_label('occurrences', 'occurrence_code', 'src.occurrence_code') }} as occurrence_label,
    {{ ntsb_label('occurrences', 'phase_of_flight', 'src.phase_of_flight') }} as phase_of_flight_label
from src
