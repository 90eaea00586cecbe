{%- set raw = ntsb_raw('ntsb_admin') %}
select
    {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
    {{ ntsb_code(ntsb_col(raw, 'rec_stat', 'string')) }} as record_status,
    {{ ntsb_col(raw, 'approval_date', 'timestamp') }} as approved_at,
    {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
from {{ ntsb_from(raw) }}
