select
    w.weather_condition,
    w.light_condition,
    count(*) as events,
    sum(case when f.is_fatal then 1 else 0 end) as fatal_events,
    {{ ntsb_round(ntsb_ratio('sum(case when f.is_fatal then 1 else 0 end)', 'count(*)'), 4) }} as fatal_rate
from {{ ref('fact_accidents') }} as f
join {{ ref('dim_weather') }} as w on w.weather_key = f.weather_key
group by 1, 2
