-- Narratives and probable causes, one row per aircraft, with a full-text search document
-- (tsvector + GIN index on PostgreSQL; probable cause ranks above the narrative).
{{ config(indexes=[{'columns': ['ev_id']}] + ntsb_search_indexes()) }}
select
    n.ev_id,
    n.aircraft_key,
    n.probable_cause,
    n.narrative,
    {{ ntsb_search_document(['n.probable_cause', 'n.narrative']) }} as search_document
from {{ ref('stg_ntsb__narratives') }} as n
join {{ ref('stg_ntsb__events') }} as e on e.ev_id = n.ev_id
