-- compare.sql — compares the real sink tables with the expected ones from reference.sql.
--
-- Owns: the pass/fail verdict of an integration run. It reads
--
--     host_activity_reduced(host, month_start, hit_array, unique_visitors_array)
--     hosts_cumulated(host, month_start, host_activity_datelist)
--     user_devices_cumulated(user_id, browser_type, month_start, device_activity_datelist,
--                            datelist_int)
--     users_cumulated(user_id, month_start, dates_active, datelist_int)
--     host_daily_uniques(host, day, users)
--
-- (extra columns are ignored) and the expected_* tables of the same shape, and fails — an
-- ERROR, so `psql -v ON_ERROR_STOP=1` exits non-zero — on any difference:
--   * missing rows (key only in expected_*), extra rows (key only in the real table) and
--     duplicate keys in the real table;
--   * hit_array, host_activity_datelist, device_activity_datelist, dates_active and
--     datelist_int must be exactly equal (arrays: same elements, same order, same bounds — element [d] is day d);
--   * host_daily_uniques.users must be the bytes the postgresql-hll extension builds from the
--     same events (compared as their text, '\x...', the same for an hll and a bytea column);
--   * unique_visitors_array: same bounds and every element equal to the reference's, which is
--     round(#sketch) of the extension's sketch (-v uv_tolerance_pct=P allows P% off, and
--     exactly equal only below -v uv_exact_below=N; the defaults demand equality).
-- It prints the rows compared per table, the counts of each kind of difference and a few
-- examples, and ends with one summary line: `compare: OK ...` or an ERROR `compare: FAIL ...`.
--
-- Usage: psql -X -v ON_ERROR_STOP=1 -f tests/integration/compare.sql

\set ON_ERROR_STOP 1
\set QUIET on
-- Visitor tolerance, overridable: psql -v uv_tolerance_pct=3 -v uv_exact_below=50 ...
\if :{?uv_tolerance_pct}
\else
\set uv_tolerance_pct 0
\endif
\if :{?uv_exact_below}
\else
\set uv_exact_below 100
\endif
\pset footer off
SET client_min_messages = warning;

DROP TABLE IF EXISTS pg_temp.cmp_diff;
DROP TABLE IF EXISTS pg_temp.cmp_rows;
DROP TABLE IF EXISTS pg_temp.cmp_har;
DROP TABLE IF EXISTS pg_temp.cmp_hc;
DROP TABLE IF EXISTS pg_temp.cmp_udc;
DROP TABLE IF EXISTS pg_temp.cmp_uc;
DROP TABLE IF EXISTS pg_temp.cmp_hdu;
CREATE TEMP TABLE cmp_diff (tbl text, kind text, key text, detail text);
CREATE TEMP TABLE cmp_rows (tbl text, expected_rows bigint, actual_rows bigint,
                            compared_rows bigint, visitors_max_err_pct numeric);

-- ------------------------------------------------------------------ host_activity_reduced

CREATE TEMP TABLE cmp_har AS
SELECT COALESCE(e.host, r.host)               AS host,
       COALESCE(e.month_start, r.month_start) AS month_start,
       e.present AS in_expected, r.present AS in_actual,
       e.hit_array AS e_hits, r.hit_array AS r_hits,
       e.unique_visitors_array AS e_uv, r.unique_visitors_array AS r_uv
  FROM (SELECT true AS present, host, month_start, hit_array, unique_visitors_array
          FROM expected_host_activity_reduced) e
  FULL JOIN (SELECT true AS present, host::text AS host, month_start::date AS month_start,
                    hit_array::bigint[] AS hit_array,
                    unique_visitors_array::bigint[] AS unique_visitors_array
               FROM host_activity_reduced) r
    ON r.host = e.host AND r.month_start = e.month_start;

INSERT INTO cmp_diff
SELECT 'host_activity_reduced',
       CASE WHEN in_actual IS NULL THEN 'missing' ELSE 'extra' END,
       format('(%s, %s)', host, month_start), NULL
  FROM cmp_har
 WHERE in_actual IS NULL OR in_expected IS NULL;

INSERT INTO cmp_diff
SELECT 'host_activity_reduced', 'duplicate', format('(%s, %s)', host, month_start),
       format('%s rows', count(*))
  FROM host_activity_reduced
 GROUP BY host, month_start
HAVING count(*) > 1;

