{%- set raw = ntsb_raw('findings') %}
select
    {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
    {{ ntsb_col(raw, 'aircraft_key', 'int') }} as aircraft_key,
    {{ ntsb_col(raw, 'finding_no', 'int') }} as finding_no,
    {{ ntsb_code(ntsb_col(raw, 'finding_code', 'string')) }} as finding_code,
    {{ ntsb_text(ntsb_col(raw, 'finding_description', 'string')) }} as finding_description,
    {{ ntsb_code(ntsb_col(raw, 'category_no', 'string')) }} as category_no,
    case {{ ntsb_code(ntsb_col(raw, 'cause_factor', 'string')) }}
        when 'C' then 'cause' when 'F' then 'factor'
    end as cause_factor,
    {{ ntsb_col(raw, '_release_id', 'string') }} as release_id
from {{ ntsb_from(raw) }}
