-- One label per (table, column, code) from NTSB's code sets (raw._code_sets: the data
-- dictionary, ct_iaids, ct_seqevt, Country and states of every release, merged with the bundled
-- baseline at load time; ntsb_assets/lib/codes.py). A table with an index on PostgreSQL: every
-- labelled column looks codes up here, row by row.
{%- set raw = ntsb_raw('_code_sets') %}
select
    {{ ntsb_col(raw, 'table_name', 'string') }} as table_name,
    {{ ntsb_col(raw, 'column_name', 'string') }} as column_name,
    {{ ntsb_col(raw, 'code', 'string') }} as code,
    {{ ntsb_col(raw, 'meaning', 'string') }} as meaning,
    {{ ntsb_col(raw, 'source', 'string') }} as source,
    {{ ntsb_col(raw, 'release_id', 'string') }} as release_id
from {{ ntsb_from(raw) }}
