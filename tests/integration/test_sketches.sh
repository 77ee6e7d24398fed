#!/usr/bin/env bash
# test_sketches.sh — host_daily_uniques against the postgresql-hll extension, on the real stack.
#
# Four months of events (2023-01..2023-04, 120 days; scripts/gen_events.py, a few hosts) with
# host-days below, at and past the sketches' EXPLICIT threshold (gen_events' hot-host shape: in
# January 1,280 and 1,281 users and 3,840; in February 4,500, 4,501 and 13,500, past the
# SPARSE/FULL switch). The processor is killed (-9) mid-run after its first flushes, the rest
# of the events are loaded and a second run catches up. Then, from the raw events in SQL:
#   * every (host, day)'s sketch, built by the extension (hll_add_agg(hll_hash_bigint(user_id),
#     14, 5, -1, 1)), must be byte for byte the processor's (compare.sql), and every
#     unique_visitors_array element round(#sketch); EMPTY, EXPLICIT, SPARSE and FULL all occur;
#   * range uniques #hll_union_agg(users) over 7, 28 and 90 days, per host and over several
#     hosts, must equal the same union of the raw events' sketches exactly, and
#     COUNT(DISTINCT user_id) exactly where it is below 1,280 and within 2% past 1,000 users,
#     except between 36,000 and 60,000 users: there the extension's estimator (the raw
#     HyperLogLog estimate once past linear counting at 2.5 x 2^14, without a bias
#     correction) overestimates by up to ~3.5% on any input (README "Daily sketches"), so
#     5% is asserted there.
# Last, state of the previous Redis layout is refused and `backfill --reset` rebuilds it.
. "$(dirname "$0")/lib.sh"

EVENTS=${IT_SKETCH_EVENTS:-60000}
gen() { # month seed [extra gen_events flags]
    python3 "$ROOT/scripts/gen_events.py" --events "$EVENTS" --month "$1" --seed "$2" \
        --users 30000 --hosts 6 --out "$WORK/m$1.csv" "${@:3}"
}
gen 2023-01 101 --skew hot-host --exact-limit 1280
gen 2023-02 102 --skew hot-host --exact-limit 4500
gen 2023-03 103
gen 2023-04 104
EVENTS_CSV=$WORK/events.csv
{
    head -1 "$WORK/m2023-01.csv"
    for m in 2023-01 2023-02 2023-03 2023-04; do tail -n +2 "$WORK/m$m.csv"; done
} >"$EVENTS_CSV"
tail -n +2 "$EVENTS_CSV" >"$WORK/body.csv"
split -n l/2 -d -a 1 "$WORK/body.csv" "$WORK/half"
for h in 0 1; do { head -1 "$EVENTS_CSV"; cat "$WORK/half$h"; } >"$WORK/half$h.csv"; done
say "$(($(wc -l <"$EVENTS_CSV") - 1)) events over 4 months"

"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_DEVICES" "$DEVICES" 2>/dev/null
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/half0.csv" 2>/dev/null
load_reference "$EVENTS_CSV" "$DEVICES" >/dev/null

# A crash mid-run: after the first flushes wrote sketches, kill -9 (applies and a flush may
# be in flight), load the rest, and let a new run replay from the fences.
FLAGS=(--batch-size 4000 --flush-interval 0.5)
"$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" "${FLAGS[@]}" 2>"$WORK/run1.log" &
pid=$!
wait_for_log "$WORK/run1.log" "flushed" 60
sleep 0.7
kill -9 "$pid" 2>/dev/null || fail "the first run ended before it could be killed"
wait "$pid" 2>/dev/null || true
written=$(psql_test -tAc "SELECT count(*) FROM host_daily_uniques")
say "killed the first run (-9) with $written sketches written"
[ "$written" -gt 0 ] || fail "no sketch written before the kill"
"$ACTIVITY" load "${TOPIC_FLAGS[@]}" --topic "$T_EVENTS" "$WORK/half1.csv" 2>/dev/null
run_until_caught_up "$WORK/run2.log" "${FLAGS[@]}"
grep -h "done:" "$WORK/run2.log" >&2

