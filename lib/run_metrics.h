/*
 * run_metrics.h — what `activity run` counts for Prometheus, and its
 * health and readiness.
 *
 * Owns the processor's metric families (names, labels, buckets: the
 * contract with dashboards, documented in README "Metrics") and the state
 * /healthz and /readyz judge. The processing code only calls the bumps
 * below; they are cheap whether or not --metrics-addr serves them, so the
 * code paths are the same with metrics on and off.
 */
#ifndef ACTIVITY_RUN_METRICS_H
#define ACTIVITY_RUN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/version.h"

/* Registers the families (once; later calls do nothing). Returns -1 when
 * out of memory. ready_flush_failure: seconds a flush may keep failing
 * before /readyz turns unready. */
int run_metrics_init(double ready_flush_failure);

/* Records are counted per poll round: _consumed accumulates without a
 * lock, _commit publishes the round's counts. */
void run_metrics_consumed(const char *topic);
void run_metrics_commit(void);
void run_metrics_dead_letter(const char *topic, const char *reason);
/* A partition's batch sent to Redis (its size, dead letters included), and
 * the records of it Redis applied (dead letters excluded). */
void run_metrics_batch(const char *topic, uint64_t records);
void run_metrics_applied(const char *topic, uint64_t records);
/* Seconds from sending a round's batches to reading their replies, and
 * the part of it the loop spent waiting for the replies. */
void run_metrics_apply_latency(double seconds, double waited);
void run_metrics_rebalance(bool assign);
void run_metrics_assigned(size_t partitions);
/* A flush: result "ok", "superseded" or "failed"; on ok, its duration and
 * the rows it wrote. A failure says which server failed (PostgreSQL or
 * Redis). */
void run_metrics_flush_ok(double seconds, size_t host_rows, size_t user_rows, size_t device_changes,
                          size_t user_changes);
void run_metrics_flush_superseded(void);
/* Lateness and eviction (README "Lateness and eviction"): one late event;
 * the running total of entities of evicted months brought back from
 * PostgreSQL; evictions. */
void run_metrics_late_event(void);
void run_metrics_rehydrations(uint64_t total);
void run_metrics_evictions(size_t n);
/* Dirty months a flush left out: another instance evicted them. */
void run_metrics_evicted_skipped(size_t n);
/* Evicted months PostgreSQL lost and no backfill rebuilt yet (a gauge),
 * and the first run of consecutive ones, [from_ym, to_ym) as YYYYMM: while
 * any, /readyz fails naming the backfill. */
void run_metrics_months_lost(size_t n, int32_t from_ym, int32_t to_ym);
void run_metrics_flush_failed(bool postgres);
void run_metrics_redis_up(bool up);
/* PostgreSQL answered (or not) a flush with nothing to write, which does
 * not ask it: the loop pings it instead. */
void run_metrics_postgres_up(bool up);
void run_metrics_redis_retry(void);
void run_metrics_postgres_retry(void);
/* librdkafka's statistics JSON (statistics.interval.ms): consumer lag per
 * partition. */
void run_metrics_kafka_stats(const char *json, size_t len);
/* The loop turned (for /healthz); stopping (for /readyz). */
void run_metrics_heartbeat(void);
void run_metrics_stopping(void);

/* The probe for metrics_http_start. */
bool run_metrics_probe(bool ready, char *why, size_t cap);

#endif
