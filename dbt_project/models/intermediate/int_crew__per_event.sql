-- The pilot in command of each event's first aircraft (or the first crew member listed),
-- with total flight hours.
with crew as (
    select c.*,
           row_number() over (partition by c.ev_id
                              order by case when c.crew_category = 'PLT' then 0 else 1 end, c.aircraft_key, c.crew_no) as rn
    from {{ ref('stg_ntsb__flight_crew') }} as c
),
hours as (
    select ev_id, aircraft_key, crew_no, max(flight_hours) as total_hours
    from {{ ref('stg_ntsb__flight_time') }}
    where flight_type = 'TOTL' and flight_craft = 'ALL'
    group by 1, 2, 3
)
select crew.ev_id, crew.crew_category, crew.age, crew.medical_certificate, hours.total_hours
from crew
left join hours on hours.ev_id = crew.ev_id and hours.aircraft_key = crew.aircraft_key and hours.crew_no = crew.crew_no
where crew.rn = 1
