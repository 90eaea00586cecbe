{# SCD2: every key has exactly one current version. #}
{% test ntsb_one_current_version(model, key) %}
select {{ key }} as k, sum(case when is_current then 1 else 0 end) as current_versions
from {{ model }}
group by 1
having sum(case when is_current then 1 else 0 end) <> 1
{% endtest %}
