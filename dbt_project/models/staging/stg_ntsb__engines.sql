{%- set raw = ntsb_raw('engines') %}
with src as (
    select
        {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
        {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
        {{ ntsb_col(raw, 'eng_no', 'int') }} as engine_no,
        {{ ntsb_code(ntsb_col(raw, 'eng_type', 'string')) }} as engine_type,
        {{ ntsb_text(ntsb_col(raw, 'eng_mfgr', 'string')) }} as engine_make,
        {{ ntsb_text(ntsb_col(raw, 'eng_model', 'string')) }} as engine_model,
        {{ ntsb_col(raw, 'power_units', 'int') }} as power_units,
        {{ ntsb_code(ntsb_col(raw, 'hp_or_lbs', 'string')) }} as power_unit_kind,
        {{ ntsb_col(raw, 'eng_time_total', 'float') }} as engine_hours_total,
        {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
    from {{ ntsb_from(raw) }}
)
select
    src.*,
    {{ ntsb_label('engines', 'eng_type', 'src.engine_type') }} as engine_type_label
from src
