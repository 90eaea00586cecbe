-- Accident <-> cause, many to many: one row per finding or occurrence of an event's aircraft.
select
    {{ ntsb_hash_key(['c.cause_kind', 'c.ev_id', 'c.aircraft_key', 'c.occurrence_no', 'c.seq_no']) }} as bridge_key,
    c.ev_id,
    c.aircraft_key,
    c.cause_kind,
    c.occurrence_no,
    c.seq_no,
    c.cause_key,
    c.in_probable_cause
from {{ ref('int_causes__rows') }} as c
join {{ ref('fact_accidents') }} as f on f.ev_id = c.ev_id
