-- What NTSB found: findings (code, description, category, cause or factor, in the probable
-- cause) and occurrences (occurrence and phase of flight). Linked to accidents through
-- bridge_accident_causes.
select distinct
    cause_key, cause_kind, cause_code, cause_description, category, cause_factor,
    in_probable_cause, occurrence_code, occurrence_label, phase_of_flight, phase_of_flight_label
from {{ ref('int_causes__rows') }}
