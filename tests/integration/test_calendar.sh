#!/usr/bin/env bash
# test_calendar.sh — three consecutive months across a year end and into a
# leap February (2023-12, 2024-01, 2024-02), one topic, one run: every
# (host, month) and (user, browser, month) row must equal the plain-SQL
# reference. Each generated month carries its own edges (the first and last
# millisecond of the month and of its neighbours, exact duplicates, late
# arrivals, anonymous users, unknown devices, odd host names), so rows of one
# month receive events from the runs of the others.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_CALENDAR_EVENTS:-40000}
say "generating $EVENTS events in each of 2023-12, 2024-01, 2024-02"
generate_months "$WORK/events.csv" "$EVENTS" 5 2023-12:5000 2024-01:5000 2024-02:5000

load_events "$WORK/events.csv"
run_until_caught_up "$WORK/run.log" --flush-interval 1
grep -h "done:" "$WORK/run.log" >&2

months=$(psql_test -tA -c "SELECT string_agg(DISTINCT month_start::text, ',' ORDER BY month_start::text)
    FROM host_activity_reduced")
[ "$months" = "2023-11-01,2023-12-01,2024-01-01,2024-02-01,2024-03-01" ] ||
    fail "months in host_activity_reduced: $months"
leap=$(psql_test -tA -c "SELECT count(*) FROM host_activity_reduced
    WHERE month_start = '2024-02-01' AND cardinality(hit_array) <> 29")
[ "$leap" = 0 ] || fail "$leap February 2024 rows without 29 days"
feb29=$(psql_test -tA -c "SELECT count(*) FROM user_devices_cumulated
    WHERE month_start = '2024-02-01' AND '2024-02-29' = ANY (device_activity_datelist)
      AND datelist_int & (1 << 28) <> 0")
[ "$feb29" -gt 0 ] || fail "no user active on 2024-02-29"
compare_tables -v uv_tolerance_pct=0
say "ok"
