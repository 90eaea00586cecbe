-- State heat map: events, fatal events and the centroid of their coordinates.
select
    country,
    state,
    count(*) as events,
    sum(case when is_fatal then 1 else 0 end) as fatal_events,
    sum(fatalities) as fatalities,
    avg(latitude) as centroid_latitude,
    avg(longitude) as centroid_longitude
from {{ ref('fact_accidents') }}
where state is not null
group by 1, 2