INSERT INTO cmp_diff
SELECT 'host_activity_reduced', 'hits', format('(%s, %s)', c.host, c.month_start),
       CASE WHEN array_dims(c.e_hits) IS DISTINCT FROM array_dims(c.r_hits)
            THEN format('dims: expected %s, got %s', array_dims(c.e_hits), array_dims(c.r_hits))
            ELSE format('%s day(s) differ, e.g. day %s: expected %s, got %s',
                        b.n, b.d, c.e_hits[b.d], COALESCE(c.r_hits[b.d]::text, 'NULL')) END
  FROM cmp_har c
  CROSS JOIN LATERAL (
        SELECT count(*) AS n, min(i) AS d
          FROM generate_series(1, GREATEST(cardinality(c.e_hits), cardinality(c.r_hits))) i
         WHERE c.e_hits[i] IS DISTINCT FROM c.r_hits[i]) b
 WHERE c.in_expected AND c.in_actual AND c.e_hits IS DISTINCT FROM c.r_hits;

INSERT INTO cmp_diff
SELECT 'host_activity_reduced', 'unique_visitors', format('(%s, %s)', c.host, c.month_start),
       CASE WHEN array_dims(c.e_uv) IS DISTINCT FROM array_dims(c.r_uv)
            THEN format('dims: expected %s, got %s', array_dims(c.e_uv), array_dims(c.r_uv))
            ELSE format('%s day(s) out of tolerance, e.g. day %s: expected %s, got %s',
                        b.n, b.d, c.e_uv[b.d], COALESCE(c.r_uv[b.d]::text, 'NULL')) END
  FROM cmp_har c
  CROSS JOIN LATERAL (
        SELECT count(*) AS n, min(i) AS d
          FROM generate_series(1, GREATEST(cardinality(c.e_uv), cardinality(c.r_uv))) i
         WHERE NOT COALESCE(CASE WHEN c.e_uv[i] < :uv_exact_below THEN c.r_uv[i] = c.e_uv[i]
                                 ELSE 100 * abs(c.r_uv[i] - c.e_uv[i])
                                      <= (:uv_tolerance_pct)::numeric * c.e_uv[i] END,
                            false)) b
 WHERE c.in_expected AND c.in_actual
   AND (b.n > 0 OR array_dims(c.e_uv) IS DISTINCT FROM array_dims(c.r_uv));

INSERT INTO cmp_rows
SELECT 'host_activity_reduced',
       count(*) FILTER (WHERE in_expected), count(*) FILTER (WHERE in_actual),
       count(*) FILTER (WHERE in_expected AND in_actual),
       (SELECT round(100 * max(abs(c.r_uv[i] - c.e_uv[i])::numeric / c.e_uv[i]), 3)
          FROM cmp_har c, generate_series(1, cardinality(c.e_uv)) i
         WHERE c.in_expected AND c.in_actual AND c.e_uv[i] > 0)
  FROM cmp_har;

-- --------------------------------------------------------------------- host_daily_uniques

CREATE TEMP TABLE cmp_hdu AS
SELECT COALESCE(e.host, r.host) AS host, COALESCE(e.day, r.day) AS day,
       e.present AS in_expected, r.present AS in_actual,
       e.users AS e_users, r.users AS r_users
  FROM (SELECT true AS present, host, day, users::text AS users
          FROM expected_host_daily_uniques) e
  FULL JOIN (SELECT true AS present, host::text AS host, day::date AS day, users::text AS users
               FROM host_daily_uniques) r
    ON r.host = e.host AND r.day = e.day;

INSERT INTO cmp_diff
SELECT 'host_daily_uniques', CASE WHEN in_actual IS NULL THEN 'missing' ELSE 'extra' END,
       format('(%s, %s)', host, day), NULL
  FROM cmp_hdu
 WHERE in_actual IS NULL OR in_expected IS NULL;

INSERT INTO cmp_diff
SELECT 'host_daily_uniques', 'sketch', format('(%s, %s)', host, day),
       format('expected %s... (%s bytes), got %s... (%s bytes)',
              left(e_users, 26), (length(e_users) - 2) / 2,
              left(r_users, 26), (length(r_users) - 2) / 2)
  FROM cmp_hdu
 WHERE in_expected AND in_actual AND e_users <> r_users;

INSERT INTO cmp_rows
SELECT 'host_daily_uniques',
       count(*) FILTER (WHERE in_expected), count(*) FILTER (WHERE in_actual),
       count(*) FILTER (WHERE in_expected AND in_actual), NULL
  FROM cmp_hdu;

-- ------------------------------------------------------------------------ hosts_cumulated

CREATE TEMP TABLE cmp_hc AS
SELECT COALESCE(e.host, r.host)               AS host,
       COALESCE(e.month_start, r.month_start) AS month_start,
       e.present AS in_expected, r.present AS in_actual,
       e.host_activity_datelist AS e_dl, r.host_activity_datelist AS r_dl
  FROM (SELECT true AS present, host, month_start, host_activity_datelist
          FROM expected_hosts_cumulated) e
  FULL JOIN (SELECT true AS present, host::text AS host, month_start::date AS month_start,
                    host_activity_datelist::date[] AS host_activity_datelist
               FROM hosts_cumulated) r
    ON r.host = e.host AND r.month_start = e.month_start;

