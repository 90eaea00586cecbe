-- Codes of the pre-2008 sequence of events (subjects, modifiers, persons).
{%- set raw = ntsb_raw('ct_seqevt') %}
select
    {{ ntsb_code(ntsb_col(raw, 'code', 'string')) }} as code,
    {{ ntsb_text(ntsb_col(raw, 'meaning', 'string')) }} as meaning
from {{ ntsb_from(raw) }}
