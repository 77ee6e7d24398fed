#!/usr/bin/env bash
# test_pg_rollback.sh — PostgreSQL goes back in time under a running
# processor: the sink tables are restored from a backup (pg_dump taken
# mid-stream, pg_restore --clean in one transaction, as a restore or a
# failover to a lagging replica would leave them) while more flushes have
# committed since. Flushes write only dirty entities, so without a check
# the rows flushed after the backup and not touched again would stay
# stale. The processor must notice (activity_flush_fence behind the token
# Redis saw commit), say so, re-flush everything Redis holds, and end,
# after SIGTERM, with tables equal to the reference exactly.
source "$(dirname "$0")/lib.sh"

EVENTS=${IT_PG_ROLLBACK_EVENTS:-200000}
start_fault_run "$EVENTS" 81 12
proc=$PROC
fence() { psql_test -tAc "SELECT coalesce(max(token), 0) FROM activity_flush_fence"; }
sink_digest() {
    psql_test -tAc "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM (
        SELECT host, hit_array::text FROM host_activity_reduced UNION ALL
        SELECT user_id::text || coalesce(browser_type, '-'), datelist_int::text
        FROM user_devices_cumulated) t"
}
load_chunks 1 4 0.3
sleep 2
say "pg_dump of the sink tables at flush token $(fence)"
pg_dump -Fc -T raw_events -T raw_devices -T 'expected_*' "$ACTIVITY_PG_DSN" -f "$WORK/backup.dump"
backup_token=$(fence)
backup_digest=$(sink_digest)
load_chunks 5 9 0.3
sleep 3
kill -0 "$proc" || fail "the processor died"
later_token=$(fence)
[ "$later_token" -gt "$backup_token" ] || fail "no flush committed after the backup"
say "restoring the backup (token $backup_token) over the tables (token $later_token), processor running"
# The dump has the hll extension (host_daily_uniques' type), which --clean would drop; the
# reference's tables, not dumped, use it too: the extension itself is left in place.
pg_restore -l "$WORK/backup.dump" | grep -v ' EXTENSION ' >"$WORK/backup.list"
pg_restore --clean --if-exists --single-transaction -L "$WORK/backup.list" -d "$ACTIVITY_PG_DSN" \
    "$WORK/backup.dump"
load_chunks 10 11 0.3
for _ in $(seq 1 120); do
    grep -q "postgres went back in time" "$WORK/run.log" &&
        grep -q "back where it stood" "$WORK/run.log" && break
    kill -0 "$proc" || fail "the processor died"
    sleep 0.5
done
sleep 3
kill -TERM "$proc"
wait "$proc" || {
    tail -30 "$WORK/run.log" >&2
    fail "the processor did not exit 0 on SIGTERM"
}
grep -E "went back in time|marked all|re-reading|back where it stood|flush failed" "$WORK/run.log" |
    cut -c1-240 >&2 || true
[ "$(sink_digest)" != "$backup_digest" ] || fail "the tables are still the backup's"
compare_tables -v uv_tolerance_pct=0
grep -q "postgres went back in time: activity_flush_fence holds flush token" "$WORK/run.log" ||
    fail "the rollback was not reported"
say "ok"
