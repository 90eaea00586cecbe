-- Weather at the event, in buckets an analyst can group by.
with dimension_keys as (
    select * from {{ ref('int_events__dimension_keys') }}
)

select distinct
    weather_key,
    weather_condition,
    weather_condition_label,
    light_condition,
    light_condition_label,
    visibility_bucket,
    wind_bucket,
    temperature_bucket
from dimension_keys
