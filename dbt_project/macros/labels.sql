{#
  Human-readable label of a coded column, from NTSB's data dictionary
  (stg_ntsb__code_labels), never typed by hand:
    {{ ntsb_label('events', 'light_cond', 'e.light_cond') }}
#}
{% macro ntsb_label(table, column, code_expr) -%}
    (select l.meaning from {{ ref('stg_ntsb__code_labels') }} as l
      where l.table_name = '{{ table }}' and l.column_name = '{{ column }}' and l.code = {{ code_expr }})
{%- endmacro %}
