/*
 * flush_plan.h — what one flush writes, planned from Redis: dirty Redis
 * state → plain rows (processors/flush_rows.h) and dimension changes.
 *
 * The plan owns everything between "take the dirty sets" and "hand rows
 * to a sink": parsing the dirty markers apply.lua writes
 * (processors/dirty_marker.h), what to read for them
 * (processors/state_read.h), the device join of user_devices_cumulated,
 * the buffered dimension changes, and, after the sink committed, the
 * hand-off's end. sinks/ receives the finished rows and only writes
 * PostgreSQL; cmd/flush.c strings the two together.
 *
 * The dirty → flushing hand-off (processors/take_dirty.lua) makes a flush
 * safe to interrupt anywhere: entities leave the flushing set only after
 * the PostgreSQL transaction that wrote them has committed, and writing
 * them again is harmless because rows carry absolute values.
 *
 * The device join is resolved here, at flush time, from the latest device
 * state, so the result does not depend on whether a device record arrived
 * before or after the events that use it: a user seen with an unknown
 * device waits on that device, and the device's arrival re-flushes the
 * waiting users.
 */
#ifndef ACTIVITY_FLUSH_PLAN_H
#define ACTIVITY_FLUSH_PLAN_H

#include "processors/bytes_map.h"
#include "processors/dims.h"
#include "processors/flush_rows.h"
#include "processors/key_groups.h"
#include "processors/redis_state.h"

/* Redis lacks state the flush expected: the layout marker is gone (a
 * wipe). Nothing may be written: Redis must be rebuilt, never written as
 * deletions. */
#define FLUSH_STATE_MISSING 2
/* PostgreSQL went back in time (its flush fence is older than a token
 * that committed): nothing written, everything Redis holds was marked
 * dirty for the next flush, and the fences of the replay topics forgotten
 * (flush_plan_replay_all). */
#define FLUSH_POSTGRES_BEHIND 3
/* The layout marker is there, but dirty host or user months have no state
 * (a wipe racing the flush, or keys deleted one by one): nothing written. */
#define FLUSH_STATE_PARTIAL 4

/* A (user, month) whose rows are replaced: its user_devices_cumulated
 * rows (user_row) and its users_cumulated row, mask: the user's days on
 * every device, described, unknown or null. */
typedef struct {
    int64_t user_id;
    int32_t month;
    uint32_t mask; /* bit d-1 = active on day d */
} user_month;

typedef struct flush_work flush_work; /* the plan's bookkeeping (flush_plan.c) */

typedef struct {
    int64_t token;     /* this flush's token (flush_plan_take) */
    int64_t committed; /* the newest token Redis knows PostgreSQL committed */
    size_t n_groups;   /* key groups with something taken */
    /* the rows (flush_plan_build) */
    host_row *hosts;
    size_t n_hosts;
    user_month *user_keys; /* every (user, month) whose rows are replaced, with its mask */
    size_t n_user_keys;
    user_row *users;
    size_t n_users;
    user_mask_row *masks; /* every entry of the flushed user months' values */
    size_t n_masks;
    dim_change *dims; /* both dimensions' changes, in buffer order */
    size_t n_dims, n_dims_by_kind[DIM_COUNT];
    /* dirty host and user months left out: their month was evicted since */
    size_t evicted_skipped;
    flush_work *w;
} flush_plan;

/* Reads the committed token, takes a new flush token and moves every key
 * group's dirty set into its flushing set, parsing the markers. Returns
 * 0; 1 when a flush with a newer token took a group first (give up, retry
 * later; nothing is lost); -1 with err set. */
int flush_plan_take(redis_state *rs, flush_plan *p, errbuf *err);

/* Reads what the taken markers name and builds the rows: host months,
 * user months with the device join (registering users on unknown
 * devices as waiting), dimension changes. Checks afterwards that Redis
 * still holds its state: returns 0, FLUSH_STATE_MISSING,
 * FLUSH_STATE_PARTIAL (err says what), or -1 with err set. */
int flush_plan_build(redis_state *rs, flush_plan *p, errbuf *err);

/* After the sink committed p->token: records it, forgets the flushing sets
 * and the waiting entries this flush resolved. */
int flush_plan_finish(redis_state *rs, const flush_plan *p, errbuf *err);

/* PostgreSQL holds token held, older than committed: marks everything
 * Redis holds dirty, forgets the fences of replay_topics (NULL-ended),
 * bumps the epoch and records held. Returns FLUSH_POSTGRES_BEHIND with err
 * set, or -1. */
int flush_plan_replay_all(redis_state *rs, const char *const *replay_topics, int64_t held,
                          int64_t committed, errbuf *err);

void flush_plan_free(flush_plan *p);

/* The dimension changes of one key group's buffer (field/value pairs:
 * field "d42" → entries, processors/dims.h), appended to (*out, *n, *cap)
 * and counted by kind; attrs point into pairs. Malformed fields or entries
 * are skipped with a warning (they cannot come from this program).
 * Returns 0, or -1 when out of memory. */
int flush_plan_dims_from_buffer(const redis_strings *pairs, dim_change **out, size_t *n,
                                size_t *cap, size_t counts[DIM_COUNT]);

#endif
