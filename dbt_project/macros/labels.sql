{#
  Human-readable label of a coded column, from NTSB's code sets (stg_ntsb__code_labels), never
  typed by hand; 'unknown code' for a code no NTSB source knows (it is counted in the
  dictionary-lag report raw._code_lag), NULL for no code:
    {{ ntsb_label('events', 'light_cond', 'e.light_cond') }}
#}
{% macro ntsb_label(table, column, code_expr) -%}
    case when {{ code_expr }} is not null then coalesce(
        (select l.meaning from {{ ref('stg_ntsb__code_labels') }} as l
          where l.table_name = '{{ table }}' and l.column_name = '{{ column }}' and l.code = {{ code_expr }}),
        'unknown code') end
{%- endmacro %}
