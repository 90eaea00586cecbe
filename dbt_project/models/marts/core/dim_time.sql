-- One row per calendar day that has an event.
with events as (
    select * from {{ ref('stg_ntsb__events') }}
),

days as (
    select distinct event_date as date_day from events
    where event_date is not null
)

select
    {{ ntsb_date_key('date_day') }} as date_key,
    date_day,
    cast(extract(year from date_day) as integer) as year,
    cast(extract(quarter from date_day) as integer) as quarter,
    cast(extract(month from date_day) as integer) as month,
    cast(extract(day from date_day) as integer) as day_of_month,
    {{ ntsb_iso_dow('date_day') }} as day_of_week,
    {{ ntsb_iso_dow('date_day') }} >= 6 as is_weekend,
    {{ ntsb_is_us_federal_holiday('date_day') }} as is_us_federal_holiday
from days
