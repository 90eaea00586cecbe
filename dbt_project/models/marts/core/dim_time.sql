-- One row per calendar day that has an event.
with days as (
    select distinct event_date as date_day from {{ ref('stg_ntsb__events') }} where event_date is not null
)
select
    {{ ntsb_date_key('date_day') }} as date_key,
    date_day,
    extract(year from date_day) as year,
    extract(quarter from date_day) as quarter,
    extract(month from date_day) as month,
    extract(day from date_day) as day_of_month,
    {{ ntsb_iso_dow('date_day') }} as day_of_week,
    {{ ntsb_iso_dow('date_day') }} >= 6 as is_weekend
from days
