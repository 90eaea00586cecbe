-- Each event's first aircraft (lowest Aircraft_Key): the one the event's facts describe.
with aircraft as (
    select * from {{ ref('stg_ntsb__aircraft') }}
),

ranked as (
    select
        a.*,
        row_number() over (partition by a.ev_id order by a.aircraft_key) as rn
    from aircraft as a
)

select * from ranked
where rn = 1
