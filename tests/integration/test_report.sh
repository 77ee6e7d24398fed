#!/usr/bin/env bash
# test_report.sh — `activity report` in every format against the real stack and processor.
#
# Two generated months (2023-12, 2024-01, each with its edges, so a few events fall in
# 2023-11 and 2024-02) over the real devices, plus a host named with markup, an ampersand,
# quotes and non-ASCII text among the busiest ones, run through the processor. Then:
#   - a database without the tables (an empty search_path): every section says why it is
#     empty, exit 0;
#   - the default month is the latest month that holds events (2024-02 here), and equals
#     --month 2024-02;
#   - --month 2024-01 as JSON, CSV and text: JSON and CSV parse (python3) and every number
#     equals plain SQL over the raw events (report_reference.sql); the text shows each
#     section and the busiest hosts' lines, aligned;
#   - --html: headless Chromium renders the page with no console message (a page with a
#     console error is shown to be caught first), and the DOM it built holds one point per
#     day and series, one bar per non-zero growth state and day, one heatmap cell per busiest
#     host and day, one bar per top host, with the expected values and host names intact;
#     the screenshot shows every series' colour (decoded by report_check.py); it is kept
#     when IT_REPORT_SCREENSHOT names a file (with report.html, report.txt and latest.html
#     beside it).
# The analytics views are the ones `activity migrate` creates (host_uniques_monthly unions the
# processor's hll sketches, so monthly uniques are checked within 2%).
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_REPORT_EVENTS:-30000}
CHECK="python3 $ROOT/tests/integration/report_check.py"
# January repeats December's population (seed 9: retained, resurrected and churned users) and
# adds a third of its events from another one (seed 10: new users on every day).
for m in 2023-12 2024-01; do
    python3 "$ROOT/scripts/gen_events.py" --events "$EVENTS" --month "$m" --seed 9 \
        --users 5000 --out "$WORK/$m.csv"
done
python3 "$ROOT/scripts/gen_events.py" --events $((EVENTS / 3)) --month 2024-01 --seed 10 \
    --users 5000 --no-edge-cases --out "$WORK/new-users.csv"
# The hostile host: 2,500 hits over every day of 2024-01 by 400 of the generated users, so it
# is among the busiest hosts and the top hosts by uniques.
HOSTILE='<script>alert("x&y")</script> & '"'"'q'"'"' — héllo ✓'
python3 - "$WORK/2024-01.csv" "$HOSTILE" >"$WORK/hostile.csv" <<'PY'
import csv, random, sys
rows = list(csv.DictReader(open(sys.argv[1])))
users = sorted({int(r["user_id"]) for r in rows if r["user_id"]})[:400]
devs = sorted({r["device_id"] for r in rows if r["device_id"]})[:50]
rnd = random.Random(3)
w = csv.writer(sys.stdout, lineterminator="\n")
for i in range(2500):
    w.writerow(["/", "", rnd.choice(users), rnd.choice(devs), sys.argv[2],
                f"2024-01-{i % 31 + 1:02d} {rnd.randrange(24):02d}:00:00.000000"])
PY
{
    cat "$WORK/2023-12.csv"
    tail -n +2 "$WORK/2024-01.csv"
    tail -n +2 "$WORK/new-users.csv"
    cat "$WORK/hostile.csv"
} >"$WORK/events.csv"

load_events "$WORK/events.csv"
run_until_caught_up "$WORK/run.log" --flush-interval 1
grep -h "done:" "$WORK/run.log" >&2
report() { "$ACTIVITY" report "$@" 2>>"$WORK/report.err"; }

say "usage errors exit 2"
for bad in "--format xml" "--month 2024-13" "--month 2024-1" "--limit 0" "--html="; do
    rc=0
    # shellcheck disable=SC2086 # the words of $bad are the arguments
    report $bad >/dev/null || rc=$?
    [ "$rc" = 2 ] || fail "report $bad exited $rc, not 2"
done

say "a database without the tables: every section empty, with a note"
psql_test -c "CREATE SCHEMA report_empty"
report --pg-dsn "$ACTIVITY_PG_DSN?options=-csearch_path%3Dreport_empty" --format json \
    >"$WORK/empty.json" || fail "report on an empty schema exited non-zero"
$CHECK empty "$WORK/empty.json" || fail "the empty report is wrong"
report --pg-dsn "$ACTIVITY_PG_DSN?options=-csearch_path%3Dreport_empty" >"$WORK/empty.txt" ||
    fail "text report on an empty schema exited non-zero"
grep -q "no month holds data yet" "$WORK/empty.txt" || fail "the empty text report does not say so"

for limit in 10 100; do
    psql_test -f "$ROOT/tests/integration/report_reference.sql" -v month_start=2024-01-01 \
        -v limit=$limit -tA -o "$WORK/expected-$limit.json" 2>&1 | grep -v "NOTICE" || true
done

