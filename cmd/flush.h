/*
 * flush.h — one flush: the plan (processors/flush_plan.h: dirty Redis state
 * → rows) written by the sink (sinks/pg_sink.h: rows → one PostgreSQL
 * transaction), then the hand-off finished. Here in cmd/ because it wires
 * both layers; neither knows the other.
 */
#ifndef ACTIVITY_FLUSH_H
#define ACTIVITY_FLUSH_H

#include "processors/flush_plan.h"
#include "sinks/pg_sink.h"

typedef struct {
    size_t host_rows;
    size_t user_keys;
    size_t user_rows;
    size_t dim_changes; /* device and user profile changes merged (sinks/scd2.h) */
    size_t dim_device_changes, dim_user_changes; /* dim_changes by dimension */
    size_t evicted_months;                       /* (key group, month) pairs evicted after it */
    size_t evicted_skipped; /* dirty months left out: another instance evicted them */
    double seconds;
} flush_stats;

/* Returns 0 on success (stats filled); 1 when a concurrent flush of
 * another instance committed newer state first (retry later);
 * FLUSH_STATE_MISSING or FLUSH_STATE_PARTIAL, writing nothing, when Redis
 * lacks state the flush expected (the layout marker; any dirty host or
 * user month): Redis lost state and must be rebuilt, never written as
 * deletions; FLUSH_POSTGRES_BEHIND when PostgreSQL went back in time
 * (nothing written; everything re-flushed next time, replay_topics, the
 * NULL-ended dimension topics whose history only PostgreSQL keeps, read
 * again from the start); -1 with err set on failure. Whatever happens
 * nothing is lost: the flushing sets stay for the next attempt. pg_failed
 * tells whether the failure was PostgreSQL's (see
 * pg_sink_error_is_transient). */
int flush_once(redis_state *rs, pg_sink *pg, const char *const *replay_topics, flush_stats *stats,
               bool *pg_failed, errbuf *err);

#endif
