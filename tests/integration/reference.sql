-- reference.sql — the expected sink tables, computed from the raw input in plain SQL.
--
-- Owns: the definition of "correct" for the integration tests. Given the raw data the test
-- loaded,
--
--     raw_events(url text, referrer text, user_id bigint, device_id bigint, host text,
--                event_time timestamp)                          -- UTC, no time zone
--     raw_devices(device_id bigint, browser_type text, os_type text, device_type text)
--
-- it (re)creates expected_host_activity_reduced, expected_hosts_cumulated,
-- expected_user_devices_cumulated and expected_users_cumulated with the columns and
-- meanings of the contract (DESIGN.md, "Sink tables"), the way the seeds do it in batch:
-- COUNT(1) for hits, arrays with one element per day of the month, datelists most recent
-- first, and datelist_int with bit (d-1) set iff active on day d (least significant bit =
-- day 1).
--
-- Days are UTC calendar days (event_time::date); month_start is the first day of the
-- event's month, so events of neighbouring months produce rows of their own. Hosts are
-- compared as given (no case folding, no trailing-dot or port stripping). Exact duplicate
-- events count twice as hits and change nothing else. raw_devices is expected to hold one
-- row per device_id (the latest attributes); a warning is printed if it does not.
--
-- Unique visitors are the postgresql-hll extension's: expected_host_daily_uniques holds the
-- sketch the extension builds from each (host, day)'s raw events,
-- hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1), which the processor's
-- host_daily_uniques must equal byte for byte, and unique_visitors_array[d] is
-- round(#sketch): exactly COUNT(DISTINCT user_id) up to 1,280 users (EXPLICIT), the
-- extension's HyperLogLog estimate past that (exact_visitors keeps COUNT(DISTINCT)).
--
-- Usage: psql -v ON_ERROR_STOP=1 -f tests/integration/reference.sql   (then compare.sql)

\set ON_ERROR_STOP 1

DO $$
DECLARE n bigint;
BEGIN
    SELECT count(*) INTO n
      FROM (SELECT device_id FROM raw_devices GROUP BY device_id HAVING count(*) > 1) d;
    IF n > 0 THEN
        RAISE WARNING 'reference.sql: raw_devices has % device_id(s) with more than one row; '
                      'user_devices_cumulated will have a row per browser_type seen', n;
    END IF;
END
$$;

CREATE EXTENSION IF NOT EXISTS hll;

-- host_daily_uniques(host, day, users hll)
DROP TABLE IF EXISTS expected_host_daily_uniques;
CREATE TABLE expected_host_daily_uniques AS
SELECT host,
       event_time::date                                      AS day,
       hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1)   AS users,
       COUNT(DISTINCT user_id)                               AS exact_visitors
  FROM raw_events
 GROUP BY 1, 2;

ALTER TABLE expected_host_daily_uniques ADD PRIMARY KEY (host, day);

-- host_activity_reduced(host, month_start, hit_array bigint[], unique_visitors_array bigint[])
DROP TABLE IF EXISTS expected_host_activity_reduced;
CREATE TABLE expected_host_activity_reduced AS
WITH daily AS (
    SELECT host,
           date_trunc('month', event_time)::date AS month_start,
           event_time::date                      AS day,
           COUNT(1)                              AS hits
      FROM raw_events
     GROUP BY 1, 2, 3
),
host_months AS (
    SELECT DISTINCT host, month_start FROM daily
),
month_days AS (   -- every day of each (host, month), active or not
    SELECT hm.host, hm.month_start, g.day::date AS day
      FROM host_months hm
     CROSS JOIN LATERAL generate_series(hm.month_start::timestamp,
                                        hm.month_start + interval '1 month' - interval '1 day',
                                        interval '1 day') AS g(day)
)
SELECT md.host,
       md.month_start,
       array_agg(COALESCE(d.hits, 0)            ORDER BY md.day)::bigint[] AS hit_array,
       array_agg(COALESCE(round(#u.users), 0) ORDER BY md.day)::bigint[] AS unique_visitors_array
  FROM month_days md
  LEFT JOIN daily d
    ON d.host = md.host AND d.month_start = md.month_start AND d.day = md.day
  LEFT JOIN expected_host_daily_uniques u
    ON u.host = md.host AND u.day = md.day
 GROUP BY md.host, md.month_start;

ALTER TABLE expected_host_activity_reduced ADD PRIMARY KEY (host, month_start);

-- hosts_cumulated(host, month_start, host_activity_datelist date[])
DROP TABLE IF EXISTS expected_hosts_cumulated;
CREATE TABLE expected_hosts_cumulated AS
SELECT host,
       date_trunc('month', event_time)::date                                AS month_start,
       array_agg(DISTINCT event_time::date ORDER BY event_time::date DESC)  AS host_activity_datelist
  FROM raw_events
 GROUP BY 1, 2;

ALTER TABLE expected_hosts_cumulated ADD PRIMARY KEY (host, month_start);

-- user_devices_cumulated(user_id, browser_type, month_start, device_activity_datelist date[],
--                        datelist_int integer)
DROP TABLE IF EXISTS expected_user_devices_cumulated;
CREATE TABLE expected_user_devices_cumulated AS
WITH user_days AS (   -- one row per (user, browser_type, month, active day)
    SELECT e.user_id,
           d.browser_type,
           date_trunc('month', e.event_time)::date AS month_start,
           e.event_time::date                      AS day
      FROM raw_events e
      JOIN raw_devices d ON d.device_id = e.device_id    -- unknown / null devices drop out
     WHERE e.user_id IS NOT NULL
     GROUP BY 1, 2, 3, 4
)
SELECT user_id,
       browser_type,
       month_start,
       array_agg(day ORDER BY day DESC)                               AS device_activity_datelist,
       bit_or(1 << (extract(day FROM day)::integer - 1))::integer     AS datelist_int
  FROM user_days
 GROUP BY 1, 2, 3;

-- browser_type may be null if raw_devices has a null one; a unique index still documents
-- the key without refusing that case.
CREATE UNIQUE INDEX ON expected_user_devices_cumulated (user_id, browser_type, month_start);

-- users_cumulated(user_id, month_start, dates_active date[], datelist_int integer): every
-- identified user whatever the device: no join, so unknown and null devices count.
DROP TABLE IF EXISTS expected_users_cumulated;
CREATE TABLE expected_users_cumulated AS
WITH user_days AS (
    SELECT DISTINCT user_id,
           date_trunc('month', event_time)::date AS month_start,
           event_time::date                      AS day
      FROM raw_events
     WHERE user_id IS NOT NULL
)
SELECT user_id,
       month_start,
       array_agg(day ORDER BY day DESC)                           AS dates_active,
       bit_or(1 << (extract(day FROM day)::integer - 1))::integer AS datelist_int
  FROM user_days
 GROUP BY 1, 2;

ALTER TABLE expected_users_cumulated ADD PRIMARY KEY (user_id, month_start);

ANALYZE expected_host_activity_reduced;
ANALYZE expected_hosts_cumulated;
ANALYZE expected_user_devices_cumulated;
ANALYZE expected_users_cumulated;

SELECT 'expected_host_activity_reduced'  AS "table", count(*) AS "rows" FROM expected_host_activity_reduced
UNION ALL
SELECT 'expected_hosts_cumulated',        count(*) FROM expected_hosts_cumulated
UNION ALL
SELECT 'expected_user_devices_cumulated', count(*) FROM expected_user_devices_cumulated
UNION ALL
SELECT 'expected_users_cumulated',        count(*) FROM expected_users_cumulated;
