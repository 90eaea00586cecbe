-- What NTSB found: findings (code, description, category, cause or factor, in the probable
-- cause) and occurrences (occurrence and phase of flight). Linked to accidents through
-- bridge_accident_causes. Incremental: the causes of the events changed since the last run
-- (macros/incremental.sql), then the causes no event has any more are removed.
-- Its config is here, not in _core.yml like the other models': the post-hook refers to
-- another model, and dbt resolves ref() in a hook at run time only from the model's SQL.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='cause_key',
          post_hook="{{ ntsb_drop_unreferenced('cause_key', ref('int_causes__rows')) }}") }}
{%- set since = ntsb_since() %}
select distinct
    cause_key,
    cause_kind,
    cause_code,
    cause_description,
    category,
    cause_factor,
    in_probable_cause,
    occurrence_code,
    occurrence_label,
    phase_of_flight,
    phase_of_flight_label,
    {{ ntsb_loaded_through() }} as loaded_through
from {{ ntsb_changed_rows(ref('int_causes__rows'), since) }} as c
