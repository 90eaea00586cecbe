{%- set raw = ntsb_raw('aircraft') %}
with src as (
    select
        {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
        {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
        {{ ntsb_code(ntsb_col(raw, 'regis_no', 'string')) }} as registration,
        {{ ntsb_code(ntsb_col(raw, 'far_part', 'string')) }} as far_part,
        {{ ntsb_code(ntsb_col(raw, 'damage', 'string')) }} as damage,
        {{ ntsb_code(ntsb_col(raw, 'acft_make', 'string')) }} as make,
        {{ ntsb_code(ntsb_col(raw, 'acft_model', 'string')) }} as model,
        {{ ntsb_code(ntsb_col(raw, 'acft_category', 'string')) }} as category,
        {{ ntsb_col(raw, 'num_eng', 'int') }} as engine_count,
        {{ ntsb_code(ntsb_col(raw, 'homebuilt', 'string')) }} as homebuilt,
        {{ ntsb_col(raw, 'acft_year', 'int') }} as year_built,
        {{ ntsb_code(ntsb_col(raw, 'phase_flt_spec', 'string')) }} as phase_of_flight,
        {{ ntsb_code(ntsb_col(raw, 'oper_sched', 'string')) }} as scheduled,
        {{ ntsb_code(ntsb_col(raw, 'type_fly', 'string')) }} as flight_purpose,
        {{ ntsb_col(raw, '_release_id', 'string') }} as release_id,
        {{ ntsb_col(raw, '_loaded_at', 'timestamp') }} as loaded_at
    from {{ ntsb_from(raw) }}
)
select
    src.*,
    {{ ntsb_label('aircraft', 'far_part', 'src.far_part') }} as far_part_label,
    {{ ntsb_label('aircraft', 'damage', 'src.damage') }} as damage_label,
    {{ ntsb_label('aircraft', 'acft_category', 'src.category') }} as category_label,
    {{ ntsb_label('aircraft', 'phase_flt_spec', 'src.phase_of_flight') }} as phase_of_flight_label,
    {{ ntsb_label('aircraft', 'type_fly', 'src.flight_purpose') }} as flight_purpose_label
from src
