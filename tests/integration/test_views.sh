#!/usr/bin/env bash
# test_views.sh — users_cumulated and the analytics views (sinks/sql/views.sql,
# views_hll.sql) against plain SQL over the raw events.
#
# Three generated months (2023-12 to a leap February 2024; users recur across months)
# over the real devices, with anonymous events, unknown devices (INT32_MIN / INT32_MAX ids
# among them) and null devices, go through the real processor. Then:
#   * every sink table, users_cumulated included, equals reference.sql (compare.sql);
#   * every view equals its plain-SQL definition over the raw events
#     (views_reference.sql, views_compare.sql), row for row and value for value;
#   * on the day with the most users on unknown or null devices, DAU and MAU from the view
#     equal COUNT(DISTINCT user_id) of the raw events and exceed what user_devices_cumulated
#     (inner-joined to devices) can give: the figures are printed;
#   * the per-host uniques views: the processor's host_daily_uniques gives
#     host_uniques_daily / _weekly / _monthly equal to the cardinality of sketches built in
#     SQL straight from the raw events of each day, week and month; where the column is the
#     bytea fallback, migrate warns and skips them.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_VIEWS_EVENTS:-30000}
say "generating $EVENTS events in each of 2023-12, 2024-01, 2024-02"
generate_months "$WORK/events.csv" "$EVENTS" 5 2023-12:4000 2024-01:5000 2024-02:3500

"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/events.csv" 2>/dev/null
load_reference "$WORK/events.csv" "$DEVICES"
run_until_caught_up "$WORK/run.log" --flush-interval 1
grep -h "done:" "$WORK/run.log" >&2

say "sink tables against reference.sql (users_cumulated included)"
compare_tables -v uv_tolerance_pct=0

# users_cumulated must hold users that user_devices_cumulated cannot: on unknown devices
# and on null devices (the generator has both).
read -r unknown_only null_only <<<"$(psql_test -tA -F' ' <<'SQL'
WITH u AS (
    SELECT user_id, date_trunc('month', event_time)::date AS month_start,
           bool_or(device_id IS NULL) AS on_null,
           bool_or(device_id IS NOT NULL AND device_id NOT IN (SELECT device_id FROM raw_devices))
               AS on_unknown,
           bool_or(device_id IN (SELECT device_id FROM raw_devices)) AS on_known
      FROM raw_events WHERE user_id IS NOT NULL GROUP BY 1, 2
)
SELECT count(*) FILTER (WHERE on_unknown AND NOT on_known AND uc.user_id IS NOT NULL),
       count(*) FILTER (WHERE on_null AND NOT on_known AND uc.user_id IS NOT NULL)
  FROM u LEFT JOIN users_cumulated uc USING (user_id, month_start)
SQL
)"
say "users_cumulated holds $unknown_only user-months seen only on unknown devices and" \
    "$null_only only on null devices"
[ "$unknown_only" -gt 0 ] && [ "$null_only" -gt 0 ] ||
    fail "the data has no user-month on unknown-only or null-only devices in users_cumulated"

say "views against plain SQL over the raw events"
psql_test -f "$ROOT/tests/integration/views_reference.sql" >/dev/null
psql_test -f "$ROOT/tests/integration/views_compare.sql" 2>&1 >/dev/null |
    sed 's/^psql:[^:]*:[0-9]*: NOTICE:  //' >&2 || fail "a view differs from its reference"

# DAU / MAU on the day where the inner join to devices loses the most users.
read -r day dau raw_dau joined_dau mau raw_mau joined_mau <<<"$(psql_test -tA -F' ' <<'SQL'
WITH joined AS (   -- what user_devices_cumulated alone can say
    SELECT DISTINCT user_id, d AS day
      FROM user_devices_cumulated, unnest(device_activity_datelist) d
),
raw AS (SELECT DISTINCT user_id, event_time::date AS day FROM raw_events WHERE user_id IS NOT NULL),
worst AS (
    SELECT r.day, count(*) - count(j.user_id) AS lost
      FROM raw r LEFT JOIN joined j USING (user_id, day)
     GROUP BY r.day ORDER BY lost DESC, r.day LIMIT 1
)
SELECT w.day, a.dau,
       (SELECT count(*) FROM raw WHERE raw.day = w.day),
       (SELECT count(*) FROM joined WHERE joined.day = w.day),
       a.mau,
       (SELECT count(DISTINCT user_id) FROM raw WHERE raw.day BETWEEN w.day - 27 AND w.day),
       (SELECT count(DISTINCT user_id) FROM joined WHERE joined.day BETWEEN w.day - 27 AND w.day)
  FROM worst w JOIN activity_daily_users a ON a.day = w.day
