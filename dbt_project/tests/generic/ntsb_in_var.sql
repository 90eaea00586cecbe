{# Rows whose column holds a value outside the list kept in a project var (NULL passes): for
   lists that the Python code reads from the same var (ntsb_assets/lib/dbt_vars.py). #}
{% test ntsb_in_var(model, column_name, var_name) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} is not null and {{ column_name }} not in (
    {%- for value in var(var_name) %}'{{ value }}'{{ ", " if not loop.last }}{% endfor -%}
)
{% endtest %}
