-- The pilot in command, in buckets an analyst can group by (an event without crew records
-- points at the all-unknown row).
select distinct
    crew_key, crew_category, certificate, certificate_label, medical_certificate,
    experience_bucket, age_group
from {{ ref('int_events__dimension_keys') }}
