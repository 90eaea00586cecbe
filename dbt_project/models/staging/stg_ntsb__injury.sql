{%- set raw = ntsb_raw('injury') %}
select
    {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
    {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
    {{ ntsb_code(ntsb_col(raw, 'inj_person_category', 'string')) }} as person_category,
    {{ ntsb_code(ntsb_col(raw, 'injury_level', 'string')) }} as injury_level,
    {{ ntsb_col(raw, 'inj_person_count', 'int') }} as person_count,
    {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
from {{ ntsb_from(raw) }}
