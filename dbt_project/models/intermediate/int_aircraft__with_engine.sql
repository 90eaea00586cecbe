-- Every aircraft with the type of its first engine: the attributes dim_aircraft keeps history of.
with aircraft as (
    select * from {{ ref('stg_ntsb__aircraft') }}
),

engines as (
    select * from {{ ref('stg_ntsb__engines') }}
),

ranked_engines as (
    select
        e.*,
        row_number() over (partition by e.ev_id, e.aircraft_key order by e.engine_no) as rn
    from engines as e
),

first_engine as (
    select
        ev_id,
        aircraft_key,
        engine_type,
        engine_type_label
    from ranked_engines
    where rn = 1
)

select
    a.*,
    first_engine.engine_type,
    first_engine.engine_type_label
from aircraft as a
left join first_engine on a.ev_id = first_engine.ev_id and a.aircraft_key = first_engine.aircraft_key
