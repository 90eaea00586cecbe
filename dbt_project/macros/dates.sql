{# yyyymmdd as an integer key #}
{% macro ntsb_date_key(expr) -%}
    cast(extract(year from {{ expr }}) * 10000 + extract(month from {{ expr }}) * 100 + extract(day from {{ expr }}) as integer)
{%- endmacro %}

{# ISO day of week, Monday = 1 .. Sunday = 7 #}
{% macro ntsb_iso_dow(expr) -%}
    {{ return(adapter.dispatch('ntsb_iso_dow', 'ntsb')(expr)) }}
{%- endmacro %}
{% macro default__ntsb_iso_dow(expr) -%} cast(extract(isodow from {{ expr }}) as integer) {%- endmacro %}

{# A US federal holiday on its fixed date (the year it became one onwards). #}
{% macro ntsb_us_holiday_date(d) -%}
    {%- set y = 'extract(year from ' ~ d ~ ')' -%}
    {%- set m = 'extract(month from ' ~ d ~ ')' -%}
    {%- set dd = 'extract(day from ' ~ d ~ ')' -%}
    (({{ m }} = 1 and {{ dd }} = 1) {# New Year's Day #}
     or ({{ m }} = 6 and {{ dd }} = 19 and {{ y }} >= 2021) {# Juneteenth #}
     or ({{ m }} = 7 and {{ dd }} = 4) {# Independence Day #}
     or ({{ m }} = 11 and {{ dd }} = 11 and ({{ y }} < 1971 or {{ y }} > 1977)) {# Veterans Day #}
     or ({{ m }} = 12 and {{ dd }} = 25)) {# Christmas Day #}
{%- endmacro %}

{# A US federal holiday defined as the nth weekday of a month (Monday holidays since 1971). #}
{% macro ntsb_us_holiday_weekday(d) -%}
    {%- set y = 'extract(year from ' ~ d ~ ')' -%}
    {%- set m = 'extract(month from ' ~ d ~ ')' -%}
    {%- set dd = 'extract(day from ' ~ d ~ ')' -%}
    {%- set dow = ntsb_iso_dow(d) -%}
    (({{ m }} = 1 and {{ dow }} = 1 and {{ dd }} between 15 and 21 and {{ y }} >= 1986) {# Martin Luther King Jr. Day #}
     or ({{ m }} = 2 and {{ dow }} = 1 and {{ dd }} between 15 and 21 and {{ y }} >= 1971) {# Washington's Birthday #}
     or ({{ m }} = 5 and {{ dow }} = 1 and {{ dd }} >= 25 and {{ y }} >= 1971) {# Memorial Day #}
     or ({{ m }} = 9 and {{ dow }} = 1 and {{ dd }} <= 7) {# Labor Day #}
     or ({{ m }} = 10 and {{ dow }} = 1 and {{ dd }} between 8 and 14 and {{ y }} >= 1971) {# Columbus Day #}
     or ({{ m }} = 10 and {{ dow }} = 1 and {{ dd }} between 22 and 28 and {{ y }} between 1971 and 1977) {# Veterans Day 1971-77 #}
     or ({{ m }} = 11 and {{ dow }} = 4 and {{ dd }} between 22 and 28)) {# Thanksgiving Day #}
{%- endmacro %}

{#
  A US federal holiday as observed (5 U.S.C. 6103): the holiday itself, the Friday before a
  fixed-date holiday on a Saturday, the Monday after one on a Sunday.
#}
{% macro ntsb_is_us_federal_holiday(d) -%}
    ({{ ntsb_us_holiday_date(d) }}
     or {{ ntsb_us_holiday_weekday(d) }}
     or ({{ ntsb_iso_dow(d) }} = 5 and {{ ntsb_us_holiday_date(ntsb_add_days(d, 1)) }})
     or ({{ ntsb_iso_dow(d) }} = 1 and {{ ntsb_us_holiday_date(ntsb_add_days(d, -1)) }}))
{%- endmacro %}

{% macro ntsb_add_days(d, n) -%}
    {{ return(adapter.dispatch('ntsb_add_days', 'ntsb')(d, n)) }}
{%- endmacro %}
{% macro default__ntsb_add_days(d, n) -%} cast({{ d }} + interval '{{ n }} day' as date) {%- endmacro %}
