-- views_hll.sql: per-host uniques over days, weeks and months, unioned from the daily
-- sketches of host_daily_uniques (one postgresql-hll value per (host, day)). Applied by
-- `activity migrate` (and `activity run` on start) after views.sql, only when the hll
-- extension is installed and host_daily_uniques.users is of type hll: where the extension
-- is missing the column is bytea and these views are skipped with a warning (cast the
-- column to hll once the extension is there, then run `activity migrate` again).
-- Idempotent: CREATE OR REPLACE.
--
-- A union of sketches is the sketch of the union, so any range, any set of hosts, any
-- rolling window is `#hll_union_agg(users)` over the rows it covers; these views are the
-- three calendar grains. Cardinalities are rounded to whole users. Weeks are ISO weeks
-- (Monday first), computed on timestamp (not timestamptz): no TimeZone dependence.

CREATE OR REPLACE VIEW host_uniques_daily AS
SELECT host, day, round(#users)::bigint AS uniques
  FROM host_daily_uniques;

COMMENT ON VIEW host_uniques_daily IS
    'Per host and UTC day: distinct identified users, the cardinality of the day''s hll sketch in host_daily_uniques.';

CREATE OR REPLACE VIEW host_uniques_weekly AS
SELECT host, date_trunc('week', day::timestamp)::date AS week_start,
       round(#hll_union_agg(users))::bigint AS uniques
  FROM host_daily_uniques
 GROUP BY 1, 2;

COMMENT ON VIEW host_uniques_weekly IS
    'Per host and ISO week: distinct identified users over the week, the cardinality of the union of its daily hll sketches.';

CREATE OR REPLACE VIEW host_uniques_monthly AS
SELECT host, date_trunc('month', day::timestamp)::date AS month_start,
       round(#hll_union_agg(users))::bigint AS uniques
  FROM host_daily_uniques
 GROUP BY 1, 2;

COMMENT ON VIEW host_uniques_monthly IS
    'Per host and calendar month: distinct identified users over the month, the cardinality of the union of its daily hll sketches.';
