/*
 * flusher.h — one flush: dirty Redis state → absolute rows → PostgreSQL.
 *
 * The dirty → flushing hand-off (processors/take_dirty.lua) makes a flush
 * safe to interrupt anywhere: entities leave the flushing set only after
 * the PostgreSQL transaction that wrote them has committed, and writing
 * them again is harmless because rows carry absolute values.
 *
 * The device join of user_devices_cumulated is resolved here, at flush
 * time, from the latest device state, so the result does not depend on
 * whether a device record arrived before or after the events that use it:
 * a user seen with an unknown device waits on that device, and the
 * device's arrival re-flushes the waiting users.
 */
#ifndef ACTIVITY_FLUSHER_H
#define ACTIVITY_FLUSHER_H

#include "processors/redis_state.h"
#include "sinks/pg_sink.h"

typedef struct {
    size_t host_rows;
    size_t user_keys;
    size_t user_rows;
    size_t dim_changes; /* device and user profile changes merged (sinks/scd2.h) */
    size_t dim_device_changes, dim_user_changes; /* dim_changes by dimension */
    double seconds;
} flush_stats;

/* Returns 0 on success (stats filled); 1 when a concurrent flush of
 * another instance committed newer state first (retry later);
 * FLUSH_STATE_MISSING or FLUSH_STATE_PARTIAL, writing nothing, when Redis
 * lacks state the flush expected (the layout marker; any dirty host or
 * user month): Redis lost state and must be rebuilt, never written as
 * deletions; -1 with err set on failure. Whatever happens nothing is lost: the flushing sets stay
 * for the next attempt. pg_failed tells whether the failure was
 * PostgreSQL's (see pg_sink_error_is_transient). */
#define FLUSH_STATE_MISSING 2
/* The layout marker is there, but dirty host or user months have no state
 * (a wipe racing the flush, or keys deleted one by one): nothing written. */
#define FLUSH_STATE_PARTIAL 4
/* PostgreSQL went back in time (its flush fence is older than a token
 * that committed): nothing written, everything Redis holds was marked
 * dirty for the next flush, and the fences of replay_topics (NULL-ended;
 * the dimensions' topics, whose history only PostgreSQL keeps) forgotten
 * so that their owners read them again from the start. */
#define FLUSH_POSTGRES_BEHIND 3
int flush_once(redis_state *rs, pg_sink *pg, const char *const *replay_topics, flush_stats *stats,
               bool *pg_failed, errbuf *err);

#endif
