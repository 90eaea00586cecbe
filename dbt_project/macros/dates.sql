{# yyyymmdd as an integer key #}
{% macro ntsb_date_key(expr) -%}
    cast(extract(year from {{ expr }}) * 10000 + extract(month from {{ expr }}) * 100 + extract(day from {{ expr }}) as integer)
{%- endmacro %}

{# ISO day of week, Monday = 1 .. Sunday = 7 #}
{% macro ntsb_iso_dow(expr) -%}
    {{ return(adapter.dispatch('ntsb_iso_dow', 'ntsb')(expr)) }}
{%- endmacro %}
{% macro default__ntsb_iso_dow(expr) -%} cast(extract(isodow from {{ expr }}) as integer) {%- endmacro %}
