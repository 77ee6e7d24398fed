-- report_standins.sql — STAND-INS, for tests/integration/test_report.sh only: views with the
-- names and columns of the analytics views `activity migrate` is to create (issue 12, item
-- 3), built here from the test's raw events (the expected_report_* tables of
-- report_reference.sql), so that the report's sections over them can be tested before those
-- views exist. Each is created only where the database has no relation of that name, so
-- the real views, once migrate creates them, are what the test reads. Created in the test's
-- own database, never in a user's.

\set ON_ERROR_STOP 1

DO $$
BEGIN
    IF to_regclass('activity_daily_users') IS NULL THEN
        RAISE NOTICE 'report_standins.sql: stand-in activity_daily_users';
        CREATE VIEW activity_daily_users AS
        SELECT day, dau, wau, mau, round(dau::numeric / mau, 4) AS stickiness
          FROM expected_report_daily_users;
    END IF;
    IF to_regclass('growth_accounting_daily') IS NULL THEN
        RAISE NOTICE 'report_standins.sql: stand-in growth_accounting_daily';
        CREATE VIEW growth_accounting_daily AS
        SELECT day, new, retained, resurrected, churned, stale FROM expected_report_growth;
    END IF;
    -- Over the processor's sketches where they are hll values (the union's cardinality, as
    -- the real view), else exact counts over the raw events.
    IF to_regclass('host_uniques_monthly') IS NULL AND EXISTS (
           SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('host_daily_uniques')
              AND attname = 'users' AND format_type(atttypid, atttypmod) = 'hll') THEN
        RAISE NOTICE 'report_standins.sql: stand-in host_uniques_monthly over host_daily_uniques';
        CREATE VIEW host_uniques_monthly AS
        SELECT host, date_trunc('month', day::timestamp)::date AS month_start,
               hll_cardinality(hll_union_agg(users)) AS uniques
          FROM host_daily_uniques GROUP BY 1, 2;
    ELSIF to_regclass('host_uniques_monthly') IS NULL THEN
        RAISE NOTICE 'report_standins.sql: stand-in host_uniques_monthly over raw_events';
        CREATE VIEW host_uniques_monthly AS
        SELECT host, date_trunc('month', event_time)::date AS month_start,
               count(DISTINCT user_id) AS uniques
          FROM raw_events GROUP BY 1, 2 HAVING count(user_id) > 0;
    END IF;
END
$$;
