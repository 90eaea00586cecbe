-- Make and model of the first aircraft: events and the share that were fatal.
{{ config(indexes=[{'columns': ['make', 'model'], 'unique': true}, {'columns': ['events']}]) }}
select
    f.make,
    coalesce(f.model, '') as model,
    {{ ntsb_fatal_counts() }}
from {{ ref('fact_accidents') }} as f
where f.make is not null
group by 1, 2
