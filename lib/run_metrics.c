/*
 * run_metrics.c — the processor's metric families and its health and
 * readiness (see run_metrics.h).
 */
#include "lib/run_metrics.h"
#include "lib/metrics.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* /healthz fails when the loop has not turned for this long: a poll round
 * takes at most a batch, a flush or a reconnect attempt, all far shorter. */
#define HEALTH_STALL_SECONDS 120.0

static metric_family *consumed, *applied, *dead_letters, *batch_records, *apply_seconds,
    *apply_wait_seconds, *rebalances, *assigned, *flush_seconds, *flushes, *flush_rows, *lag,
    *redis_up, *pg_up, *redis_retries, *pg_retries, *build_info, *late_events, *rehydrations,
    *evictions, *evicted_skipped, *months_unrebuilt;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Shared with the HTTP thread: plain atomics (doubles as their bits would
 * need a lock; milliseconds in an int64 do not). */
static _Atomic int64_t last_loop_ms, unflushed_since_ms, flush_failing_since_ms;
static _Atomic int n_assigned, redis_ok = 1, pg_ok = 1, stopping;
/* Evicted months PostgreSQL lost, and their first run [from, to) as YYYYMM. */
static _Atomic int64_t lost_months;
static _Atomic int32_t lost_from_ym, lost_to_ym;
static double ready_flush_failure_s = 60;

static int64_t now_ms(void)
{
    return (int64_t)(now_seconds() * 1000);
}

static double oldest_unflushed(void)
{
    int64_t since = atomic_load(&unflushed_since_ms);
    return since ? (now_ms() - since) / 1000.0 : 0;
}

