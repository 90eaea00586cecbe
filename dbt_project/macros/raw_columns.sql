{#
  Staging reads raw tables that grow with the releases loaded: a table may not exist yet
  (no release delivered it) and older releases lack newer columns. These macros let one
  staging model work on any of those warehouses:

    {%- set raw = ntsb_raw('events') -%}      relation + the columns it has right now
    {{ ntsb_col(raw, 'dec_latitude', 'float') }}   the column, or a typed NULL
    from {{ ntsb_from(raw) }}                 the table, or an empty row set
#}
{% macro ntsb_raw(table) -%}
    {%- set rel = source('raw', table) -%}
    {%- set found = none -%}
    {%- set names = [] -%}
    {%- if rel.schema is none -%}
        {#- a dbt unit test: the source is a fixture with every column of the raw table -#}
        {{ return({'relation': rel, 'exists': true, 'columns': none}) }}
    {%- elif execute -%}
        {%- set found = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
        {%- if found is not none -%}
            {%- for c in adapter.get_columns_in_relation(found) -%}
                {%- do names.append(c.name | lower) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{ return({'relation': rel, 'exists': found is not none, 'columns': names}) }}
{%- endmacro %}

{% macro ntsb_col(raw, name, type) -%}
    {%- if raw['columns'] is none or name | lower in raw['columns'] -%}
        {{ adapter.quote(name) }}
    {%- else -%}
        cast(null as {{ ntsb_type(type) }})
    {%- endif -%}
{%- endmacro %}

{% macro ntsb_from(raw) -%}
    {%- if raw['exists'] or not execute -%}
        {{ raw['relation'] }}
    {%- else -%}
        (select 1 as no_rows_yet where 1 = 0) as missing_table
    {%- endif -%}
{%- endmacro %}

{% macro ntsb_type(type) -%}
    {#- the SQL type of a logical type on this warehouse, from the one type map (vars.ntsb_types) -#}
    {%- set types = var('ntsb_types') -%}
    {%- if type not in types -%}
        {{ exceptions.raise_compiler_error("ntsb_type: unknown logical type '" ~ type ~ "' (known: " ~ types.keys() | join(', ') ~ ")") }}
    {%- endif -%}
    {{ types[type][target.type] }}
{%- endmacro %}
