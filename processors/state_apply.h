/*
 * state_apply.h — what writes the processor's Redis state: the layout
 * marker, fences, the fenced apply of a batch (processors/apply.lua), and
 * the flush's hand-off: flush tokens, dirty → flushing (take_dirty.lua),
 * forgetting a committed flush (finish_flush.lua), the PostgreSQL token,
 * the epoch.
 * Implemented in processors/state_apply.c; plain C values only.
 */
#ifndef ACTIVITY_STATE_APPLY_H
#define ACTIVITY_STATE_APPLY_H

#include "processors/batch.h"
#include "processors/key_groups.h"
#include "processors/redis_conn.h"

/* Records the layout on first use and refuses state written with another. */
int redis_state_check_layout(redis_state *rs, errbuf *err);
/* 1 when the layout marker <p>:meta exists, 0 when it is gone (the state of
 * the prefix was wiped: FLUSHDB, an empty replica, a restart without
 * persistence), -1 on error. */
int redis_state_layout_present(redis_state *rs, errbuf *err);

/* Reads the fences of one source partition for every group; -1 = none. */
int redis_state_read_fences(redis_state *rs, const char *topic, int32_t partition,
                            int64_t fences[KEY_GROUPS], errbuf *err);

/* Applies every non-empty group of the batch with its fence check, in two
 * halves so Redis can work on one batch while the caller prepares the next:
 * _send queues and pushes the scripts of every non-empty group (fences[]
 * holds the expected values), _recv reads the replies and advances fences[]
 * to new_fence for the groups applied. _recv returns 0 when all applied, 1
 * when some group's fence had moved (that group's fences[] entry is set to
 * what Redis holds and nothing of it was written), -1 on a Redis error.
 * Nothing else may use this connection in between. */
typedef struct {
    uint32_t groups[KEY_GROUPS];
    int64_t expected[KEY_GROUPS];
    size_t n;
    int64_t new_fence;
    int64_t max_event_ms;
    bool rehydrate[KEY_GROUPS]; /* groups that asked for a rehydration */
} apply_ticket;

/* _recv's answer when some group must first bring entities of evicted
 * months back from PostgreSQL (nothing of that group was written). */
#define REDIS_APPLY_REHYDRATE 2

int redis_state_apply_send(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                           int64_t new_fence, const int64_t fences[KEY_GROUPS], apply_ticket *t,
                           errbuf *err);
int redis_state_apply_recv(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                           apply_ticket *t, int64_t fences[KEY_GROUPS], errbuf *err);

/* After _recv returned REDIS_APPLY_REHYDRATE (every reply of the pipeline
 * read): brings those entities back (processors/state_rehydrate.h) and
 * applies those groups again, synchronously. Returns as _recv, never
 * REDIS_APPLY_REHYDRATE. */
int redis_state_apply_rehydrating(redis_state *rs, const batch *b, const char *topic,
                                  int32_t partition, apply_ticket *t, int64_t fences[KEY_GROUPS],
                                  errbuf *err);

/* Moves fences of groups that had nothing in [fence, next) up to next, so a
 * restart does not re-read a long range for a quiet group. Same return
 * convention as redis_state_apply_recv. */
int redis_state_advance_fences(redis_state *rs, const char *topic, int32_t partition, int64_t next,
                               int64_t fences[KEY_GROUPS], errbuf *err);
/* The same, carrying the partition's latest event time folded so far
 * (INT64_MIN: none) into the advanced groups' watermarks. */
int redis_state_advance_fences_wm(redis_state *rs, const char *topic, int32_t partition,
                                  int64_t next, int64_t max_event_ms, int64_t fences[KEY_GROUPS],
                                  errbuf *err);

/* ---- the flush's hand-off ---------------------------------------------- */

/* Makes the next flush token larger than at_least: after Redis lost its
 * counter (a restart without persistence), tokens must still exceed the
 * newest one PostgreSQL has seen. */
