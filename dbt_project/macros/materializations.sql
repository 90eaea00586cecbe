{#
  How marts materialize on PostgreSQL, where the API reads them while a run updates them:

  - core marts are `incremental` with the `ntsb_replace` strategy: the run computes the model
    into a temporary table, then replaces every row in one transaction. The table itself is
    never dropped, so readers see the old rows until the commit and the aggregates' materialized
    views that depend on it survive (a dropped table would drop them with it, by cascade).
  - aggregates are materialized views, refreshed CONCURRENTLY (readers are never blocked;
    each has a unique index for it).

  On DuckDB both are plain tables (the API reads a published snapshot there).
#}
{% macro get_incremental_ntsb_replace_sql(arg_dict) -%}
    {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }};
    insert into {{ arg_dict['target_relation'] }} ({{ cols }})
    select {{ cols }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}

{% macro postgres__refresh_materialized_view(relation) -%}
    refresh materialized view concurrently {{ relation }}
{%- endmacro %}
