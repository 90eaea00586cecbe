-- Phase of flight of the first aircraft (labelled from the data dictionary).
with fact_accidents as (
    select * from {{ ref('fact_accidents') }}
)

select
    coalesce(f.phase_of_flight, '') as phase_of_flight,
    max(f.phase_of_flight_label) as phase_of_flight_label,
    {{ ntsb_fatal_counts() }}
from fact_accidents as f
group by 1