INSERT INTO cmp_diff
SELECT 'hosts_cumulated', CASE WHEN in_actual IS NULL THEN 'missing' ELSE 'extra' END,
       format('(%s, %s)', host, month_start), NULL
  FROM cmp_hc
 WHERE in_actual IS NULL OR in_expected IS NULL;

INSERT INTO cmp_diff
SELECT 'hosts_cumulated', 'duplicate', format('(%s, %s)', host, month_start),
       format('%s rows', count(*))
  FROM hosts_cumulated
 GROUP BY host, month_start
HAVING count(*) > 1;

INSERT INTO cmp_diff
SELECT 'hosts_cumulated', 'datelist', format('(%s, %s)', host, month_start),
       format('missing days %s, extra days %s (expected %s, got %s)',
              ARRAY(SELECT unnest(e_dl) EXCEPT SELECT unnest(r_dl) ORDER BY 1),
              ARRAY(SELECT unnest(r_dl) EXCEPT SELECT unnest(e_dl) ORDER BY 1),
              left(e_dl::text, 60), left(r_dl::text, 60))
  FROM cmp_hc
 WHERE in_expected AND in_actual AND e_dl IS DISTINCT FROM r_dl;

INSERT INTO cmp_rows
SELECT 'hosts_cumulated',
       count(*) FILTER (WHERE in_expected), count(*) FILTER (WHERE in_actual),
       count(*) FILTER (WHERE in_expected AND in_actual), NULL
  FROM cmp_hc;

-- ----------------------------------------------------------------- user_devices_cumulated
-- browser_type is part of the key; nulls are matched to nulls through a sentinel (a FULL
-- JOIN needs a plain equality).

CREATE TEMP TABLE cmp_udc AS
SELECT COALESCE(e.user_id, r.user_id)           AS user_id,
       COALESCE(e.browser_type, r.browser_type) AS browser_type,
       COALESCE(e.month_start, r.month_start)   AS month_start,
       e.present AS in_expected, r.present AS in_actual,
       e.device_activity_datelist AS e_dl, r.device_activity_datelist AS r_dl,
       e.datelist_int AS e_int, r.datelist_int AS r_int
  FROM (SELECT true AS present, user_id, browser_type, month_start,
               device_activity_datelist, datelist_int::bigint AS datelist_int
          FROM expected_user_devices_cumulated) e
  FULL JOIN (SELECT true AS present, user_id::bigint AS user_id, browser_type::text AS browser_type,
                    month_start::date AS month_start,
                    device_activity_datelist::date[] AS device_activity_datelist,
                    datelist_int::bigint AS datelist_int
               FROM user_devices_cumulated) r
    ON r.user_id = e.user_id AND r.month_start = e.month_start
   AND COALESCE(r.browser_type, E'\x01null') = COALESCE(e.browser_type, E'\x01null');

INSERT INTO cmp_diff
SELECT 'user_devices_cumulated', CASE WHEN in_actual IS NULL THEN 'missing' ELSE 'extra' END,
       format('(%s, %s, %s)', user_id, browser_type, month_start), NULL
  FROM cmp_udc
 WHERE in_actual IS NULL OR in_expected IS NULL;

INSERT INTO cmp_diff
SELECT 'user_devices_cumulated', 'duplicate', format('(%s, %s, %s)', user_id, browser_type, month_start),
       format('%s rows', count(*))
  FROM user_devices_cumulated
 GROUP BY user_id, browser_type, month_start
HAVING count(*) > 1;

INSERT INTO cmp_diff
SELECT 'user_devices_cumulated', 'datelist', format('(%s, %s, %s)', user_id, browser_type, month_start),
       format('missing days %s, extra days %s (expected %s, got %s)',
              ARRAY(SELECT unnest(e_dl) EXCEPT SELECT unnest(r_dl) ORDER BY 1),
              ARRAY(SELECT unnest(r_dl) EXCEPT SELECT unnest(e_dl) ORDER BY 1),
              left(e_dl::text, 60), left(r_dl::text, 60))
  FROM cmp_udc
 WHERE in_expected AND in_actual AND e_dl IS DISTINCT FROM r_dl;

INSERT INTO cmp_diff
SELECT 'user_devices_cumulated', 'datelist_int', format('(%s, %s, %s)', user_id, browser_type, month_start),
       format('expected %s, got %s', e_int, COALESCE(r_int::text, 'NULL'))
  FROM cmp_udc
 WHERE in_expected AND in_actual AND e_int IS DISTINCT FROM r_int;

INSERT INTO cmp_rows
SELECT 'user_devices_cumulated',
       count(*) FILTER (WHERE in_expected), count(*) FILTER (WHERE in_actual),
       count(*) FILTER (WHERE in_expected AND in_actual), NULL
  FROM cmp_udc;

