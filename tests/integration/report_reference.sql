-- report_reference.sql — what `activity report` must print for one month, computed in plain
-- SQL from the raw input (raw_events, raw_devices; see reference.sql), for
-- tests/integration/test_report.sh.
--
-- Owns the definition of the report's numbers:
--   * busiest hosts: hits = COUNT(1) in the month, peak daily uniques = the largest
--     COUNT(DISTINCT user_id) of one day, active days = days with a hit; the top :limit by
--     hits, ties by host in byte order;
--   * top hosts by monthly uniques: COUNT(DISTINCT user_id) over the month, every host with
--     an identified user (the test takes the top :limit, or compares estimates within a
--     tolerance);
--   * per day from the first to the last day with an identified user: DAU = distinct users
--     that day, WAU = over the 7 days ending that day, MAU = over the 28 days ending that
--     day, stickiness = DAU / MAU;
--   * growth accounting per day, over every user seen on or before the day: new (first
--     active that day), retained (active that day and the day before), resurrected (active
--     that day, not the day before, seen earlier), churned (active the day before, not that
--     day), stale (active neither day, seen earlier);
--   * browsers: distinct users per browser type over the month through known devices (the
--     inner join of user_devices_cumulated) and the sum of their active days per
--     (user, browser type);
--   * the busiest hosts' hits on every day of the month, 0 where none.
--
-- Usage: psql -v month_start=2024-01-01 -v limit=10 -f report_reference.sql
-- Leaves expected_report_* tables; the last statement prints them as one JSON object.

\set ON_ERROR_STOP 1

DROP TABLE IF EXISTS expected_report_user_days, expected_report_daily_users,
    expected_report_growth, expected_report_host_days;

CREATE TABLE expected_report_user_days AS
SELECT DISTINCT user_id, event_time::date AS day FROM raw_events WHERE user_id IS NOT NULL;
CREATE INDEX ON expected_report_user_days (day, user_id);
ANALYZE expected_report_user_days;

-- Every day from the first to the last active one, in every month.
CREATE TABLE expected_report_daily_users AS
SELECT d.day,
       (SELECT count(DISTINCT user_id) FROM expected_report_user_days u WHERE u.day = d.day) AS dau,
       (SELECT count(DISTINCT user_id) FROM expected_report_user_days u
         WHERE u.day BETWEEN d.day - 6 AND d.day) AS wau,
       (SELECT count(DISTINCT user_id) FROM expected_report_user_days u
         WHERE u.day BETWEEN d.day - 27 AND d.day) AS mau
  FROM (SELECT generate_series(min(day), max(day), interval '1 day')::date AS day
          FROM expected_report_user_days) d;

CREATE TABLE expected_report_growth AS
WITH firsts AS (SELECT user_id, min(day) AS first_day FROM expected_report_user_days GROUP BY 1),
     days AS (SELECT generate_series(min(day), max(day), interval '1 day')::date AS day
                FROM expected_report_user_days)
SELECT days.day,
       count(*) FILTER (WHERE f.first_day = days.day) AS new,
       count(*) FILTER (WHERE a.user_id IS NOT NULL AND y.user_id IS NOT NULL) AS retained,
       count(*) FILTER (WHERE a.user_id IS NOT NULL AND y.user_id IS NULL
                          AND f.first_day < days.day) AS resurrected,
       count(*) FILTER (WHERE a.user_id IS NULL AND y.user_id IS NOT NULL) AS churned,
       count(*) FILTER (WHERE a.user_id IS NULL AND y.user_id IS NULL) AS stale
  FROM days
  JOIN firsts f ON f.first_day <= days.day
  LEFT JOIN expected_report_user_days a ON a.user_id = f.user_id AND a.day = days.day
  LEFT JOIN expected_report_user_days y ON y.user_id = f.user_id AND y.day = days.day - 1
 GROUP BY days.day;

CREATE TABLE expected_report_host_days AS
SELECT host, event_time::date AS day, count(*) AS hits, count(DISTINCT user_id) AS uniques
  FROM raw_events
 WHERE date_trunc('month', event_time) = :'month_start'::date
 GROUP BY 1, 2;

