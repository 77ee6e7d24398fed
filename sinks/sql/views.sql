-- views.sql: the analytics views on top of the sink tables (issue 12), applied by
-- `activity migrate` (and `activity run` on start) right after schema.sql, in the same
-- transaction. Idempotent: CREATE OR REPLACE, so a later version may add columns at the
-- end of a view but never rename or drop one (the report and dbt read these names).
--
-- Every view reads users_cumulated, the one table holding every identified user whatever
-- the device, so users on undescribed or null devices count (user_devices_cumulated, an
-- inner join to the devices, would drop them). The per-host sketch views live apart, in
-- views_hll.sql, applied only where the hll extension and host_daily_uniques exist.
--
-- "As of": there is no "today" in a replayable pipeline, so the views run up to the latest
-- active day in users_cumulated (last_day below); a window or a churn past it is not
-- reported. Days are UTC calendar days, weeks ISO weeks (Monday first). Day and week
-- arithmetic is done on date and integer values only, never timestamptz, so no result
-- depends on the session's TimeZone.

-- One row per (user, active day), from the datelists.
CREATE OR REPLACE VIEW user_active_days AS
SELECT u.user_id, d.day
  FROM users_cumulated u
 CROSS JOIN LATERAL unnest(u.dates_active) AS d(day);

COMMENT ON VIEW user_active_days IS
    'One row per identified user and UTC day with activity (any device), unnested from users_cumulated.dates_active.';

-- DAU / WAU / MAU per day. Each active day a of a user opens a window [a, a + k) in
-- which the user counts towards the k-day figure; the user's next active day opens the
-- next window, so each window is cut short there and a user counts once per day at most.
-- The figure of a day is then a running sum of +1 (a window opens) and -1 (it closes):
-- linear in the active days, instead of one row per user and day.
CREATE OR REPLACE VIEW activity_daily_users AS
WITH active AS (
    SELECT day, lead(day) OVER (PARTITION BY user_id ORDER BY day) AS next_day
      FROM user_active_days
),
deltas AS (
    SELECT day AS at, 1 AS dau, 1 AS wau, 1 AS mau FROM active
    UNION ALL
    SELECT day + 1, -1, 0, 0 FROM active
    UNION ALL
    SELECT LEAST(day + 7, next_day), 0, -1, 0 FROM active    -- LEAST skips a null next_day
    UNION ALL
    SELECT LEAST(day + 28, next_day), 0, 0, -1 FROM active
),
per_day AS (
    SELECT at, sum(dau) AS dau, sum(wau) AS wau, sum(mau) AS mau FROM deltas GROUP BY at
),
bounds AS (
    SELECT min(day) AS first_day, max(day) AS last_day FROM user_active_days
),
days AS (
    SELECT b.first_day + i AS day
      FROM bounds b CROSS JOIN LATERAL generate_series(0, b.last_day - b.first_day) AS i
),
running AS (
    SELECT d.day,
           sum(COALESCE(p.dau, 0)) OVER w AS dau,
           sum(COALESCE(p.wau, 0)) OVER w AS wau,
           sum(COALESCE(p.mau, 0)) OVER w AS mau
      FROM days d
      LEFT JOIN per_day p ON p.at = d.day
    WINDOW w AS (ORDER BY d.day)
)
SELECT day, dau::bigint AS dau, wau::bigint AS wau, mau::bigint AS mau,
       round(dau / NULLIF(mau, 0), 4) AS stickiness
  FROM running;

COMMENT ON VIEW activity_daily_users IS
    'Per UTC day: distinct identified users (any device) active that day (dau), in the 7 days ending that day (wau) and in the 28 days ending that day (mau); stickiness = dau / mau, 4 decimals.';

