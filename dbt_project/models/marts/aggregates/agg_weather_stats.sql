-- Basic weather condition and light: events and the share that were fatal.
with fact_accidents as (
    select * from {{ ref('fact_accidents') }}
),

dim_weather as (
    select * from {{ ref('dim_weather') }}
)

select
    coalesce(w.weather_condition, '') as weather_condition,
    coalesce(w.light_condition, '') as light_condition,
    max(w.weather_condition_label) as weather_condition_label,
    max(w.light_condition_label) as light_condition_label,
    {{ ntsb_fatal_counts() }}
from fact_accidents as f
inner join dim_weather as w on f.weather_key = w.weather_key
group by 1, 2
