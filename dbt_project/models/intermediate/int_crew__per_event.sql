-- The pilot in command of each event (the first pilot listed, else the first crew member),
-- with total flight hours and the highest pilot certificate held.
with flight_crew as (
    select * from {{ ref('stg_ntsb__flight_crew') }}
),

flight_time as (
    select * from {{ ref('stg_ntsb__flight_time') }}
),

crew_certificates as (
    select * from {{ ref('stg_ntsb__dt_flight_crew') }}
),

crew as (
    select
        c.*,
        row_number() over (
            partition by c.ev_id
            order by case when c.crew_category = 'PLT' then 0 else 1 end, c.aircraft_key, c.crew_no
        ) as rn
    from flight_crew as c
),

hours as (
    select
        ev_id,
        aircraft_key,
        crew_no,
        max(flight_hours) as total_hours
    from flight_time
    where flight_type = 'TOTL' and flight_craft = 'ALL'
    group by 1, 2, 3
),

certificates as (
    -- the highest certificate a crew member holds, by the FAA's order of privileges
    select
        ev_id,
        aircraft_key,
        crew_no,
        code,
        code_label,
        row_number() over (
            partition by ev_id, aircraft_key, crew_no order by
                case code
                    when 'ATP' then 1 when 'COMM' then 2 when 'CFI' then 3 when 'PRI' then 4
                    when 'REC' then 5 when 'SPRT' then 6 when 'STU' then 7 else 8
                end, code
        ) as rn
    from crew_certificates
    where column_name = 'crew_cert_code' and code is not null
)

select
    crew.ev_id,
    crew.aircraft_key,
    crew.crew_no,
    crew.crew_category,
    crew.age,
    crew.medical_certificate,
    hours.total_hours,
    certificates.code as certificate,
    certificates.code_label as certificate_label
from crew
left join hours on crew.ev_id = hours.ev_id and crew.aircraft_key = hours.aircraft_key and crew.crew_no = hours.crew_no
left join certificates
    on
        crew.ev_id = certificates.ev_id and crew.aircraft_key = certificates.aircraft_key
        and crew.crew_no = certificates.crew_no and certificates.rn = 1
where crew.rn = 1