# Every (host, day): the extension's bytes; visitors equal to round(#sketch).
compare_tables

# Every encoding occurred, and the threshold host-days are where the extension puts them.
read -r n_rows n_days n_empty n_explicit n_sparse n_full < <(psql_test -tA -F' ' -c "
    SELECT count(*), count(DISTINCT day),
           count(*) FILTER (WHERE get_byte(users::text::bytea, 0) = 17),
           count(*) FILTER (WHERE get_byte(users::text::bytea, 0) = 18),
           count(*) FILTER (WHERE get_byte(users::text::bytea, 0) = 19),
           count(*) FILTER (WHERE get_byte(users::text::bytea, 0) = 20)
      FROM host_daily_uniques")
say "$n_rows sketches over $n_days days: EMPTY $n_empty, EXPLICIT $n_explicit, SPARSE $n_sparse, FULL $n_full"
[ "$n_days" -ge 90 ] || fail "only $n_days days"
for t in "$n_empty" "$n_explicit" "$n_sparse" "$n_full"; do
    [ "$t" -gt 0 ] || fail "an encoding was not exercised"
done
thr=$(psql_test -tA -c "
    SELECT string_agg(e.exact_visitors || ':' || get_byte(h.users::text::bytea, 0), ' '
                      ORDER BY e.exact_visitors)
      FROM host_daily_uniques h JOIN expected_host_daily_uniques e USING (host, day)
     WHERE e.exact_visitors IN (1280, 1281)")
case $thr in
*"1280:18"*"1281:19"*) say "1,280 users: EXPLICIT, 1,281: SPARSE ($thr)" ;;
*) fail "the threshold host-days are not EXPLICIT / SPARSE: '$thr'" ;;
esac
big=$(psql_test -tAc "SELECT max(exact_visitors) FROM expected_host_daily_uniques")
[ "$big" -ge 5000 ] || fail "no host-day with several thousand users (max $big)"

# Range uniques: windows of 7, 28 and 90 days ending on several days, per host (the busiest
# four) and over host sets (the four together, all hosts), from the processor's sketches and
# from the raw events' sketches, and COUNT(DISTINCT) from the raw events.
psql_test <<'SQL'
CREATE TABLE ranges AS
WITH hosts AS (SELECT host FROM raw_events GROUP BY host ORDER BY count(*) DESC, host LIMIT 4),
     sets(name, members) AS (
        SELECT host, ARRAY[host] FROM hosts
        UNION ALL SELECT 'top4', (SELECT array_agg(host) FROM hosts)
        UNION ALL SELECT 'all', (SELECT array_agg(DISTINCT host) FROM raw_events)),
     windows(len) AS (VALUES (7), (28), (90)),
     ends(last) AS (SELECT d::date FROM generate_series('2023-01-20'::date, '2023-04-30', '9 days') d)
SELECT s.name, s.members, w.len, e.last, e.last - (w.len - 1) AS first
  FROM sets s, windows w, ends e
 WHERE e.last - (w.len - 1) >= '2023-01-01';

CREATE TABLE range_results AS
SELECT r.name, r.len, r.first, r.last,
       (SELECT #hll_union_agg(users) FROM host_daily_uniques
         WHERE host = ANY (r.members) AND day BETWEEN r.first AND r.last) AS processor,
       (SELECT #hll_union_agg(users) FROM expected_host_daily_uniques
         WHERE host = ANY (r.members) AND day BETWEEN r.first AND r.last) AS from_raw,
       (SELECT count(DISTINCT user_id) FROM raw_events
         WHERE host = ANY (r.members) AND event_time >= r.first
           AND event_time < r.last + 1) AS exact
  FROM ranges r;