say "the default month is the latest that holds events"
latest=$(psql_test -tA -c "SELECT to_char(max(event_time), 'YYYY-MM') FROM raw_events")
report --format json >"$WORK/default.json" || fail "report exited non-zero"
report --format json --month "$latest" >"$WORK/latest.json" || fail "report --month exited non-zero"
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["month"])' "$WORK/default.json")
[ "$got" = "$latest" ] || fail "default month $got, the latest month with events is $latest"
cmp -s "$WORK/default.json" "$WORK/latest.json" || fail "the default report differs from --month $latest"
# The latest month holds a single event here: the page still renders without a console message.
report --html "$WORK/latest.html" || fail "report --html of the latest month exited non-zero"
report | head -1 | grep -q "^activity report for $latest " || fail "text: default month is not $latest"

say "--month 2024-01 as JSON, CSV and text equals plain SQL over the raw events"
# --limit 100 takes every host of the month: the odd ones of the edge cases too (a 200-character
# name, a comma, quotes, a host active on one day only).
report --month 2024-01 --limit 100 --format json >"$WORK/all.json" || fail "json exited non-zero"
report --month 2024-01 --limit 100 --format csv >"$WORK/all.csv" || fail "csv exited non-zero"
report --month 2024-01 --limit 100 --format text >"$WORK/all.txt" || fail "text exited non-zero"
report --month 2024-01 --limit 100 >"$WORK/all2.txt" || fail "report without --format exited non-zero"
cmp -s "$WORK/all.txt" "$WORK/all2.txt" || fail "text is not the default format"
# host_uniques_monthly reads HyperLogLog sketches: 2% (exact below 1,280 users, EXPLICIT).
tol=2
$CHECK data "$WORK/expected-100.json" "$WORK/all.json" "$WORK/all.csv" "$WORK/all.txt" \
    --uniques-tolerance "$tol" || fail "the report differs from the reference"
grep -qF "$HOSTILE" "$WORK/all.txt" || fail "the hostile host is not in the text report"
report --month 2024-01 --format json >"$WORK/report.json" || fail "json exited non-zero"
report --month 2024-01 --format csv >"$WORK/report.csv" || fail "csv exited non-zero"
report --month 2024-01 --format text >"$WORK/report.txt" || fail "text exited non-zero"
$CHECK data "$WORK/expected-10.json" "$WORK/report.json" "$WORK/report.csv" "$WORK/report.txt" \
    --uniques-tolerance "$tol" || fail "the report (--limit 10) differs from the reference"

say "HTML in headless Chromium: renders, no console message, the expected marks"
report --month 2024-01 --html "$WORK/report.html" >"$WORK/html-stdout.txt" ||
    fail "report --html exited non-zero"
[ ! -s "$WORK/html-stdout.txt" ] || fail "--html without --format wrote to stdout"
report --month 2024-01 --format html >"$WORK/report-stdout.html" || fail "--format html failed"
cmp -s "$WORK/report.html" "$WORK/report-stdout.html" || fail "--html FILE and --format html differ"
chromium_dom() { # PAGE DOM LOG
    timeout 120 chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
        --user-data-dir="$WORK/chromium" --dump-dom "file://$1" >"$2" 2>"$3"
}
# The console check must be able to fail: a page that logs an error is caught.
printf '<!DOCTYPE html><p>x</p><script>console.error("report-test-" + 42)</script>\n' \
    >"$WORK/canary.html"
chromium_dom "$WORK/canary.html" "$WORK/canary.dom" "$WORK/canary.log" || fail "chromium failed"
grep -q 'CONSOLE.*report-test-42' "$WORK/canary.log" || fail "chromium's console log is not seen"
for page in latest report; do
    chromium_dom "$WORK/$page.html" "$WORK/$page.dom" "$WORK/$page.chromium.log" ||
        fail "chromium failed on $page.html"
    if grep -q "CONSOLE" "$WORK/$page.chromium.log"; then
        grep "CONSOLE" "$WORK/$page.chromium.log" >&2
        fail "$page.html logged to the console"
    fi
done
grep -q 'id="chart-daily-users"' "$WORK/latest.dom" || fail "the latest month's page has no chart"
$CHECK html "$WORK/expected-10.json" "$WORK/report.json" "$WORK/report.dom" ||
    fail "the page's charts differ from the data"
shot=${IT_REPORT_SCREENSHOT:-$WORK/report.png}
timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$WORK/chromium" --window-size=1060,2400 --screenshot="$shot" \
    "file://$WORK/report.html" 2>/dev/null || fail "chromium --screenshot failed"
[ -s "$shot" ] || fail "no screenshot"
$CHECK png "$shot" || fail "the screenshot does not show the charts"
[ -z "${IT_REPORT_SCREENSHOT:-}" ] || cp "$WORK/report.html" "$WORK/report.txt" "$WORK/latest.html" "$(dirname "$shot")/"
say "screenshot: $shot"
say "ok"
