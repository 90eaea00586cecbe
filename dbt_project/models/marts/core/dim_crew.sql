-- The pilot in command, in buckets an analyst can group by (an event without crew records
-- points at the all-unknown row).
with dimension_keys as (
    select * from {{ ref('int_events__dimension_keys') }}
),

crew as (
    select distinct
        crew_key,
        crew_category,
        certificate,
        certificate_label,
        medical_certificate,
        experience_bucket,
        age_group
    from dimension_keys
)

select
    crew_key,
    crew_category,
    {{ ntsb_label('flight_crew', 'crew_category', 'crew_category') }} as crew_category_label,
    certificate,
    certificate_label,
    medical_certificate,
    {{ ntsb_label('flight_crew', 'med_certf', 'medical_certificate') }} as medical_certificate_label,
    experience_bucket,
    age_group
from crew
