-- One label per (table, column, code) from NTSB's data dictionary. The dictionary repeats
-- some codes with different wording; the first wording in sort order wins. A table with an
-- index on PostgreSQL: every labelled column looks codes up here, row by row.
{{ config(materialized='table', indexes=[{'columns': ['table_name', 'column_name', 'code'], 'unique': true}]) }}
{%- set raw = ntsb_raw('eadmspub_datadictionary') %}
select
    lower(trim({{ ntsb_col(raw, 'table', 'string') }})) as table_name,
    lower(trim({{ ntsb_col(raw, 'column', 'string') }})) as column_name,
    upper(trim({{ ntsb_col(raw, 'code_iaids', 'string') }})) as code,
    min(trim({{ ntsb_col(raw, 'meaning', 'string') }})) as meaning
from {{ ntsb_from(raw) }}
where trim({{ ntsb_col(raw, 'code_iaids', 'string') }}) <> ''
group by 1, 2, 3
