{#
  Every value of a coded column is a code NTSB's data dictionary lists for that column
  (stg_ntsb__code_labels), so a new NTSB code list needs no change here.
#}
{% test ntsb_known_code(model, column_name, table, column) %}
with m as (select * from {{ model }})
select m.{{ column_name }} as code, count(*) as row_count
from m
where m.{{ column_name }} is not null
  and not exists (
      select 1 from {{ ref('stg_ntsb__code_labels') }} as l
      where l.table_name = '{{ table }}' and l.column_name = '{{ column }}' and l.code = m.{{ column_name }})
group by 1
{% endtest %}
