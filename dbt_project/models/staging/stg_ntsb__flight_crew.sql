{%- set raw = ntsb_raw('flight_crew') %}
select
    {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
    {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
    {{ ntsb_col(raw, 'crew_no', 'int') }} as crew_no,
    {{ ntsb_code(ntsb_col(raw, 'crew_category', 'string')) }} as crew_category,
    {{ ntsb_col(raw, 'crew_age', 'int') }} as age,
    {{ ntsb_code(ntsb_col(raw, 'med_certf', 'string')) }} as medical_certificate,
    {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
from {{ ntsb_from(raw) }}
