-- Phase of flight of the first aircraft (labelled from the data dictionary).
{{ config(indexes=[{'columns': ['phase_of_flight'], 'unique': true}]) }}
select
    coalesce(f.phase_of_flight, '') as phase_of_flight,
    max(f.phase_of_flight_label) as phase_of_flight_label,
    {{ ntsb_fatal_counts() }}
from {{ ref('fact_accidents') }} as f
group by 1