-- L7 / L28 from datelist_int. A window ending early in a month reaches into the previous
-- one, so each month's bits are read behind the previous month's: with P the days of the
-- previous month, bits = prev | cur << P (at most 31 + 31 bits, in a bigint), and day d of
-- the month is bit P + d - 1. The k days ending on d are bits P + d - k .. P + d - 1, and
-- P + d - k >= 28 + 1 - 28 > 0 for k <= 28, so one previous month always suffices. A
-- month without a row of its own still gets days when the previous month had one (the
-- windows of the days after a user's last activity).
CREATE OR REPLACE VIEW user_activity_l7_l28 AS
WITH months AS (
    SELECT user_id, month_start FROM users_cumulated
    UNION
    SELECT user_id, (month_start + interval '1 month')::date FROM users_cumulated
),
bits AS (
    SELECT m.user_id, m.month_start,
           m.month_start - (m.month_start - interval '1 month')::date AS prev_days,
           (m.month_start + interval '1 month')::date - m.month_start AS month_days,
           COALESCE(p.datelist_int, 0)::bigint
           | (COALESCE(c.datelist_int, 0)::bigint
              << (m.month_start - (m.month_start - interval '1 month')::date)) AS bits
      FROM months m
      LEFT JOIN users_cumulated c
        ON c.user_id = m.user_id AND c.month_start = m.month_start
      LEFT JOIN users_cumulated p
        ON p.user_id = m.user_id AND p.month_start = (m.month_start - interval '1 month')::date
),
last AS (
    SELECT max(dates_active[1]) AS last_day FROM users_cumulated   -- most recent first
),
windows AS (
    SELECT b.user_id, b.month_start + d - 1 AS day,
           bit_count(((b.bits >> (b.prev_days + d - 7)) & 127)::bit(64))::integer AS l7,
           bit_count(((b.bits >> (b.prev_days + d - 28)) & 268435455)::bit(64))::integer AS l28
      FROM bits b
     CROSS JOIN LATERAL generate_series(1, b.month_days) AS d
)
SELECT w.user_id, w.day, w.l7, w.l28
  FROM windows w, last
 WHERE w.l28 > 0 AND w.day <= last.last_day;

COMMENT ON VIEW user_activity_l7_l28 IS
    'Per identified user and UTC day with activity in the 28 days ending that day (up to the latest active day): l7 and l28, the active days among the last 7 and 28, from users_cumulated.datelist_int.';

-- Growth accounting, one definition for days and weeks: a period is a day or an ISO week,
-- step its length in days. For each (grain, user, active period): the user's previous and
-- next active periods, and the last period of the data.
CREATE OR REPLACE VIEW user_activity_periods AS
WITH periods AS (
    SELECT 'day'::text AS grain, 1 AS step, user_id, day AS period_start
      FROM user_active_days
    UNION ALL
    SELECT DISTINCT 'week'::text, 7, user_id, date_trunc('week', day::timestamp)::date
      FROM user_active_days
),
last AS (
    SELECT max(dates_active[1]) AS last_day FROM users_cumulated
)
SELECT p.grain, p.step, p.user_id, p.period_start,
       lag(p.period_start) OVER w AS prev_period,
       lead(p.period_start) OVER w AS next_period,
       CASE p.grain WHEN 'day' THEN l.last_day
                    ELSE date_trunc('week', l.last_day::timestamp)::date END AS last_period
  FROM periods p CROSS JOIN last l
WINDOW w AS (PARTITION BY p.grain, p.user_id ORDER BY p.period_start);

COMMENT ON VIEW user_activity_periods IS
    'Per grain (day, week), identified user and active period: the user''s previous and next active periods and the last period of the data; the base of the growth-accounting views.';

-- A user's state in each period from the first active one to the last of the data:
-- new = first ever active in this period; retained = active in this period and the
-- previous one; resurrected = active in this period, not in the previous one, but before;
-- churned = active in the previous period, not in this one; stale = inactive in this and
-- the previous period, active at some point before. Exactly one state per user and period.
CREATE OR REPLACE VIEW user_growth_periods AS
SELECT grain, user_id, period_start,
       CASE WHEN prev_period IS NULL THEN 'new'
            WHEN prev_period = period_start - step THEN 'retained'
            ELSE 'resurrected' END AS state
  FROM user_activity_periods
UNION ALL
SELECT grain, user_id, period_start + step, 'churned'
  FROM user_activity_periods
 WHERE (next_period IS NULL OR next_period > period_start + step)
   AND period_start + step <= last_period
UNION ALL
SELECT a.grain, a.user_id, a.period_start + (2 + i) * a.step, 'stale'
  FROM user_activity_periods a
 CROSS JOIN LATERAL generate_series(
           0, (COALESCE(a.next_period, a.last_period + a.step) - a.period_start) / a.step - 3) AS i;

COMMENT ON VIEW user_growth_periods IS
    'Per grain (day, week), identified user and period from the user''s first active one to the last of the data: state new, retained, resurrected, churned or stale.';

CREATE OR REPLACE VIEW user_growth_daily AS
SELECT user_id, period_start AS day, state FROM user_growth_periods WHERE grain = 'day';

COMMENT ON VIEW user_growth_daily IS
    'Per identified user and UTC day: new (first active day), retained (active this day and the day before), resurrected (active, not the day before, active earlier), churned (active the day before, not this day), stale (inactive this day and the day before, active earlier).';

CREATE OR REPLACE VIEW user_growth_weekly AS
SELECT user_id, period_start AS week_start, state FROM user_growth_periods WHERE grain = 'week';

COMMENT ON VIEW user_growth_weekly IS
    'Per identified user and ISO week: new (first active week), retained (active this week and the week before), resurrected (active, not the week before, active earlier), churned (active the week before, not this week), stale (inactive this week and the week before, active earlier).';

-- The totals per period, without a row per user and period: new, retained and
-- resurrected are counted at the active periods, churned at the period after one that
-- the next active period does not follow, and stale as a running sum of +1 two periods
-- after an active one and -1 at the next active period.
CREATE OR REPLACE VIEW growth_accounting_periods AS
WITH deltas AS (
    SELECT grain, period_start AS at,
           CASE WHEN prev_period IS NULL THEN 1 ELSE 0 END AS new,
           CASE WHEN prev_period = period_start - step THEN 1 ELSE 0 END AS retained,
           CASE WHEN prev_period < period_start - step THEN 1 ELSE 0 END AS resurrected,
           0 AS churned, 0 AS stale
      FROM user_activity_periods
    UNION ALL
    SELECT grain, period_start + step, 0, 0, 0, 1, 0
      FROM user_activity_periods
     WHERE next_period IS NULL OR next_period > period_start + step
    UNION ALL
    SELECT grain, period_start + 2 * step, 0, 0, 0, 0, 1
      FROM user_activity_periods
     WHERE next_period IS NULL OR next_period > period_start + 2 * step
    UNION ALL
    SELECT grain, next_period, 0, 0, 0, 0, -1
      FROM user_activity_periods
     WHERE next_period > period_start + 2 * step
),
per_period AS (
    SELECT grain, at, sum(new) AS new, sum(retained) AS retained,
           sum(resurrected) AS resurrected, sum(churned) AS churned, sum(stale) AS stale
      FROM deltas GROUP BY grain, at
),
bounds AS (
    SELECT grain, step, min(period_start) AS first_period, max(last_period) AS last_period
      FROM user_activity_periods GROUP BY grain, step
),
periods AS (
    SELECT b.grain, b.first_period + i * b.step AS period_start
      FROM bounds b
     CROSS JOIN LATERAL generate_series(0, (b.last_period - b.first_period) / b.step) AS i
)
SELECT p.grain, p.period_start,
       COALESCE(d.new, 0)::bigint AS new,
       COALESCE(d.retained, 0)::bigint AS retained,
       COALESCE(d.resurrected, 0)::bigint AS resurrected,
       COALESCE(d.churned, 0)::bigint AS churned,
       (sum(COALESCE(d.stale, 0)) OVER (PARTITION BY p.grain ORDER BY p.period_start))::bigint
           AS stale
  FROM periods p
  LEFT JOIN per_period d ON d.grain = p.grain AND d.at = p.period_start;

COMMENT ON VIEW growth_accounting_periods IS
    'Per grain (day, week) and period: how many identified users were new, retained, resurrected, churned and stale (definitions: user_growth_periods).';

CREATE OR REPLACE VIEW growth_accounting_daily AS
SELECT period_start AS day, new, retained, resurrected, churned, stale
  FROM growth_accounting_periods WHERE grain = 'day';

COMMENT ON VIEW growth_accounting_daily IS
    'Per UTC day: identified users new (first active day), retained (active this day and the day before), resurrected (active, not the day before, active earlier), churned (active the day before, not this day), stale (inactive both, active earlier).';

CREATE OR REPLACE VIEW growth_accounting_weekly AS
SELECT period_start AS week_start, new, retained, resurrected, churned, stale
  FROM growth_accounting_periods WHERE grain = 'week';

COMMENT ON VIEW growth_accounting_weekly IS
    'Per ISO week: identified users new (first active week), retained (active this week and the week before), resurrected (active, not the week before, active earlier), churned (active the week before, not this week), stale (inactive both, active earlier).';