WITH busiest AS (
    SELECT host, sum(hits)::bigint AS hits, max(uniques) AS peak_daily_uniques,
           count(*) AS active_days
      FROM expected_report_host_days GROUP BY host
     ORDER BY hits DESC, host COLLATE "C" LIMIT :limit
), month_days AS (
    SELECT generate_series(:'month_start'::date,
                           (:'month_start'::date + interval '1 month')::date - 1,
                           interval '1 day')::date AS day
)
SELECT json_build_object(
    'month', to_char(:'month_start'::date, 'YYYY-MM'),
    'days_in_month', (SELECT count(*) FROM month_days),
    'busiest_hosts', (SELECT coalesce(json_agg(b ORDER BY hits DESC, host COLLATE "C"), '[]')
                        FROM busiest b),
    'host_monthly_uniques',
        (SELECT coalesce(json_agg(t ORDER BY monthly_uniques DESC, host COLLATE "C"), '[]')
           FROM (SELECT host, count(DISTINCT user_id) AS monthly_uniques FROM raw_events
                  WHERE date_trunc('month', event_time) = :'month_start'::date
                  GROUP BY host HAVING count(user_id) > 0) t),
    'daily_users', (SELECT coalesce(json_agg(t ORDER BY day), '[]')
                      FROM (SELECT day::text, dau, wau, mau FROM expected_report_daily_users
                             WHERE day IN (SELECT day FROM month_days)) t),
    'growth_accounting', (SELECT coalesce(json_agg(t ORDER BY day), '[]')
                            FROM (SELECT day::text, new, retained, resurrected, churned, stale
                                    FROM expected_report_growth
                                   WHERE day IN (SELECT day FROM month_days)) t),
    'browsers', (SELECT coalesce(json_agg(t ORDER BY users DESC, browser_type COLLATE "C"), '[]')
                   FROM (SELECT coalesce(browser_type, '(null)') AS browser_type,
                                count(DISTINCT user_id) AS users, count(*) AS user_days
                           FROM (SELECT DISTINCT e.user_id, d.browser_type, e.event_time::date
                                   FROM raw_events e JOIN raw_devices d USING (device_id)
                                  WHERE e.user_id IS NOT NULL
                                    AND date_trunc('month', e.event_time) = :'month_start'::date
                                ) ud
                          GROUP BY browser_type
                          ORDER BY users DESC, coalesce(browser_type, '(null)') COLLATE "C"
                          LIMIT :limit) t),
    'busiest_hosts_daily_hits',
        (SELECT coalesce(json_agg(json_build_object('host', host, 'day', day, 'hits', hits)
                                  ORDER BY bhits DESC, host COLLATE "C", day), '[]')
           FROM (SELECT b.host, m.day::text AS day, coalesce(h.hits, 0) AS hits, b.hits AS bhits
                   FROM busiest b CROSS JOIN month_days m
                   LEFT JOIN expected_report_host_days h ON h.host = b.host AND h.day = m.day) t),
    'row_counts', json_build_object(
        'host_activity_reduced',
            (SELECT count(DISTINCT (host, date_trunc('month', event_time))) FROM raw_events),
        'hosts_cumulated',
            (SELECT count(DISTINCT (host, date_trunc('month', event_time))) FROM raw_events),
        'user_devices_cumulated',
            (SELECT count(*) FROM (SELECT DISTINCT e.user_id, d.browser_type,
                                          date_trunc('month', e.event_time)
                                     FROM raw_events e JOIN raw_devices d USING (device_id)
                                    WHERE e.user_id IS NOT NULL) x),
        'users_cumulated',
            (SELECT count(DISTINCT (user_id, date_trunc('month', event_time))) FROM raw_events
              WHERE user_id IS NOT NULL),
        'host_daily_uniques', (SELECT count(DISTINCT (host, event_time::date)) FROM raw_events),
        'dim_devices', (SELECT count(DISTINCT device_id) FROM raw_devices),
        'dim_users', 0)
);
