{#
  Core models that follow the events (int_causes__rows, int_events__dimension_keys,
  dim_aircraft, fact_accidents, bridge_accident_causes; dim_causes by cause) are incremental
  on both warehouses, and the snapshot snap_aircraft reads the changed events only: a run
  computes again only the events that have a raw row loaded since that model's last run,
  and replaces their rows (delete+insert on ev_id). A load inserts and replaces raw rows, it never deletes one, so
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
{% macro ntsb_changed_events(max_events=20000) -%}
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
    {%- set marks = adapter.get_relation(database=this.database, schema='marts', identifier='_incremental_watermarks') -%}
    {%- set found = run_query("select max(loaded_through) from " ~ marks ~ " where model = '" ~ model.name ~ "'")
                    if marks is not none else none -%}
    {%- set since = found.rows[0][0] if found is not none else none -%}
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
            {{- log(model.name ~ ": code tables changed since " ~ since ~ ": every event", info=true) -}}
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
        {{- log(model.name ~ ": " ~ ids | length ~ " events changed since " ~ since ~ ": every event", info=true) -}}
        {{ return(none) }}
    {%- endif -%}
    {{- log(model.name ~ ": " ~ ids | length ~ " events changed since " ~ since, info=true) -}}
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
