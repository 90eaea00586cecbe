{# A fixed-width NTSB code as a clean value: as text, trimmed, upper case; '', 'UNK', 'UNKN' -> NULL. #}
{% macro ntsb_code(expr) -%}
    {%- set v = "upper(trim(cast(" ~ expr ~ " as " ~ ntsb_type('string') ~ ")))" -%}
    case when {{ v }} in ('', 'UNK', 'UNKN') then null else {{ v }} end
{%- endmacro %}

{# Free text: trimmed; blank, 'UNK', 'UNKN' -> NULL. #}
{% macro ntsb_text(expr) -%}
    case when upper(trim({{ expr }})) in ('', 'UNK', 'UNKN') then null else trim({{ expr }}) end
{%- endmacro %}

{# A coordinate only when it is on the globe. #}
{% macro ntsb_coordinate(expr, limit) -%}
    case when {{ expr }} between -{{ limit }} and {{ limit }} then {{ expr }} end
{%- endmacro %}