int run_metrics_init(double ready_flush_failure)
{
    static bool done;
    ready_flush_failure_s = ready_flush_failure;
    atomic_store(&last_loop_ms, now_ms());
    if (done)
        return 0;
    static const double size_buckets[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    static const double latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    static const double flush_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
    consumed = metrics_family("activity_records_consumed_total", METRIC_COUNTER,
                              "Records read from Kafka, by topic.", "topic", NULL, 0);
    applied = metrics_family("activity_records_applied_total", METRIC_COUNTER,
                             "Records folded into Redis state (dead letters excluded), by topic.",
                             "topic", NULL, 0);
    dead_letters = metrics_family("activity_dead_letters_total", METRIC_COUNTER,
                                  "Records sent to the dead-letter topic, by source topic and "
                                  "reason.",
                                  "topic,reason", NULL, 0);
    batch_records = metrics_family("activity_batch_records", METRIC_HISTOGRAM,
                                   "Records per partition batch sent to Redis (_count: batches).",
                                   "topic", size_buckets, 7);
    apply_seconds = metrics_family("activity_redis_apply_seconds", METRIC_HISTOGRAM,
                                   "From sending a round's batches to Redis to reading the "
                                   "replies.",
                                   NULL, latency_buckets, 14);
    apply_wait_seconds = metrics_family("activity_redis_apply_wait_seconds", METRIC_HISTOGRAM,
                                        "Time the loop blocked reading Redis apply replies (the "
                                        "round trip not hidden behind polling).",
                                        NULL, latency_buckets, 14);
    rebalances = metrics_family("activity_rebalances_total", METRIC_COUNTER,
                                "Consumer group rebalance callbacks, by type (assign, revoke).",
                                "type", NULL, 0);
    assigned = metrics_family("activity_assigned_partitions", METRIC_GAUGE,
                              "Partitions assigned to this member.", NULL, NULL, 0);
    flush_seconds =
        metrics_family("activity_flush_duration_seconds", METRIC_HISTOGRAM,
                       "Duration of successful flushes to PostgreSQL.", NULL, flush_buckets, 12);
    flushes =
        metrics_family("activity_flushes_total", METRIC_COUNTER,
                       "Flush attempts by result (ok, superseded, failed).", "result", NULL, 0);
    flush_rows = metrics_family("activity_flush_rows_total", METRIC_COUNTER,
                                "Rows written by flushes, by table.", "table", NULL, 0);
    lag = metrics_family("activity_consumer_lag", METRIC_GAUGE,
                         "Records between the partition's end and this member's applied "
                         "position (librdkafka statistics, consumer_lag_stored).",
                         "topic,partition", NULL, 0);
    redis_up = metrics_family("activity_redis_up", METRIC_GAUGE,
                              "1 when the last Redis operation succeeded.", NULL, NULL, 0);
    pg_up = metrics_family("activity_postgres_up", METRIC_GAUGE,
                           "1 when PostgreSQL answered the last flush (or ping, when there was "
                           "nothing to write).",
                           NULL, NULL, 0);
    redis_retries = metrics_family("activity_redis_retries_total", METRIC_COUNTER,
                                   "Redis reconnection attempts and flushes retried after a "
                                   "Redis failure.",
                                   NULL, NULL, 0);
    pg_retries = metrics_family("activity_postgres_retries_total", METRIC_COUNTER,
                                "Flushes retried after a PostgreSQL failure.", NULL, NULL, 0);
    late_events = metrics_family("activity_late_events_total", METRIC_COUNTER,
                                 "Events older than their partition's watermark (latest event "
                                 "time minus --allowed-lateness) when read.",
                                 NULL, NULL, 0);
    rehydrations =
        metrics_family("activity_rehydrations_total", METRIC_COUNTER,
                       "Hosts and users of evicted months brought back from PostgreSQL into "
                       "Redis for late events.",
                       NULL, NULL, 0);
    evictions = metrics_family("activity_month_evictions_total", METRIC_COUNTER,
                               "(key group, month) pairs whose Redis state was deleted after "
                               "the month closed and PostgreSQL committed it.",
                               NULL, NULL, 0);
    evicted_skipped =
        metrics_family("activity_flush_evicted_skipped_total", METRIC_COUNTER,
                       "Dirty host and user months a flush left out because another instance "
                       "evicted their month (final in PostgreSQL) after the flush read them.",
                       NULL, NULL, 0);
    months_unrebuilt =
        metrics_family("activity_evicted_months_lost", METRIC_GAUGE,
                       "Evicted months PostgreSQL lost (restored to before their eviction) "
                       "that no range backfill has rebuilt yet.",
                       NULL, NULL, 0);
    build_info =
        metrics_family("activity_build_info", METRIC_GAUGE,
                       "Always 1; the labels give the versions.", "version,librdkafka", NULL, 0);
    if (!consumed || !applied || !dead_letters || !batch_records || !apply_seconds ||
        !apply_wait_seconds || !rebalances || !assigned || !flush_seconds || !flushes ||
        !flush_rows || !lag || !redis_up || !pg_up || !redis_retries || !pg_retries ||
        !build_info || !late_events || !rehydrations || !evictions || !evicted_skipped ||
        !months_unrebuilt ||
        metrics_gauge_fn("activity_oldest_unflushed_change_seconds",
                         "Age of the oldest change this member applied to Redis that no flush "
                         "has written to PostgreSQL yet (0: none).",
                         oldest_unflushed))
        return -1;
    metrics_set(build_info, (const char *[]){ACTIVITY_VERSION, rd_kafka_version_str()}, 1);
    metrics_set(redis_up, NULL, 1);
    metrics_set(months_unrebuilt, NULL, 0);
    metrics_set(pg_up, NULL, 1);
    metrics_set(assigned, NULL, 0);
    metrics_add(redis_retries, NULL, 0);
    metrics_add(pg_retries, NULL, 0);
    static const char *results[] = {"ok", "superseded", "failed"};
    for (int i = 0; i < 3; i++)
        metrics_add(flushes, (const char *[]){results[i]}, 0);
    done = true;
    return 0;
}

/* Per-round consumed counts: the loop is the only writer, so no lock until
 * run_metrics_commit. A topic beyond the slots is published at once. */
static struct {
    char name[256];
    uint64_t n;
} round_counts[8];

void run_metrics_consumed(const char *topic)
{
    for (size_t i = 0; i < sizeof round_counts / sizeof *round_counts; i++) {
        if (!round_counts[i].name[0] && strlen(topic) < sizeof round_counts[i].name)
            strcpy(round_counts[i].name, topic);
        if (strcmp(round_counts[i].name, topic) == 0) {
            round_counts[i].n++;
            return;
        }
    }
    metrics_add(consumed, (const char *[]){topic}, 1);
}

void run_metrics_commit(void)
{
    for (size_t i = 0; i < sizeof round_counts / sizeof *round_counts; i++)
        if (round_counts[i].n) {
            metrics_add(consumed, (const char *[]){round_counts[i].name},
                        (double)round_counts[i].n);
            round_counts[i].n = 0;
        }
}

void run_metrics_dead_letter(const char *topic, const char *reason)
{
    metrics_add(dead_letters, (const char *[]){topic, reason}, 1);
}

void run_metrics_batch(const char *topic, uint64_t records)
{
    metrics_observe(batch_records, (const char *[]){topic}, (double)records);
}

void run_metrics_applied(const char *topic, uint64_t records)
{
    metrics_add(applied, (const char *[]){topic}, (double)records);
    int64_t zero = 0;
    atomic_compare_exchange_strong(&unflushed_since_ms, &zero, now_ms());
}

void run_metrics_apply_latency(double seconds, double waited)
{
    metrics_observe(apply_seconds, NULL, seconds);
    metrics_observe(apply_wait_seconds, NULL, waited);
}

void run_metrics_rebalance(bool assign)
{
    metrics_add(rebalances, (const char *[]){assign ? "assign" : "revoke"}, 1);
}

void run_metrics_assigned(size_t partitions)
{
    if ((int)partitions != atomic_exchange(&n_assigned, (int)partitions))
        metrics_set(assigned, NULL, (double)partitions);
}

void run_metrics_flush_ok(double seconds, size_t host_rows, size_t user_rows, size_t device_changes,
                          size_t user_changes)
{
    /* Everything applied before this flush began was in it: the loop
     * applies and flushes on one thread. */
    atomic_store(&unflushed_since_ms, 0);
    atomic_store(&flush_failing_since_ms, 0);
    run_metrics_redis_up(true);
    metrics_add(flushes, (const char *[]){"ok"}, 1);
    metrics_observe(flush_seconds, NULL, seconds);
    static const char *tables[] = {"host_activity_reduced", "hosts_cumulated",
                                   "user_devices_cumulated", "dim_devices", "dim_users"};
    size_t rows[] = {host_rows, host_rows, user_rows, device_changes, user_changes};
    for (int i = 0; i < 5; i++)
        metrics_add(flush_rows, (const char *[]){tables[i]}, (double)rows[i]);
}

void run_metrics_late_event(void)
{
    metrics_add(late_events, NULL, 1);
}

void run_metrics_rehydrations(uint64_t total)
{
    /* A running total from the Redis state module: publish the increase. */
    static _Atomic uint64_t seen;
    uint64_t before = atomic_exchange(&seen, total);
    if (total > before)
        metrics_add(rehydrations, NULL, (double)(total - before));
}

void run_metrics_evictions(size_t n)
{
    if (n)
        metrics_add(evictions, NULL, (double)n);
}

void run_metrics_evicted_skipped(size_t n)
{
    if (n)
        metrics_add(evicted_skipped, NULL, (double)n);
}

void run_metrics_months_lost(size_t n, int32_t from_ym, int32_t to_ym)
{
    metrics_set(months_unrebuilt, NULL, (double)n);
    atomic_store(&lost_from_ym, from_ym);
    atomic_store(&lost_to_ym, to_ym);
    atomic_store(&lost_months, (int64_t)n);
}

void run_metrics_flush_superseded(void)
{
    metrics_add(flushes, (const char *[]){"superseded"}, 1);
}

void run_metrics_flush_failed(bool postgres)
{
    int64_t zero = 0;
    atomic_compare_exchange_strong(&flush_failing_since_ms, &zero, now_ms());
    metrics_add(flushes, (const char *[]){"failed"}, 1);
    if (postgres) {
        run_metrics_postgres_up(false);
        metrics_add(pg_retries, NULL, 1);
    } else {
        run_metrics_redis_up(false);
        metrics_add(redis_retries, NULL, 1);
    }
}

void run_metrics_redis_up(bool up)
{
    if (atomic_exchange(&redis_ok, up ? 1 : 0) != (up ? 1 : 0))
        metrics_set(redis_up, NULL, up ? 1 : 0);
}

void run_metrics_postgres_up(bool up)
{
    if (atomic_exchange(&pg_ok, up ? 1 : 0) != (up ? 1 : 0))
        metrics_set(pg_up, NULL, up ? 1 : 0);
}

void run_metrics_redis_retry(void)
{
    metrics_add(redis_retries, NULL, 1);
}

void run_metrics_postgres_retry(void)
{
    metrics_add(pg_retries, NULL, 1);
}

void run_metrics_kafka_stats(const char *json, size_t len)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *topics = root ? json_object_get(root, "topics") : NULL;
    if (!json_is_object(topics)) {
        json_decref(root);
        return;
    }
    /* Only the partitions this member consumes: the others report -1. */
    metrics_clear(lag);
    const char *topic;
    json_t *t;
    json_object_foreach(topics, topic, t)
    {
        const char *id;
        json_t *p;
        json_object_foreach(json_object_get(t, "partitions"), id, p)
        {
            json_t *v = json_object_get(p, "consumer_lag_stored");
            if (strcmp(id, "-1") == 0 || !json_is_integer(v) || json_integer_value(v) < 0)
                continue;
            metrics_set(lag, (const char *[]){topic, id}, (double)json_integer_value(v));
        }
    }
    json_decref(root);
}

