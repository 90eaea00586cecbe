-- One row per distinct place events happened at (country, state, city, nearest airport).
select distinct location_key, country, state, city, airport_id, airport_name, latitude, longitude
from {{ ref('int_events__dimension_keys') }}
