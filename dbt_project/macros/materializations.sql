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

{#
  dbt compares an existing materialized view's indexes with the model, not its query: a
  changed model would keep serving the old definition until someone runs --full-refresh
  (dbt-labs/docs.getdbt.com#5215). The aggregates record the hash of their compiled query as
  the view's comment (post-hook ntsb_record_query_hash); a different or missing hash makes
  the next run replace the view.
#}
{% macro ntsb_query_hash() -%}
    ntsb-query-md5:{{ local_md5(model.compiled_code or '') }}
{%- endmacro %}

{% macro ntsb_record_query_hash() -%}
    {%- if target.type == 'postgres' and model.config.materialized == 'materialized_view' -%}
        comment on materialized view {{ this }} is '{{ ntsb_query_hash() }}'
    {%- endif -%}
{%- endmacro %}

{% macro postgres__get_materialized_view_configuration_changes(existing_relation, new_config) -%}
    {%- set stored = run_query("select obj_description('" ~ existing_relation ~ "'::regclass, 'pg_class')").columns[0].values()[0] -%}
    {%- if stored != ntsb_query_hash() -%}
        {{- log("the query of " ~ existing_relation ~ " changed: replacing the materialized view", info=true) -}}
        {%- do return({'requires_full_refresh': true, 'indexes': []}) -%}
    {%- endif -%}
    {%- set existing = postgres__describe_materialized_view(existing_relation) -%}
    {%- do return(existing_relation.get_materialized_view_config_change_collection(existing, new_config.model)) -%}
{%- endmacro %}
