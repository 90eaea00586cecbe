select
    w.weather_condition,
    w.light_condition,
    {{ ntsb_fatal_counts() }}
from {{ ref('fact_accidents') }} as f
join {{ ref('dim_weather') }} as w on w.weather_key = f.weather_key
group by 1, 2
