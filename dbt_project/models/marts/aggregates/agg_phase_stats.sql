-- Phase of flight of the first aircraft, labelled from the data dictionary.
select
    f.phase_of_flight,
    {{ ntsb_label('aircraft', 'phase_flt_spec', 'f.phase_of_flight') }} as phase_of_flight_label,
    {{ ntsb_fatal_counts() }}
from {{ ref('fact_accidents') }} as f
group by 1, 2
