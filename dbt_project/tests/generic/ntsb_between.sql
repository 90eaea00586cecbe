{# Rows whose column lies outside [low, high] (either bound may be left out; NULL passes).
   The bounds are SQL: numbers, or expressions such as current_date. #}
{% test ntsb_between(model, column_name, low=none, high=none) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} is not null and (
    {%- if low is not none %} {{ column_name }} < {{ low }}{% endif %}
    {%- if low is not none and high is not none %} or{% endif %}
    {%- if high is not none %} {{ column_name }} > {{ high }}{% endif %}
)
{% endtest %}
