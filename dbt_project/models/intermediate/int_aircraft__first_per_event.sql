-- Each event's first aircraft (lowest Aircraft_Key): the one the event's facts describe.
select *
from (
    select
        a.*,
        row_number() over (partition by a.ev_id order by a.aircraft_key) as rn
    from {{ ref('stg_ntsb__aircraft') }} as a
) as ranked
where rn = 1
