-- Accident <-> cause, many to many: one row per finding or occurrence of an event's aircraft.
-- Incremental: the events changed since the last run (macros/incremental.sql).
{%- set since = ntsb_since() %}
select
    {{ ntsb_hash_key(['c.cause_kind', 'c.ev_id', 'c.aircraft_key', 'c.occurrence_no', 'c.seq_no']) }} as bridge_key,
    c.ev_id,
    c.aircraft_key,
    c.cause_kind,
    c.occurrence_no,
    c.seq_no,
    c.cause_key,
    c.in_probable_cause,
    {{ ntsb_loaded_through() }} as loaded_through
from {{ ntsb_changed_rows(ref('int_causes__rows'), since) }} as c
inner join {{ ntsb_changed_rows(ref('fact_accidents'), since) }} as f on c.ev_id = f.ev_id
