{%- set raw = ntsb_raw('flight_time') %}
select
    {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
    {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
    {{ ntsb_col(raw, 'crew_no', 'int') }} as crew_no,
    {{ ntsb_code(ntsb_col(raw, 'flight_type', 'string')) }} as flight_type,
    {{ ntsb_code(ntsb_col(raw, 'flight_craft', 'string')) }} as flight_craft,
    {{ ntsb_col(raw, 'flight_hours', 'float') }} as flight_hours
from {{ ntsb_from(raw) }}