int redis_state_raise_flush_token(redis_state *rs, int64_t at_least, errbuf *err);
/* The newest flush token this prefix knows PostgreSQL committed (0 if
 * none): PostgreSQL's activity_flush_fence below it means PostgreSQL went
 * back in time (failover to a lagging replica, restore from a backup). */
int redis_state_pg_token(redis_state *rs, int64_t *token, errbuf *err);
/* Records token as committed: raise_only keeps a larger one (after a
 * commit); otherwise it is set as is (after PostgreSQL went back). */
int redis_state_set_pg_token(redis_state *rs, int64_t token, bool raise_only, errbuf *err);
/* Adds every host month and user month Redis holds for this prefix to the
 * dirty sets, so that the next flush rewrites all of them; counts them. */
int redis_state_mark_all_dirty(redis_state *rs, size_t *hosts, size_t *users, errbuf *err);
/* Deletes the fences of every partition of topic in every key group: its
 * owners find them gone and re-read the topic from the start. */
int redis_state_forget_fences(redis_state *rs, const char *topic, errbuf *err);
/* A value every instance reads at each flush (0 when unset); bump (a new
 * value, returned) after fences changed behind their owners' backs
 * (redis_state_forget_fences, lost state), so that every instance
 * resyncs its partitions, quiet ones included. */
int redis_state_epoch(redis_state *rs, int64_t *epoch, bool bump, errbuf *err);
/* A new flush token: larger than every token handed out before. */
int redis_state_flush_token(redis_state *rs, int64_t *token, errbuf *err);
/* Moves group g's dirty set into its flushing set, recording the token;
 * fills members with the flushing set (the dirty markers of apply.lua:
 * processors/flush_plan.h parses them; free with redis_strings_free).
 * Returns -1 with *stale set, moving nothing, when a flush with a larger
 * token has taken the group already: this flush must give up (takes
 * happen in token order). */
int redis_state_take_dirty(redis_state *rs, uint32_t group, int64_t token, redis_strings *members,
                           bool *stale, errbuf *err);
/* After a committed flush: forgets the flushing sets of these groups,
 * unless a later flush has taken them since. */
int redis_state_finish_flush(redis_state *rs, const uint32_t *groups, size_t ngroups, int64_t token,
                             errbuf *err);

/* After a committed flush: deletes the Redis state of every closed month
 * (before the lowest partition watermark) that PostgreSQL holds in full
 * (processors/evict.lua), key group by key group; counts the evicted
 * (group, month) pairs. A month with users waiting for a device stays. */
int redis_state_evict_closed(redis_state *rs, size_t *evicted, errbuf *err);

/* PostgreSQL went back to flush token `held`: every month some key group
 * evicted at a later token (each eviction records the token it saw
 * committed; a month without a record counts too) is in neither store. They
 * join <p>:lostmonths, which stays until a range backfill rebuilt them
 * (redis_state_forget_lost_months); *n: how many were recorded now. */
int redis_state_record_lost_months(redis_state *rs, int64_t held, size_t *n, errbuf *err);
/* The months <p>:lostmonths holds, as YYYYMM numbers in ascending order
 * (*months malloc'd, NULL when none). */
int redis_state_lost_months(redis_state *rs, int32_t **months, size_t *n, errbuf *err);
/* A claim on <p>:<name> that one process of the prefix holds at a time
 * (the automatic rebuild of lost months): taken (*got) for ttl_ms unless
 * another holds it; refresh: its ttl renewed if this process holds it;
 * ttl_ms 0: released if this process holds it. */
int redis_state_claim(redis_state *rs, const char *name, int ttl_ms, bool refresh, bool *got,
                      errbuf *err);
/* Forgets the lost months in [from_ym, to_ym) (YYYYMM): a backfill has
 * rebuilt them. *n: how many. */
int redis_state_forget_lost_months(redis_state *rs, int32_t from_ym, int32_t to_ym, size_t *n,
                                   errbuf *err);
#endif
