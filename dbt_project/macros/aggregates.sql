{# The three columns every "how often fatal" aggregate has: events, fatal events, fatal rate. #}
{% macro ntsb_fatal_counts(is_fatal='f.is_fatal') -%}
    count(*) as events,
    sum(case when {{ is_fatal }} then 1 else 0 end) as fatal_events,
    {{ ntsb_round(ntsb_ratio('sum(case when ' ~ is_fatal ~ ' then 1 else 0 end)', 'count(*)'), 4) }} as fatal_rate
{%- endmacro %}
