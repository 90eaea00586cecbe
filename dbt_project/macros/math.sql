{# Ratio of two numbers as a float, NULL when the denominator is 0 (no integer division). #}
{% macro ntsb_ratio(numerator, denominator) -%}
    cast({{ numerator }} as {{ ntsb_type('float') }}) / nullif({{ denominator }}, 0)
{%- endmacro %}

{# round(x, n) for a float; PostgreSQL rounds only numerics to n places. #}
{% macro ntsb_round(expr, digits) -%}
    {{ return(adapter.dispatch('ntsb_round', 'ntsb')(expr, digits)) }}
{%- endmacro %}
{% macro default__ntsb_round(expr, digits) -%} round({{ expr }}, {{ digits }}) {%- endmacro %}
{% macro postgres__ntsb_round(expr, digits) -%} cast(round(cast({{ expr }} as numeric), {{ digits }}) as double precision) {%- endmacro %}
