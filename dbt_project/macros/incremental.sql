{#
  Core models that follow the events (int_causes__rows, int_events__dimension_keys,
  dim_aircraft, fact_accidents, bridge_accident_causes, narratives; dim_causes by cause) are
  incremental on both warehouses, and the snapshot snap_aircraft reads the changed events
  only: a run computes again only the events that have a raw row loaded since that model's
  last run, and replaces their rows (delete+insert on ev_id). A load inserts and replaces raw
  rows, it never deletes one, so the rows of the other events cannot have changed.

  The data tests of the staging views check the same way: a staging view reads its raw table
  row for row, so a test of rows or of a key that holds ev_id (see ntsb_test_follows_events)
  checks again only the events changed since it last passed. A test that fails or warns keeps
  its watermark: it checks those events again, until they are fixed.

  Since when: the node's watermark in marts._incremental_watermarks, which the orchestrator
  moves after each build (ntsb_assets/lib/incremental.py). Without one (the first build, a
  changed project), or when a code table (ct_iaids, the data dictionary..., or the merged code
  sets raw._code_sets that label the codes) changed since,
  or when more than max_events changed, the node computes (or checks) every event: the same
  rows a build from scratch gives.

  Which events changed since each watermark is found once per dbt invocation, by the
  on-run-start hook ntsb_record_changed_events (dbt_project.yml), into marts._changed_events;
  a node reads its set there (a model in two queries, a test in one). A node of an invocation
  that did not run the hook finds none, so it computes every event.

    {%- set changed = ntsb_changed_events() -%}   a list of ev_id, or none for every event
    from {{ ntsb_changed_rows(ref('stg_ntsb__events'), changed) }} as e
                                                      on each source, so that the filter reaches
                                                      the scans under the views
#}
{% macro ntsb_changed_events() -%}
    {%- if not execute or this is none -%}   {#- this: none in a unit test -#}
        {{ return(none) }}
    {%- endif -%}
    {%- if model.resource_type == 'snapshot' -%}   {#- is_incremental(): models only -#}
        {%- if adapter.get_relation(this.database, this.schema, this.identifier) is none -%}
            {{ return(none) }}
        {%- endif -%}
    {%- elif not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = ntsb_changed_since() -%}
    {%- if since is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set ids = run_query("select ev_id from " ~ ntsb_changed_set(since) ~ " as c order by ev_id").columns[0].values() -%}
    {{- log(model.name ~ ": " ~ ids | length ~ " events changed since " ~ since, info=true) -}}
    {{ return(ids | list) }}
{%- endmacro %}

{# The node's watermark, when this invocation's hook found the events changed since it; none
   when the node must compute (check) every event. #}
{% macro ntsb_changed_since() -%}
    {%- set scope = adapter.get_relation(database=target.database, schema='marts', identifier='_changed_events') -%}
    {%- if scope is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select w.loaded_through from " ~ scope.incorporate(path={'identifier': '_incremental_watermarks'}) ~ " as w join "
        ~ scope ~ " as c on c.since = w.loaded_through where w.model = '" ~ model.name ~ "' and c.invocation_id = '"
        ~ invocation_id ~ "' and c.ev_id is null") -%}
    {{ return(found.rows[0][0] if found.rows | length > 0 else none) }}
{%- endmacro %}

{# The events changed since `since`, found by this invocation's hook: a query of one column, ev_id. #}
{% macro ntsb_changed_set(since) -%}
    (select ev_id from {{ adapter.get_relation(database=target.database, schema='marts', identifier='_changed_events') }}
     where invocation_id = '{{ invocation_id }}' and since = cast('{{ since }}' as timestamp) and ev_id is not null)
{%- endmacro %}

{# `column` is one of the events changed since `since`. #}
{% macro ntsb_in_changed_set(column, since) -%}
    {{ return(adapter.dispatch('ntsb_in_changed_set', 'ntsb')(column, since)) }}
{%- endmacro %}

{% macro default__ntsb_in_changed_set(column, since) -%}
    {{ column }} in {{ ntsb_changed_set(since) }}
{%- endmacro %}

{# The set as one array value (computed once): PostgreSQL then reads the raw table through its
   ev_id index, where a semi-join would scan the whole table. #}
{% macro postgres__ntsb_in_changed_set(column, since) -%}
    {{ column }} = any(array{{ ntsb_changed_set(since) }})
{%- endmacro %}

{# A data test of a staging view that can check the changed events alone: its rows are rows of
   one event each (the view has ev_id), and it is a test of rows, of one event's rows, or of a
   key that holds ev_id. Any other test (a key without ev_id, a test of the whole table) checks
   every row. #}
{% macro ntsb_test_follows_events() -%}
    {%- set tested = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
    {%- if tested is none or 'staging' not in tested.fqn or 'ev_id' not in tested.columns -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set kind, args = model.test_metadata.name, model.test_metadata.kwargs -%}
    {{ return(kind in ('not_null', 'accepted_values', 'relationships', 'ntsb_between', 'ntsb_injury_totals_match')
              or (kind == 'unique' and args.column_name == 'ev_id')
              or (kind == 'ntsb_unique_combination' and 'ev_id' in args.columns)) }}
{%- endmacro %}

{# dbt's where-config filter of a tested relation (dbt's own get_where_subquery), and the
   changed events of a test that follows them. #}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- if config.get('where') -%}
        {%- do conditions.append(config.get('where')) -%}
    {%- endif -%}
    {%- set since = ntsb_changed_since() if execute and model.resource_type == 'test' and ntsb_test_follows_events() else none -%}
    {%- if since is not none -%}   {#- a query, not a list of ids: the tests are many -#}
        {%- do conditions.append(ntsb_in_changed_set('ev_id', since)) -%}
    {%- endif -%}
    {%- if conditions -%}
        {{ return("(select * from " ~ relation ~ " where " ~ conditions | join(" and ") ~ ") dbt_subquery") }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{# on-run-start: for each watermark, the events with a raw row loaded after it (none written
   when every event must be computed), as rows (invocation_id, since, ev_id, recorded_at) of
   marts._changed_events, with one row of a NULL ev_id marking each set found. The sets of
   other invocations are left alone (one may be running): each deletes its own at the end
   (ntsb_drop_changed_events), and those of a failed one are dropped after a day. #}
{% macro ntsb_record_changed_events(max_events=20000) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set marks = adapter.get_relation(database=target.database, schema='marts', identifier='_incremental_watermarks') -%}
    {%- if marks is none -%}
        {{ return('') }}
    {%- endif -%}
    {%- set scope = marks.incorporate(path={'identifier': '_changed_events'}) -%}
    {%- call statement('ntsb_changed_events', auto_begin=true) -%}
        create table if not exists {{ scope }} (invocation_id {{ ntsb_type('string') }},
            since {{ ntsb_type('timestamp') }}, ev_id {{ ntsb_type('string') }}, recorded_at {{ ntsb_type('timestamp') }})
    {%- endcall -%}
    {%- call statement('ntsb_changed_events', auto_begin=true) -%}   {#- not the sets of an invocation still running -#}
        delete from {{ scope }} where recorded_at < cast(current_timestamp as timestamp) - interval '1 day'
    {%- endcall -%}
    {%- do adapter.cache_added(scope.incorporate(type='table')) -%}   {#- the nodes look it up in dbt's cache -#}
    {%- for since in run_query("select distinct loaded_through from " ~ marks).columns[0].values() -%}
        {%- set ids = ntsb_events_changed_since(since, max_events) -%}
        {%- if ids is not none -%}
            {%- for chunk in ([none] + ids) | batch(5000) -%}
                {%- call statement('ntsb_changed_events', auto_begin=true) -%}
                    insert into {{ scope }} values
                    {%- for id in chunk %}
                    ('{{ invocation_id }}', cast('{{ since }}' as timestamp), {{ "null" if id is none else "'" ~ id | replace("'", "''") ~ "'" }}, cast(current_timestamp as timestamp)){{ "," if not loop.last }}
                    {%- endfor %}
                {%- endcall -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if target.type == 'postgres' -%}   {#- the tests' plans join it -#}
        {%- call statement('ntsb_changed_events', auto_begin=true) -%} analyze {{ scope }} {%- endcall -%}
    {%- endif -%}
    {%- do adapter.commit() -%}
    {{ return('') }}
{%- endmacro %}

{# on-run-end: this invocation's sets are no longer needed (a failed invocation's are dropped
   by a later one's on-run-start, after a day). #}
{% macro ntsb_drop_changed_events() -%}
    {%- set scope = adapter.get_relation(database=target.database, schema='marts', identifier='_changed_events')
                    if execute else none -%}
    {%- if scope is not none -%}
        {%- call statement('ntsb_changed_events', auto_begin=true) -%}
            delete from {{ scope }} where invocation_id = '{{ invocation_id }}'
        {%- endcall -%}
        {%- do adapter.commit() -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{# The events with a raw row loaded after `since`, or none for every event: a code table
   changed since, or more than max_events events did. #}
{% macro ntsb_events_changed_since(since, max_events) -%}
    {%- set tables = run_query(
        "select table_name, max(case when column_name = 'ev_id' then 1 else 0 end) as per_event, "
        ~ "max(case when column_name = '_loaded_at' then 1 else 0 end) as loaded "
        ~ "from information_schema.columns where table_schema = 'raw' group by table_name") -%}
    {%- set per_event, lookups = [], [] -%}
    {%- for row in tables.rows if row[2] == 1 and (not row[0].startswith('_') or row[0] == '_code_sets') -%}
        {%- do (per_event if row[1] == 1 else lookups).append(row[0]) -%}
    {%- endfor -%}
    {%- set after = "_loaded_at > cast('" ~ since ~ "' as timestamp)" -%}
    {%- if lookups -%}
        {%- set parts = [] -%}
        {%- for t in lookups | sort -%}
            {%- do parts.append("select 1 as x from raw." ~ adapter.quote(t) ~ " where " ~ after) -%}
        {%- endfor -%}
        {%- if run_query("select count(*) from (" ~ parts | join(" union all ") ~ ") as c").rows[0][0] > 0 -%}
            {{- log("code tables changed since " ~ since ~ ": every event", info=true) -}}
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
        {{- log(ids | length ~ " events changed since " ~ since ~ ": every event", info=true) -}}
        {{ return(none) }}
    {%- endif -%}
    {{- log(ids | length ~ " events changed since " ~ since, info=true) -}}
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
