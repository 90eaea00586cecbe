-- Phase of flight of the first aircraft, labelled from the data dictionary.
select
    f.phase_of_flight,
    {{ ntsb_label('aircraft', 'phase_flt_spec', 'f.phase_of_flight') }} as phase_of_flight_label,
    count(*) as events,
    sum(case when f.is_fatal then 1 else 0 end) as fatal_events,
    {{ ntsb_round(ntsb_ratio('sum(case when f.is_fatal then 1 else 0 end)', 'count(*)'), 4) }} as fatal_rate
from {{ ref('fact_accidents') }} as f
group by 1, 2