SQL
psql_test -c "ALTER TABLE range_results ADD tolerance numeric;
    UPDATE range_results SET tolerance = CASE WHEN exact BETWEEN 36000 AND 60000 THEN 0.05
                                              ELSE 0.02 END" >/dev/null
read -r n_ranges n_same n_small small_exact n_big big_within max_err n_band max_band < <(psql_test -tA -F' ' -c "
    SELECT count(*), count(*) FILTER (WHERE processor = from_raw),
           count(*) FILTER (WHERE exact < 1280),
           count(*) FILTER (WHERE exact < 1280 AND processor = exact),
           count(*) FILTER (WHERE exact > 1000),
           count(*) FILTER (WHERE exact > 1000 AND abs(processor - exact) <= tolerance * exact),
           coalesce(round(max(100 * abs(processor - exact) / exact)
                          FILTER (WHERE exact > 1000 AND tolerance = 0.02)::numeric, 3), 0),
           count(*) FILTER (WHERE tolerance > 0.02),
           coalesce(round(max(100 * abs(processor - exact) / exact)
                          FILTER (WHERE tolerance > 0.02)::numeric, 3), 0)
      FROM range_results")
say "$n_ranges range queries (7/28/90 days, 4 hosts and 2 host sets): $n_same equal the raw" \
    "events' sketches; $small_exact/$n_small below 1,280 users exact; $big_within/$n_big past" \
    "1,000 within tolerance: max error $max_err% where 2% is asserted, $max_band% on the" \
    "$n_band ranges of 36,000-60,000 users (5%)"
if [ "$n_same" != "$n_ranges" ] || [ "$small_exact" != "$n_small" ] || [ "$big_within" != "$n_big" ]; then
    psql_test -c "SELECT * FROM range_results
                  WHERE processor IS DISTINCT FROM from_raw
                     OR (exact < 1280 AND processor <> exact)
                     OR (exact > 1000 AND abs(processor - exact) > tolerance * exact) LIMIT 10" >&2
    fail "range uniques differ"
fi
[ "$n_small" -gt 0 ] && [ "$n_big" -gt 0 ] || fail "the ranges did not cover both sizes"

# README's rolling 28-day window (a window aggregate) gives the same as the ranges.
read -r n_win n_win_same < <(psql_test -tA -F' ' -c "
    SELECT count(*), count(*) FILTER (WHERE w.u = r.processor)
      FROM (SELECT host, day, #hll_union_agg(users) OVER (PARTITION BY host ORDER BY day
                RANGE BETWEEN '27 days' PRECEDING AND CURRENT ROW) AS u
              FROM host_daily_uniques) w
      JOIN range_results r ON r.name = w.host AND r.len = 28 AND r.last = w.day")
say "rolling 28-day window: $n_win_same/$n_win equal the range query"
[ "$n_win" -gt 0 ] && [ "$n_win" = "$n_win_same" ] || fail "the rolling window differs"

# State of the previous layout (plain user ids in the sets) is refused at start, and
# `backfill --reset` rebuilds it from the topics to the same bytes.
redis-cli -u "$ACTIVITY_REDIS_URL" HSET "$PREFIX:meta" layout 1 >/dev/null
if "$ACTIVITY" run "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" --until-caught-up 2>"$WORK/old.log"; then
    fail "state of layout 1 was not refused"
fi
grep -q "another layout" "$WORK/old.log" || fail "the refusal does not name the layout: $(tail -2 "$WORK/old.log")"
"$ACTIVITY" backfill --reset "${TOPIC_FLAGS[@]}" --group "it$RUN_ID" "${FLAGS[@]}" 2>"$WORK/reset.log" ||
    fail "backfill --reset failed: $(tail -3 "$WORK/reset.log")"
compare_tables >/dev/null
say "layout 1 refused at start; backfill --reset rebuilt every sketch byte for byte"
say "ok"
