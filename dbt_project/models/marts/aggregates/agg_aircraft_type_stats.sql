-- Make and model of the first aircraft: events and the share that were fatal.
with fact_accidents as (
    select * from {{ ref('fact_accidents') }}
)

select
    f.make,
    coalesce(f.model, '') as model,
    {{ ntsb_fatal_counts() }}
from fact_accidents as f
where f.make is not null
group by 1, 2
