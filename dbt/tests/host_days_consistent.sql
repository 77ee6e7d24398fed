-- Per (host, month): no day has more unique visitors than hits, and hosts_cumulated lists
-- exactly the days with hits.
SELECT r.host, r.month_start
  FROM {{ source('activity', 'host_activity_reduced') }} r
  FULL JOIN {{ source('activity', 'hosts_cumulated') }} c USING (host, month_start)
 WHERE r.host IS NULL OR c.host IS NULL
    OR EXISTS (SELECT 1 FROM generate_subscripts(r.hit_array, 1) AS d
                WHERE r.unique_visitors_array[d] > r.hit_array[d])
    OR ARRAY(SELECT r.month_start + d - 1 FROM generate_subscripts(r.hit_array, 1) AS d
              WHERE r.hit_array[d] > 0 ORDER BY d DESC) <> c.host_activity_datelist
