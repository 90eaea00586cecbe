-- NTSB's code tables (ct_iaids): one row per (code table, code).
{%- set raw = ntsb_raw('ct_iaids') %}
select
    lower(trim({{ ntsb_col(raw, 'ct_name', 'string') }})) as code_table,
    {{ ntsb_code(ntsb_col(raw, 'code_iaids', 'string')) }} as code,
    {{ ntsb_text(ntsb_col(raw, 'meaning', 'string')) }} as meaning
from {{ ntsb_from(raw) }}
