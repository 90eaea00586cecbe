-- NTSB's multi-valued codes of aircraft: one row per (record, column, code), labelled from the
-- data dictionary.
{%- set raw = ntsb_raw('dt_aircraft') %}
with src as (
    select
        {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
        {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
        lower(trim({{ ntsb_col(raw, 'col_name', 'string') }})) as column_name,
        {{ ntsb_code(ntsb_col(raw, 'code', 'string')) }} as code,
        {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
    from {{ ntsb_from(raw) }}
)

select
    src.*,
    l.meaning as code_label
from src
left join {{ ref('stg_ntsb__code_labels') }} as l
    on l.table_name = 'dt_aircraft' and src.column_name = l.column_name and src.code = l.code
