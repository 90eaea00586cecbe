-- Basic weather condition and light: events and the share that were fatal.
{{ config(indexes=[{'columns': ['weather_condition', 'light_condition'], 'unique': true}]) }}
select
    coalesce(w.weather_condition, '') as weather_condition,
    coalesce(w.light_condition, '') as light_condition,
    max(w.weather_condition_label) as weather_condition_label,
    max(w.light_condition_label) as light_condition_label,
    {{ ntsb_fatal_counts() }}
from {{ ref('fact_accidents') }} as f
inner join {{ ref('dim_weather') }} as w on f.weather_key = w.weather_key
group by 1, 2
