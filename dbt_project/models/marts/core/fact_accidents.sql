-- One row per event loaded into raw (quarantined events never reach raw), with a key to
-- every dimension: time, location, weather, the pilot in command, and the version of the
-- first aircraft in force now (bridge_accident_causes links the findings and occurrences),
-- and what was known when the flight began or at the occurrence: local hour, distance to
-- the airport, weather measurements, purpose and schedule of the flight, the pilot in
-- command's hours and age.
-- Incremental: the events changed since the last run (macros/incremental.sql).
{%- set since = ntsb_since() %}
with aircraft as (
    select
        ev_id,
        count(*) as aircraft_count
    from {{ ref('stg_ntsb__aircraft') }}
    where {{ ntsb_only(since, 'ev_id') }}
    group by ev_id
)

select
    e.ev_id,
    e.ntsb_no,
    e.event_type,
    e.event_type_label,
    {{ ntsb_date_key('e.event_date') }} as date_key,
    k.location_key,
    k.weather_key,
    k.crew_key,
    current_aircraft.aircraft_version_key,
    first_aircraft.aircraft_key as first_aircraft_key,
    e.event_date,
    e.severity,
    e.severity = 'FATL' as is_fatal,
    e.fatalities,
    e.serious_injuries,
    e.minor_injuries,
    e.uninjured,
    coalesce(a.aircraft_count, 0) as aircraft_count,
    first_aircraft.registration,
    first_aircraft.make,
    first_aircraft.model,
    first_aircraft.far_part,
    first_aircraft.far_part_label,
    first_aircraft.phase_of_flight,
    first_aircraft.phase_of_flight_label,
    e.country,
    e.country_label,
    e.state,
    e.state_label,
    e.city,
    e.latitude,
    e.longitude,
    e.weather_condition,
    e.light_condition,
    case
        when e.event_time_hhmm between 0 and 2359 and mod(e.event_time_hhmm, 100) < 60
            then cast(floor(e.event_time_hhmm / 100.0) as integer)
    end as event_hour,
    e.airport_distance_sm,
    e.visibility_sm,
    e.wind_speed_kts,
    e.temperature_c,
    first_aircraft.flight_purpose,
    first_aircraft.flight_purpose_label,
    case first_aircraft.scheduled when 'SCHD' then true when 'NSCH' then false end as is_scheduled,
    pic.total_hours as pilot_total_hours,
    pic.age as pilot_age,
    e.release_id,
    e.source_system,
    {{ ntsb_loaded_through() }} as loaded_through
from {{ ntsb_changed_rows(ref('stg_ntsb__events'), since) }} as e
inner join {{ ntsb_changed_rows(ref('int_events__dimension_keys'), since) }} as k on e.ev_id = k.ev_id
left join aircraft as a on e.ev_id = a.ev_id
left join
    {{ ntsb_changed_rows(ref('int_aircraft__first_per_event'), since) }} as first_aircraft
    on e.ev_id = first_aircraft.ev_id
left join {{ ntsb_changed_rows(ref('int_crew__per_event'), since) }} as pic on e.ev_id = pic.ev_id
left join {{ ntsb_changed_rows(ref('dim_aircraft'), since) }} as current_aircraft
    on
        first_aircraft.ev_id = current_aircraft.ev_id and first_aircraft.aircraft_key = current_aircraft.aircraft_key
        and current_aircraft.is_current
