{%- set raw = ntsb_raw('states') %}
select
    {{ ntsb_code(ntsb_col(raw, 'state', 'string')) }} as state,
    {{ ntsb_text(ntsb_col(raw, 'name', 'string')) }} as state_name,
    {{ ntsb_code(ntsb_col(raw, 'faa_region', 'string')) }} as faa_region
from {{ ntsb_from(raw) }}
