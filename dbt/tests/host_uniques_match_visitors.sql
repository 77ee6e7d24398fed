-- A day's per-host uniques (the sketch's cardinality) is that day's element of
-- host_activity_reduced.unique_visitors_array: both come from the same sketch.
SELECT d.host, d.day, d.uniques,
       r.unique_visitors_array[extract(day FROM d.day)::integer] AS unique_visitors
  FROM {{ source('activity', 'host_uniques_daily') }} d
  LEFT JOIN {{ source('activity', 'host_activity_reduced') }} r
    ON r.host = d.host AND r.month_start = date_trunc('month', d.day::timestamp)::date
 WHERE r.unique_visitors_array[extract(day FROM d.day)::integer] IS DISTINCT FROM d.uniques
