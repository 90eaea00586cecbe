-- Per event year: events by highest injury (fatal, serious, minor, none), fatalities,
-- fatalities per event.
with fact_accidents as (
    select * from {{ ref('fact_accidents') }}
)

select
    cast(extract(year from event_date) as integer) as year,
    count(*) as events,
    sum(case when is_fatal then 1 else 0 end) as fatal_events,
    sum(case when severity = 'SERS' then 1 else 0 end) as serious_events,
    sum(case when severity = 'MINR' then 1 else 0 end) as minor_events,
    sum(case when severity = 'NONE' then 1 else 0 end) as no_injury_events,
    sum(fatalities) as fatalities,
    {{ ntsb_round(ntsb_ratio('sum(fatalities)', 'count(*)'), 3) }} as fatalities_per_event
from fact_accidents
group by 1
