-- Per event: the attributes of its location, weather and pilot in command, bucketed, with
-- their surrogate keys. A table, read by fact_accidents and three dimensions. Incremental:
-- the events changed since the last run (macros/incremental.sql).
{%- set since = ntsb_since() %}
with changed_events as (
    select * from {{ ntsb_changed_rows(ref('stg_ntsb__events'), since) }} as events
),

changed_crew as (
    select * from {{ ntsb_changed_rows(ref('int_crew__per_event'), since) }} as pic
),

e as (
    select
        ev_id,
        country,
        state,
        city,
        airport_id,
        airport_name,
        {{ ntsb_round('latitude', 4) }} as latitude,
        {{ ntsb_round('longitude', 4) }} as longitude,
        weather_condition,
        weather_condition_label,
        light_condition,
        light_condition_label,
        case
            when visibility_sm is null then null when visibility_sm < 1 then '<1 sm'
            when visibility_sm < 3 then '1-3 sm' when visibility_sm < 5 then '3-5 sm' else '5+ sm'
        end as visibility_bucket,
        case
            when wind_speed_kts is null then null when wind_speed_kts < 10 then '<10 kt'
            when wind_speed_kts < 20 then '10-20 kt' else '20+ kt'
        end as wind_bucket,
        case
            when temperature_c is null then null when temperature_c < 0 then 'below 0 C'
            when temperature_c < 15 then '0-15 C' when temperature_c < 30 then '15-30 C' else '30+ C'
        end as temperature_bucket
    from changed_events
),

crew as (
    select
        ev_id,
        crew_category,
        certificate,
        certificate_label,
        medical_certificate,
        case
            when total_hours is null then null when total_hours < 100 then '<100 h'
            when total_hours < 500 then '100-500 h' when total_hours < 1500 then '500-1,500 h'
            when total_hours < 5000 then '1,500-5,000 h' else '5,000+ h'
        end as experience_bucket,
        case
            when age is null or age <= 0 then null when age < 25 then '<25'
            when age < 35 then '25-34' when age < 45 then '35-44' when age < 55 then '45-54'
            when age < 65 then '55-64' else '65+'
        end as age_group
    from changed_crew
)

select
    e.*,
    crew.crew_category,
    crew.certificate,
    crew.certificate_label,
    crew.medical_certificate,
    crew.experience_bucket,
    crew.age_group,
    {{ ntsb_hash_key([
        'crew.crew_category', 'crew.certificate', 'crew.medical_certificate', 'crew.experience_bucket', 'crew.age_group'
    ]) }} as crew_key,
    {{ ntsb_hash_key(['country', 'state', 'city', 'airport_id', 'airport_name', 'latitude', 'longitude']) }}
        as location_key,
    {{ ntsb_hash_key([
        'weather_condition', 'light_condition', 'visibility_bucket', 'wind_bucket', 'temperature_bucket'
    ]) }} as weather_key,
    {{ ntsb_loaded_through() }} as loaded_through
from e
left join crew on e.ev_id = crew.ev_id
