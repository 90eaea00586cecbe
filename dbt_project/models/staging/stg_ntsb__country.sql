{%- set raw = ntsb_raw('country') %}
select
    {{ ntsb_code(ntsb_col(raw, 'country_code', 'string')) }} as country_code,
    {{ ntsb_text(ntsb_col(raw, 'country_name', 'string')) }} as country_name
from {{ ntsb_from(raw) }}
