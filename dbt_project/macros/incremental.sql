{#
  Core models that follow the events (int_causes__rows, dim_aircraft, fact_accidents,
  bridge_accident_causes) are incremental on both warehouses: a run computes again only the
  events that have a raw row loaded since that model's last run, and replaces their rows
  (delete+insert on ev_id). A load inserts and replaces raw rows, it never deletes one, so
  the rows of the other events cannot have changed.

  Since when: the model's watermark in marts._incremental_watermarks, which the orchestrator
  moves after each build (ntsb_assets/lib/incremental.py). Without one (the first build, a
  changed project), or when a code table (ct_iaids, the data dictionary...) changed since,
  or when more than max_events changed, the model computes every event: the same rows a
  build from scratch gives.

    {%- set changed = ntsb_changed_events() -%}   a list of ev_id, or none for every event
    from {{ ntsb_changed_rows(ref('stg_ntsb__events'), changed) }} as e
                                                      on each source, so that the filter reaches
                                                      the scans under the views
#}
{% macro ntsb_changed_events() -%}
    {%- if not execute or this is none or not is_incremental() -%}   {#- this: none in a unit test -#}
        {{ return(none) }}
    {%- endif -%}
    {{ return(ntsb_events_changed_since(ntsb_watermark(model.name))) }}
{%- endmacro %}

{# The watermark of a model or test (none without one). #}
{% macro ntsb_watermark(name) -%}
    {%- set marks = adapter.get_relation(database=target.database, schema='marts', identifier='_incremental_watermarks') -%}
    {%- if marks is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(run_query("select max(loaded_through) from " ~ marks ~ " where model = '" ~ name ~ "'").rows[0][0]) }}
{%- endmacro %}

{% macro ntsb_events_changed_since(since, max_events=20000, quiet=false) -%}
    {%- if since is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set tables = run_query(
        "select table_name, max(case when column_name = 'ev_id' then 1 else 0 end) as per_event, "
        ~ "max(case when column_name = '_loaded_at' then 1 else 0 end) as loaded "
        ~ "from information_schema.columns where table_schema = 'raw' group by table_name") -%}
    {%- set per_event, lookups = [], [] -%}
    {%- for row in tables.rows if row[2] == 1 and not row[0].startswith('_') -%}
        {%- do (per_event if row[1] == 1 else lookups).append(row[0]) -%}
    {%- endfor -%}
    {%- set after = "_loaded_at > cast('" ~ since ~ "' as timestamp)" -%}
    {%- if lookups -%}
        {%- set parts = [] -%}
        {%- for t in lookups | sort -%}
            {%- do parts.append("select 1 as x from raw." ~ adapter.quote(t) ~ " where " ~ after) -%}
        {%- endfor -%}
        {%- if run_query("select count(*) from (" ~ parts | join(" union all ") ~ ") as c").rows[0][0] > 0 -%}
            {{- log(model.name ~ ": code tables changed since " ~ since ~ ": every event", info=not quiet) -}}
            {{ return(none) }}
        {%- endif -%}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for t in per_event | sort -%}
        {%- do parts.append("select ev_id from raw." ~ adapter.quote(t) ~ " where " ~ after) -%}
    {%- endfor -%}
    {%- set ids = run_query("select distinct ev_id from (" ~ parts | join(" union all ") ~ ") as c "
                            ~ "where ev_id is not null order by ev_id").columns[0].values() if parts else [] -%}
    {%- if ids | length > max_events -%}
        {{- log(model.name ~ ": " ~ ids | length ~ " events changed since " ~ since ~ ": every event", info=not quiet) -}}
        {{ return(none) }}
    {%- endif -%}
    {{- log(model.name ~ ": " ~ ids | length ~ " events changed since " ~ since, info=not quiet) -}}
    {{ return(ids | list) }}
{%- endmacro %}

{% macro ntsb_only(changed, column) -%}
    {%- if changed is none -%}
        true
    {%- elif changed | length == 0 -%}
        false
    {%- else -%}
        {{ column }} in ({% for id in changed %}'{{ id | replace("'", "''") }}'{{ "," if not loop.last }}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{% macro ntsb_changed_rows(relation, changed) -%}
    (select * from {{ relation }} where {{ ntsb_only(changed, 'ev_id') }})
{%- endmacro %}

{# A dimension built from the changed events only: after an incremental run, the keys no
   row of `source` has any more (their events changed) leave it, as a build from scratch. #}
{% macro ntsb_drop_unreferenced(key, source) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where not exists (select 1 from {{ source }} as s where s.{{ key }} = {{ this }}.{{ key }})
    {%- endif -%}
{%- endmacro %}

{#
  Data tests that hold row by row or event by event (not_null, accepted_values,
  relationships, ntsb_known_code, ntsb_between, ntsb_injury_totals_match,
  ntsb_one_current_version, and unique / ntsb_unique_combination on a key with ev_id) check
  only the events changed since the test's last pass, on a relation with an ev_id column:
  dbt's get_where_subquery, which applies a test's `where`, is overridden here. The rows of
  the other events have not changed since they passed. A test that warned or failed has no
  new watermark, so it checks every row again; and the same cases as the models' (a changed
  project, a changed code table, too many changed events) check every row.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- set changed = ntsb_test_changed_events(relation) -%}
    {%- set conditions = ([where] if where else []) + ([ntsb_only(changed, 'ev_id')] if changed is not none else []) -%}
    {%- if conditions -%}
        {%- do return("(select * from " ~ relation ~ " where " ~ conditions | join(" and ") ~ ") dbt_subquery") -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro ntsb_test_changed_events(relation) -%}
    {%- set test = model.get('test_metadata') or {} if execute and model is mapping else {} -%}
    {%- set name, kwargs = test.get('name'), test.get('kwargs') or {} -%}
    {%- set per_event = name in ('not_null', 'accepted_values', 'relationships', 'ntsb_known_code', 'ntsb_between',
                                 'ntsb_injury_totals_match', 'ntsb_one_current_version')
                        or (name == 'unique' and kwargs.get('column_name') == 'ev_id')
                        or (name == 'ntsb_unique_combination' and 'ev_id' in (kwargs.get('columns') or [])) -%}
    {%- if not per_event or relation.schema is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- if 'ev_id' not in columns -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(ntsb_events_changed_since(ntsb_watermark(model.name), quiet=true)) }}
{%- endmacro %}
