-- Make and model: events and the share that were fatal.
select
    a.make,
    a.model,
    {{ ntsb_fatal_counts() }}
from {{ ref('fact_accidents') }} as f
join {{ ref('int_aircraft__first_per_event') }} as a on a.ev_id = f.ev_id
where a.make is not null
group by 1, 2