SQL
)"
say "on $day: DAU $dau (raw events $raw_dau; user_devices_cumulated gives $joined_dau)," \
    "MAU $mau (raw $raw_mau; user_devices_cumulated gives $joined_mau)"
[ "$dau" = "$raw_dau" ] && [ "$mau" = "$raw_mau" ] || fail "DAU/MAU differ from the raw events"
[ "$joined_dau" -lt "$dau" ] && [ "$joined_mau" -lt "$mau" ] ||
    fail "no day where users on unknown or null devices make a difference"

# ---------------------------------------------------------------- per-host uniques (hll)
rows=$(psql_test -tA -c "SELECT count(*) FROM host_daily_uniques")
say "host_daily_uniques: $rows rows written by the processor"
[ "$rows" -gt 0 ] || fail "host_daily_uniques is empty"
"$ACTIVITY" migrate 2>"$WORK/migrate.log" || {
    cat "$WORK/migrate.log" >&2
    fail "activity migrate failed"
}
views=$(psql_test -tA -c "SELECT count(to_regclass(v)) FROM unnest(ARRAY['host_uniques_daily',
    'host_uniques_weekly', 'host_uniques_monthly']) v")
[ "$views" = 3 ] && ! grep -q "uniques views .* not created" "$WORK/migrate.log" || {
    cat "$WORK/migrate.log" >&2
    fail "migrate did not create the per-host uniques views"
}
# Expected: one sketch per period straight from the raw events (not a union of days), so
# the views' unions are checked against the extension's own aggregate.
psql_test <<'SQL'
CREATE TABLE expected_host_uniques_daily AS
SELECT host, event_time::date AS day,
       COALESCE(round(#hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1)
                    FILTER (WHERE user_id IS NOT NULL))::bigint, 0) AS uniques
  FROM raw_events GROUP BY 1, 2;
CREATE TABLE expected_host_uniques_weekly AS
SELECT host, date_trunc('week', event_time)::date AS week_start,
       COALESCE(round(#hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1)
                    FILTER (WHERE user_id IS NOT NULL))::bigint, 0) AS uniques
  FROM raw_events GROUP BY 1, 2;
CREATE TABLE expected_host_uniques_monthly AS
SELECT host, date_trunc('month', event_time)::date AS month_start,
       COALESCE(round(#hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1)
                    FILTER (WHERE user_id IS NOT NULL))::bigint, 0) AS uniques
  FROM raw_events GROUP BY 1, 2;
SQL
psql_test -v views=host_uniques_daily,host_uniques_weekly,host_uniques_monthly \
    -f "$ROOT/tests/integration/views_compare.sql" 2>&1 >/dev/null |
    sed 's/^psql:[^:]*:[0-9]*: NOTICE:  //' >&2 || fail "a per-host uniques view differs"

# Where the sketches are bytea (the extension was missing when the table was made), migrate
# skips the sketch views with a warning and creates everything else. A schema of its own,
# first on the search path, where hll is not visible as a type.
psql_test -c "CREATE SCHEMA nohll" -c "CREATE TABLE nohll.host_daily_uniques (host text NOT NULL,
    day date NOT NULL, users bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, day))" >/dev/null
"$ACTIVITY" migrate --pg-dsn "$ACTIVITY_PG_DSN?options=-csearch_path%3Dnohll" 2>"$WORK/nohll.log" || {
    cat "$WORK/nohll.log" >&2
    fail "migrate failed where the sketches are bytea"
}
grep -q "host_uniques_daily, _weekly, _monthly) are not created: host_daily_uniques.users is not of type hll" \
    "$WORK/nohll.log" || {
    cat "$WORK/nohll.log" >&2
    fail "no warning that the sketch views are skipped"
}
made=$(psql_test -tA -c "SELECT string_agg(viewname, ',' ORDER BY viewname) FROM pg_views
    WHERE schemaname = 'nohll' AND viewname IN ('host_uniques_daily', 'activity_daily_users')")
[ "$made" = activity_daily_users ] || fail "views in the bytea schema: $made"
say "bytea sketches: migrate warned and skipped the sketch views, created the others"
say "ok"