void run_metrics_heartbeat(void)
{
    atomic_store(&last_loop_ms, now_ms());
}

void run_metrics_stopping(void)
{
    atomic_store(&stopping, 1);
}

bool run_metrics_probe(bool ready, char *why, size_t cap)
{
    int64_t now = now_ms();
    double stalled = (now - atomic_load(&last_loop_ms)) / 1000.0;
    if (stalled > HEALTH_STALL_SECONDS) {
        snprintf(why, cap, "the processing loop has not turned for %.0f s", stalled);
        return false;
    }
    if (!ready)
        return true;
    int64_t failing_since = atomic_load(&flush_failing_since_ms);
    if (atomic_load(&stopping))
        snprintf(why, cap, "shutting down");
    else if (!atomic_load(&redis_ok))
        snprintf(why, cap, "redis is unreachable");
    else if (!atomic_load(&pg_ok))
        snprintf(why, cap, "postgresql is unreachable");
    else if (failing_since && (now - failing_since) / 1000.0 > ready_flush_failure_s)
        snprintf(why, cap, "flushes have been failing for %.0f s", (now - failing_since) / 1000.0);
    else if (atomic_load(&n_assigned) == 0)
        snprintf(why, cap, "no partitions assigned");
    else if (atomic_load(&lost_months) > 0) {
        int32_t from = atomic_load(&lost_from_ym), to = atomic_load(&lost_to_ym);
        snprintf(why, cap,
                 "%lld evicted months lost by postgresql need rebuilding: activity backfill "
                 "--from %04d-%02d --to %04d-%02d%s",
                 (long long)atomic_load(&lost_months), from / 100, from % 100, to / 100, to % 100,
                 atomic_load(&lost_months) > (to / 100 - from / 100) * 12 + to % 100 - from % 100
                     ? " and more (see the log)"
                     : "");
    } else
        return true;
    return false;
}
