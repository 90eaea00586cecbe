-- One row per distinct place events happened at (country, state, city, nearest airport).
with dimension_keys as (
    select * from {{ ref('int_events__dimension_keys') }}
),

place as (
    select distinct
        location_key,
        country,
        state,
        city,
        airport_id,
        airport_name,
        latitude,
        longitude
    from dimension_keys
)

select
    location_key,
    country,
    {{ ntsb_label('events', 'ev_country', 'country') }} as country_label,
    state,
    {{ ntsb_label('events', 'ev_state', 'state') }} as state_label,
    city,
    airport_id,
    airport_name,
    latitude,
    longitude
from place
