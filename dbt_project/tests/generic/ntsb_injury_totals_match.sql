{#
  Cross-table consistency: an event's fatal/serious/minor totals equal the people NTSB lists
  in the injury table for the event (person category ABRD, "aboard", summed over aircraft),
  wherever the injury table has rows for the event.
#}
{% test ntsb_injury_totals_match(model, injury_model, person_category='ABRD') %}
with e as (select * from {{ model }}),
listed as (
    select ev_id,
           sum(case when injury_level = 'FATL' then person_count else 0 end) as fatal,
           sum(case when injury_level = 'SERS' then person_count else 0 end) as serious,
           sum(case when injury_level = 'MINR' then person_count else 0 end) as minor
    from {{ injury_model }}
    where person_category = '{{ person_category }}'
    group by ev_id
)
select e.ev_id, e.fatalities, listed.fatal, e.serious_injuries, listed.serious, e.minor_injuries, listed.minor
from e
join listed on listed.ev_id = e.ev_id
where e.fatalities <> listed.fatal or e.serious_injuries <> listed.serious or e.minor_injuries <> listed.minor
{% endtest %}
