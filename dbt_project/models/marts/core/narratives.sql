-- Narratives and probable causes, one row per aircraft, with a full-text search document
-- (tsvector + GIN index on PostgreSQL; probable cause ranks above the narrative).
-- Incremental on both warehouses (the other core marts are tables on DuckDB): only
-- narratives loaded since the last run are rewritten, building the search document is the
-- costly part (about 10 s of a 100,000-event build on DuckDB).
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['ev_id', 'aircraft_key'],
          indexes=[{'columns': ['ev_id', 'aircraft_key'], 'unique': true}] + ntsb_search_indexes()) }}
select
    n.ev_id,
    n.aircraft_key,
    n.probable_cause,
    n.narrative,
    n.loaded_at,
    {{ ntsb_search_document(['n.probable_cause', 'n.narrative']) }} as search_document
from {{ ref('stg_ntsb__narratives') }} as n
join {{ ref('stg_ntsb__events') }} as e on e.ev_id = n.ev_id
{% if is_incremental() %}
where n.loaded_at > (select max(t.loaded_at) from {{ this }} as t)
{% endif %}
