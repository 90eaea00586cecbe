-- Narratives and probable causes, one row per aircraft, with a full-text search document
-- (tsvector + GIN index on PostgreSQL; probable cause ranks above the narrative).
-- Incremental: the events changed since the last run (macros/incremental.sql); building
-- the search document is the costly part.
-- Its config is here, not in _core.yml: its indexes come from a macro (per warehouse).
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['ev_id', 'aircraft_key'],
          indexes=[{'columns': ['ev_id', 'aircraft_key'], 'unique': true}] + ntsb_search_indexes()) }}
{%- set since = ntsb_since() %}
select
    n.ev_id,
    n.aircraft_key,
    n.probable_cause,
    n.narrative,
    n.loaded_at,
    {{ ntsb_search_document(['n.probable_cause', 'n.narrative']) }} as search_document,
    {{ ntsb_loaded_through() }} as loaded_through
from {{ ntsb_changed_rows(ref('stg_ntsb__narratives'), since) }} as n
inner join {{ ntsb_changed_rows(ref('stg_ntsb__events'), since) }} as e on n.ev_id = e.ev_id
