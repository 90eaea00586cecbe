{#- History of every aircraft row. A SQL snapshot rather than a YAML one for the filter: a run
    reads the aircraft of the events changed since its last run (macros/incremental.sql), not
    all of them; the rows it does not read keep their versions (hard deletes are ignored). -#}
{% snapshot snap_aircraft %}
{{ config(schema='snapshots', unique_key=['ev_id', 'aircraft_key'], strategy='check',
          check_cols=['make', 'model', 'category', 'engine_type', 'engine_count', 'homebuilt', 'year_built',
                      'damage', 'far_part']) }}
    {%- set since = ntsb_since() %}
    select
        a.*,
        {{ ntsb_loaded_through() }} as loaded_through
    from {{ ref('int_aircraft__with_engine') }} as a
    where {{ ntsb_only(since, 'ev_id') }}
{% endsnapshot %}
