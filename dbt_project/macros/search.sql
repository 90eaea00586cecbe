{#
  The full-text document of a row: a tsvector on PostgreSQL (GIN-indexed by the model), the
  lower-cased text elsewhere.
#}
{% macro ntsb_search_document(columns) -%}
    {{ return(adapter.dispatch('ntsb_search_document', 'ntsb')(columns)) }}
{%- endmacro %}

{% macro default__ntsb_search_document(columns) -%}
    lower({%- for c in columns %}coalesce({{ c }}, ''){% if not loop.last %} || ' ' || {% endif %}{% endfor -%})
{%- endmacro %}

{% macro postgres__ntsb_search_document(columns) -%}
    {%- for c in columns %}
    setweight(to_tsvector('english', coalesce({{ c }}, '')), '{{ "ABCD"[loop.index0] }}'){% if not loop.last %} ||{% endif %}
    {%- endfor %}
{%- endmacro %}

{# Indexes for the search document: GIN on PostgreSQL; none where it is plain text. #}
{% macro ntsb_search_indexes() -%}
    {{ return(adapter.dispatch('ntsb_search_indexes', 'ntsb')()) }}
{%- endmacro %}
{% macro default__ntsb_search_indexes() -%} {{ return([]) }} {%- endmacro %}
{% macro postgres__ntsb_search_indexes() -%}
    {{ return([{'columns': ['search_document'], 'type': 'gin'}]) }}
{%- endmacro %}
