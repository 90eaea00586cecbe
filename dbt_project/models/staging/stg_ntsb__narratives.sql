{%- set raw = ntsb_raw('narratives') %}
select
    {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
    {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
    {{ ntsb_text(ntsb_col(raw, 'narr_accp', 'string')) }} as narrative,
    {{ ntsb_text(ntsb_col(raw, 'narr_cause', 'string')) }} as probable_cause,
    {{ ntsb_col(raw, '_release_id', 'string') }} as release_id,
    {{ ntsb_col(raw, '_loaded_at', 'timestamp') }} as loaded_at
from {{ ntsb_from(raw) }}
