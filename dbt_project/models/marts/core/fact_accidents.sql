-- One row per event loaded into raw (quarantined events never reach raw).
with aircraft as (
    select ev_id, count(*) as aircraft_count
    from {{ ref('stg_ntsb__aircraft') }}
    group by ev_id
)
select
    e.ev_id,
    e.ntsb_no,
    e.event_type,
    {{ ntsb_date_key('e.event_date') }} as date_key,
    k.location_key,
    k.weather_key,
    first_aircraft.aircraft_key as first_aircraft_key,
    e.event_date,
    e.severity,
    e.severity = 'FATL' as is_fatal,
    e.fatalities,
    e.serious_injuries,
    e.minor_injuries,
    e.uninjured,
    coalesce(a.aircraft_count, 0) as aircraft_count,
    first_aircraft.phase_of_flight,
    e.country,
    e.state,
    e.city,
    e.latitude,
    e.longitude,
    e.weather_condition,
    e.light_condition,
    e.release_id
from {{ ref('stg_ntsb__events') }} as e
join {{ ref('int_events__dimension_keys') }} as k on k.ev_id = e.ev_id
left join aircraft as a on a.ev_id = e.ev_id
left join {{ ref('int_aircraft__first_per_event') }} as first_aircraft on first_aircraft.ev_id = e.ev_id
