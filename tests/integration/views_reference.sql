-- views_reference.sql — what each analytics view (sinks/sql/views.sql) must hold, computed in
-- plain SQL straight from the raw events, without the sink tables, bit arithmetic or the
-- views' window tricks.
--
-- Owns: the definition of "correct" for tests/integration/test_views.sh. Given
-- raw_events(user_id bigint, event_time timestamp, ...) as load_reference (lib.sh) loads it,
-- it (re)creates one expected_<view> table per view, with the view's columns:
--
--   * a user is active on a UTC day if any event of theirs (user_id not null, any device,
--     known, unknown or null) falls on it; the data ends on the latest such day (last_day);
--   * activity_daily_users: every day from the first active day to last_day, dau / wau / mau
--     = COUNT(DISTINCT user_id) over the 1 / 7 / 28 days ending that day, stickiness =
--     round(dau / mau, 4);
--   * user_activity_l7_l28: every (user, day <= last_day) with a user's activity in the 28
--     days ending that day, counting the active days among the last 7 and 28;
--   * user_growth_daily / _weekly: every (user, period) from the user's first active period
--     to the last one of the data, with the state by its definition (new: first active
--     period; retained: active this and the previous period; resurrected: active this one,
--     not the previous, active before; churned: active the previous one, not this one;
--     stale: neither, active before); weeks are ISO weeks (date_trunc('week'));
--   * growth_accounting_daily / _weekly: per period, the number of users in each state
--     (zero where none), every period from the first to the last of the data.
--
-- Usage: psql -v ON_ERROR_STOP=1 -f tests/integration/views_reference.sql (after
-- load_reference), then views_compare.sql.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DROP TABLE IF EXISTS ref_user_days;
CREATE TABLE ref_user_days AS
SELECT DISTINCT user_id, event_time::date AS day FROM raw_events WHERE user_id IS NOT NULL;
CREATE INDEX ON ref_user_days (day);
ANALYZE ref_user_days;

DROP TABLE IF EXISTS ref_days;
CREATE TABLE ref_days AS
SELECT d::date AS day
  FROM generate_series((SELECT min(day) FROM ref_user_days)::timestamp,
                       (SELECT max(day) FROM ref_user_days)::timestamp,
                       interval '1 day') AS d;

DROP TABLE IF EXISTS expected_activity_daily_users;
CREATE TABLE expected_activity_daily_users AS
SELECT s.day,
       (SELECT count(DISTINCT user_id) FROM ref_user_days u WHERE u.day = s.day)     AS dau,
       (SELECT count(DISTINCT user_id) FROM ref_user_days u
         WHERE u.day BETWEEN s.day - 6 AND s.day)                                  AS wau,
       (SELECT count(DISTINCT user_id) FROM ref_user_days u
         WHERE u.day BETWEEN s.day - 27 AND s.day)                                 AS mau
  FROM ref_days s;
ALTER TABLE expected_activity_daily_users ADD COLUMN stickiness numeric;
UPDATE expected_activity_daily_users SET stickiness = round(dau::numeric / NULLIF(mau, 0), 4);

DROP TABLE IF EXISTS expected_user_activity_l7_l28;
CREATE TABLE expected_user_activity_l7_l28 AS
SELECT u.user_id, s.day,
       count(*) FILTER (WHERE u.day > s.day - 7)::integer AS l7,
       count(*)::integer                                  AS l28
  FROM ref_days s
  JOIN ref_user_days u ON u.day BETWEEN s.day - 27 AND s.day
 GROUP BY u.user_id, s.day;

-- Growth accounting, by the definitions, for one grain: periods are days or ISO weeks.
DROP TABLE IF EXISTS ref_user_periods;
CREATE TABLE ref_user_periods AS
SELECT DISTINCT 'day' AS grain, user_id, day AS period FROM ref_user_days
UNION ALL
SELECT DISTINCT 'week', user_id, date_trunc('week', day)::date FROM ref_user_days;
CREATE INDEX ON ref_user_periods (grain, user_id, period);
ANALYZE ref_user_periods;

DROP TABLE IF EXISTS ref_periods;
CREATE TABLE ref_periods AS
SELECT 'day' AS grain, day AS period, 1 AS step FROM ref_days
UNION ALL
SELECT DISTINCT 'week', date_trunc('week', day)::date, 7 FROM ref_days;

DROP TABLE IF EXISTS ref_user_growth;
CREATE TABLE ref_user_growth AS
WITH firsts AS (
    SELECT grain, user_id, min(period) AS first_period FROM ref_user_periods GROUP BY 1, 2
),
grid AS (
    SELECT f.grain, f.user_id, f.first_period, p.period, p.step
      FROM firsts f JOIN ref_periods p ON p.grain = f.grain AND p.period >= f.first_period
),
flags AS (
    SELECT g.*,
           EXISTS (SELECT 1 FROM ref_user_periods a WHERE a.grain = g.grain
                      AND a.user_id = g.user_id AND a.period = g.period)            AS active_now,
           EXISTS (SELECT 1 FROM ref_user_periods a WHERE a.grain = g.grain
                      AND a.user_id = g.user_id AND a.period = g.period - g.step)   AS active_prev
      FROM grid g
)
SELECT grain, user_id, period,
       CASE WHEN period = first_period             THEN 'new'
            WHEN active_now AND active_prev        THEN 'retained'
            WHEN active_now                        THEN 'resurrected'
            WHEN active_prev                       THEN 'churned'
            ELSE 'stale' END AS state
  FROM flags;

DROP TABLE IF EXISTS expected_user_growth_daily;
CREATE TABLE expected_user_growth_daily AS
SELECT user_id, period AS day, state FROM ref_user_growth WHERE grain = 'day';

DROP TABLE IF EXISTS expected_user_growth_weekly;
CREATE TABLE expected_user_growth_weekly AS
SELECT user_id, period AS week_start, state FROM ref_user_growth WHERE grain = 'week';

DROP TABLE IF EXISTS ref_growth_totals;
CREATE TABLE ref_growth_totals AS
SELECT p.grain, p.period,
       count(*) FILTER (WHERE g.state = 'new')         AS new,
       count(*) FILTER (WHERE g.state = 'retained')    AS retained,
       count(*) FILTER (WHERE g.state = 'resurrected') AS resurrected,
       count(*) FILTER (WHERE g.state = 'churned')     AS churned,
       count(*) FILTER (WHERE g.state = 'stale')       AS stale
  FROM ref_periods p
  LEFT JOIN ref_user_growth g ON g.grain = p.grain AND g.period = p.period
 GROUP BY p.grain, p.period;

DROP TABLE IF EXISTS expected_growth_accounting_daily;
CREATE TABLE expected_growth_accounting_daily AS
SELECT period AS day, new, retained, resurrected, churned, stale
  FROM ref_growth_totals WHERE grain = 'day';

DROP TABLE IF EXISTS expected_growth_accounting_weekly;
CREATE TABLE expected_growth_accounting_weekly AS
SELECT period AS week_start, new, retained, resurrected, churned, stale
  FROM ref_growth_totals WHERE grain = 'week';
