-- State heat map: events, fatal events and the centroid of their coordinates.
with fact_accidents as (
    select * from {{ ref('fact_accidents') }}
)

select
    coalesce(country, '') as country,
    state,
    max(country_label) as country_label,
    max(state_label) as state_label,
    {{ ntsb_fatal_counts('is_fatal') }},
    sum(fatalities) as fatalities,
    avg(latitude) as centroid_latitude,
    avg(longitude) as centroid_longitude
from fact_accidents
where state is not null
group by 1, 2
