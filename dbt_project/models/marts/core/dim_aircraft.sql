-- Aircraft with their history (from the snapshot): one row per version, valid_from/valid_to,
-- is_current for the version in force. A version's key comes from what it is (the release
-- that brought it and the attributes the snapshot checks), not from when the snapshot ran:
-- rebuilding from the same releases gives the same keys. Incremental: the versions of the
-- events changed since the last run (macros/incremental.sql).
{%- set since = ntsb_since() %}
select
    {{ ntsb_hash_key(['ev_id', 'aircraft_key', 'release_id', 'make', 'model', 'category', 'engine_type',
                      'engine_count', 'homebuilt', 'year_built', 'damage', 'far_part']) }} as aircraft_version_key,
    dbt_scd_id,
    ev_id,
    aircraft_key,
    make,
    model,
    category,
    category_label,
    engine_type,
    engine_type_label,
    engine_count,
    coalesce(homebuilt = 'Y', false) as is_homebuilt,
    year_built,
    damage,
    damage_label,
    dbt_valid_from as valid_from,
    dbt_valid_to as valid_to,
    dbt_valid_to is null as is_current,
    {{ ntsb_loaded_through() }} as loaded_through
from {{ ntsb_changed_rows(ref('snap_aircraft'), since) }} as s
