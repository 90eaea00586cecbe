-- Make and model: events and the share that were fatal.
select
    a.make,
    a.model,
    count(*) as events,
    sum(case when f.is_fatal then 1 else 0 end) as fatal_events,
    {{ ntsb_round(ntsb_ratio('sum(case when f.is_fatal then 1 else 0 end)', 'count(*)'), 4) }} as fatal_rate
from {{ ref('fact_accidents') }} as f
join {{ ref('int_aircraft__first_per_event') }} as a on a.ev_id = f.ev_id
where a.make is not null
group by 1, 2