-- ------------------------------------------------------------------------ users_cumulated

CREATE TEMP TABLE cmp_uc AS
SELECT COALESCE(e.user_id, r.user_id)         AS user_id,
       COALESCE(e.month_start, r.month_start) AS month_start,
       e.present AS in_expected, r.present AS in_actual,
       e.dates_active AS e_dl, r.dates_active AS r_dl,
       e.datelist_int AS e_int, r.datelist_int AS r_int
  FROM (SELECT true AS present, user_id, month_start, dates_active,
               datelist_int::bigint AS datelist_int
          FROM expected_users_cumulated) e
  FULL JOIN (SELECT true AS present, user_id::bigint AS user_id, month_start::date AS month_start,
                    dates_active::date[] AS dates_active, datelist_int::bigint AS datelist_int
               FROM users_cumulated) r
    ON r.user_id = e.user_id AND r.month_start = e.month_start;

INSERT INTO cmp_diff
SELECT 'users_cumulated', CASE WHEN in_actual IS NULL THEN 'missing' ELSE 'extra' END,
       format('(%s, %s)', user_id, month_start), NULL
  FROM cmp_uc
 WHERE in_actual IS NULL OR in_expected IS NULL;

INSERT INTO cmp_diff
SELECT 'users_cumulated', 'datelist', format('(%s, %s)', user_id, month_start),
       format('missing days %s, extra days %s (expected %s, got %s)',
              ARRAY(SELECT unnest(e_dl) EXCEPT SELECT unnest(r_dl) ORDER BY 1),
              ARRAY(SELECT unnest(r_dl) EXCEPT SELECT unnest(e_dl) ORDER BY 1),
              left(e_dl::text, 60), left(r_dl::text, 60))
  FROM cmp_uc
 WHERE in_expected AND in_actual AND e_dl IS DISTINCT FROM r_dl;

INSERT INTO cmp_diff
SELECT 'users_cumulated', 'datelist_int', format('(%s, %s)', user_id, month_start),
       format('expected %s, got %s', e_int, COALESCE(r_int::text, 'NULL'))
  FROM cmp_uc
 WHERE in_expected AND in_actual AND e_int IS DISTINCT FROM r_int;

INSERT INTO cmp_rows
SELECT 'users_cumulated',
       count(*) FILTER (WHERE in_expected), count(*) FILTER (WHERE in_actual),
       count(*) FILTER (WHERE in_expected AND in_actual), NULL
  FROM cmp_uc;

-- ------------------------------------------------------------------------------- report

\echo 'rows compared per table (unique visitors: within' :uv_tolerance_pct'%, exact below' :uv_exact_below'):'
SELECT tbl AS "table", expected_rows, actual_rows, compared_rows,
       visitors_max_err_pct AS "max visitors error %"
  FROM cmp_rows ORDER BY tbl;

SELECT count(*) > 0 AS cmp_has_diff FROM cmp_diff \gset
\if :cmp_has_diff
\echo 'differences:'
SELECT tbl AS "table", kind, count(*) AS differences
  FROM cmp_diff GROUP BY tbl, kind ORDER BY tbl, kind;

\echo 'examples:'
SELECT tbl AS "table", kind, key, detail
  FROM (SELECT d.*, row_number() OVER (PARTITION BY tbl, kind ORDER BY key) AS rn
          FROM cmp_diff d) x
 WHERE rn <= 3
 ORDER BY tbl, kind, key;
\endif

DO $$
DECLARE
    total    bigint;
    counts   text;
    examples text;
BEGIN
    SELECT count(*) INTO total FROM cmp_diff;
    IF total > 0 THEN
        SELECT string_agg(format('%s %s=%s', tbl, kind, n), ', ' ORDER BY tbl, kind)
          INTO counts
          FROM (SELECT tbl, kind, count(*) AS n FROM cmp_diff GROUP BY tbl, kind) c;
        SELECT string_agg(format('%s %s %s%s', tbl, kind, key,
                                 COALESCE(': ' || detail, '')), E'\n' ORDER BY tbl, kind, key)
          INTO examples
          FROM (SELECT d.*, row_number() OVER (PARTITION BY tbl, kind ORDER BY key) AS rn
                  FROM cmp_diff d) x
         WHERE rn <= 3;
        RAISE EXCEPTION 'compare: FAIL, % difference(s): %', total, counts
              USING DETAIL = examples;
    END IF;
END
$$;

\pset tuples_only on
\pset format unaligned
SELECT format('compare: OK (%s)',
              string_agg(format('%s %s rows', tbl, compared_rows)
                         || CASE WHEN visitors_max_err_pct IS NULL THEN ''
                                 ELSE format(', max visitors error %s%%', visitors_max_err_pct) END,
                         '; ' ORDER BY tbl))
  FROM cmp_rows;
\pset tuples_only off
\pset format aligned
