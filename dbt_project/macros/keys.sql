{# A surrogate key: md5 of the columns as text, NULLs as empty strings. #}
{% macro ntsb_hash_key(columns) -%}
    md5({%- for c in columns -%}
        coalesce(cast({{ c }} as {{ ntsb_type('string') }}), '') {%- if not loop.last %} || '|' || {% endif -%}
    {%- endfor -%})
{%- endmacro %}
