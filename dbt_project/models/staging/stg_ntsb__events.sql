{%- set raw = ntsb_raw('events') %}
with src as (
    select
        {{ ntsb_col(raw, 'ev_id', 'string') }} as ev_id,
        {{ ntsb_text(ntsb_col(raw, 'ntsb_no', 'string')) }} as ntsb_no,
        {{ ntsb_code(ntsb_col(raw, 'ev_type', 'string')) }} as event_type,
        {{ ntsb_col(raw, 'ev_date', 'date') }} as event_date,
        {{ ntsb_col(raw, 'ev_time', 'int') }} as event_time_hhmm,
        {{ ntsb_code(ntsb_col(raw, 'ev_tmzn', 'string')) }} as time_zone,
        {{ ntsb_text(ntsb_col(raw, 'ev_city', 'string')) }} as city,
        {{ ntsb_code(ntsb_col(raw, 'ev_state', 'string')) }} as state,
        {{ ntsb_code(ntsb_col(raw, 'ev_country', 'string')) }} as country,
        {{ ntsb_coordinate(ntsb_col(raw, 'latitude_decimal', 'float'), 90) }} as latitude,
        {{ ntsb_coordinate(ntsb_col(raw, 'longitude_decimal', 'float'), 180) }} as longitude,
        {{ ntsb_text(ntsb_col(raw, 'latitude', 'string')) }} as latitude_dms,
        {{ ntsb_text(ntsb_col(raw, 'longitude', 'string')) }} as longitude_dms,
        {{ ntsb_code(ntsb_col(raw, 'ev_nr_apt_id', 'string')) }} as airport_id,
        {{ ntsb_text(ntsb_col(raw, 'apt_name', 'string')) }} as airport_name,
        {{ ntsb_col(raw, 'apt_dist', 'float') }} as airport_distance_sm,
        {{ ntsb_code(ntsb_col(raw, 'light_cond', 'string')) }} as light_condition,
        {{ ntsb_code(ntsb_col(raw, 'wx_cond_basic', 'string')) }} as weather_condition,
        {{ ntsb_col(raw, 'vis_sm', 'float') }} as visibility_sm,
        {{ ntsb_col(raw, 'wind_vel_kts', 'int') }} as wind_speed_kts,
        {{ ntsb_col(raw, 'wx_temp', 'int') }} as temperature_c,
        {{ ntsb_code(ntsb_col(raw, 'ev_highest_injury', 'string')) }} as highest_injury_reported,
        coalesce({{ ntsb_col(raw, 'inj_tot_f', 'int') }}, 0) as fatalities,
        coalesce({{ ntsb_col(raw, 'inj_tot_s', 'int') }}, 0) as serious_injuries,
        coalesce({{ ntsb_col(raw, 'inj_tot_m', 'int') }}, 0) as minor_injuries,
        coalesce({{ ntsb_col(raw, 'inj_tot_n', 'int') }}, 0) as uninjured,
        {{ ntsb_col(raw, '_release_id', 'string') }} as release_id,
        {{ ntsb_col(raw, '_loaded_at', 'timestamp') }} as loaded_at
    from {{ ntsb_from(raw) }}
),

releases as (
    select
        release_id,
        source_system
    from {{ source('raw', '_releases') }}
)

select
    src.*,
    releases.source_system,
    -- severity: NTSB's highest injury where reported, else derived from the counts
    coalesce(
        case when src.highest_injury_reported in ('FATL', 'SERS', 'MINR', 'NONE') then src.highest_injury_reported end,
        case
            when src.fatalities > 0 then 'FATL' when src.serious_injuries > 0 then 'SERS'
            when src.minor_injuries > 0 then 'MINR' when src.uninjured > 0 then 'NONE'
        end
    ) as severity,
    {{ ntsb_label('events', 'ev_type', 'src.event_type') }} as event_type_label,
    {{ ntsb_label('events', 'ev_state', 'src.state') }} as state_label,
    {{ ntsb_label('events', 'ev_country', 'src.country') }} as country_label,
    {{ ntsb_label('events', 'light_cond', 'src.light_condition') }} as light_condition_label,
    {{ ntsb_label('events', 'wx_cond_basic', 'src.weather_condition') }} as weather_condition_label
from src
left join releases on src.release_id = releases.release_id
