/*
 * redis_state.h — the processor's state in Redis: layout, fences, applying
 * batches, and the reads a flush needs.
 *
 * Key layout (all keys of a key group share the "{g}" hash tag):
 *   <p>:meta                    layout version and KEY_GROUPS
 *   <p>:{g}:fence               hash "topic/partition" -> next offset to apply
 *   <p>:{g}:h:<YYYYMM>:<host>   hash day -> hits
 *   <p>:{g}:s:<YYYYMMDD>:<host> set of user ids (exact, while small)
 *   <p>:{g}:p:<YYYYMMDD>:<host> HyperLogLog of user ids (once large)
 *   <p>:{g}:u:<YYYYMM>:<bucket> hash user -> "device=mask,..." (day masks)
 *   <p>:{g}:d                   hash device -> encoded attributes
 *   <p>:{g}:w                   set of "device|YYYYMM:user" waiting for a device
 *   <p>:{g}:dirty, :flushing    sets of entities to (re-)flush
 *   <p>:{g}:flushtoken          token of the flush that took :flushing last
 *   <p>:{g}:dim, :dimflushing   hash "d<device>"/"u<user>" -> buffered dimension
 *                               changes (processors/dims.h); ":flushing" holds
 *                               the member "D" while :dimflushing exists
 *   <p>:flushgen                counter handing out flush tokens
 *   <p>:pgtoken                 newest flush token PostgreSQL committed
 *   <p>:epoch                   changed when every instance must resync
 * This module is the only one that knows key names.
 */
#ifndef ACTIVITY_REDIS_STATE_H
#define ACTIVITY_REDIS_STATE_H

#include "processors/batch.h"
#include "lib/log.h"

#include <hiredis/hiredis.h>
#include <stdint.h>

typedef struct redis_state redis_state;

/* Returned (instead of -1) when Redis answers but must not be used:
 * retrying does not help, a person must change its configuration. */
#define REDIS_REFUSED (-2)

/* url: redis://[[user]:password@]host[:port][/db]. Every connection checks
 * the eviction policy (redis_state_check_eviction). */
redis_state *redis_state_connect(const char *url, const char *prefix, errbuf *err);
void redis_state_free(redis_state *rs);
/* Drops the connection and connects again (after a Redis restart);
 * REDIS_REFUSED if the server is back with an evicting policy. */
int redis_state_reconnect(redis_state *rs, errbuf *err);

/* A Redis that may evict keys (maxmemory-policy other than noeviction)
 * would drop fences and state silently, so the processor refuses it:
 * returns REDIS_REFUSED with a message naming the setting, -1 when the
 * connection failed, 0 when the policy is noeviction. Every policy but
 * noeviction is refused, even with maxmemory 0 (one CONFIG SET of
 * maxmemory would start evicting) or a volatile-* one (safe only while no
 * key of the prefix carries a TTL, which nothing would check). */
int redis_state_check_eviction(redis_state *rs, errbuf *err);

/* Deletes every key of this prefix (a full rebuild; single Redis only). */
int redis_state_drop_all(redis_state *rs, errbuf *err);

/* Unique visitors of a (host, day) are counted exactly (a set) up to this
 * many, then by HyperLogLog (~0.8% standard error, 12 KB). */
#define REDIS_DEFAULT_EXACT_LIMIT 10000
void redis_state_set_exact_limit(redis_state *rs, long limit);

/* Records the layout on first use and refuses state written with another. */
int redis_state_check_layout(redis_state *rs, errbuf *err);
/* 1 when the layout marker <p>:meta exists, 0 when it is gone (the state of
 * the prefix was wiped: FLUSHDB, an empty replica, a restart without
 * persistence), -1 on error. */
int redis_state_layout_present(redis_state *rs, errbuf *err);

/* Commands sent over the network (a script call counts once). */
uint64_t redis_state_commands(const redis_state *rs);
/* The server's redis_version (INFO server), for the start-up line; "?"
 * when it does not say. */
void redis_state_server_version(redis_state *rs, char *buf, size_t cap);

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
} apply_ticket;

int redis_state_apply_send(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                           int64_t new_fence, const int64_t fences[KEY_GROUPS], apply_ticket *t,
                           errbuf *err);
int redis_state_apply_recv(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                           apply_ticket *t, int64_t fences[KEY_GROUPS], errbuf *err);

/* Moves fences of groups that had nothing in [fence, next) up to next, so a
 * restart does not re-read a long range for a quiet group. Same return
 * convention as redis_state_apply_recv. */
int redis_state_advance_fences(redis_state *rs, const char *topic, int32_t partition, int64_t next,
                               int64_t fences[KEY_GROUPS], errbuf *err);

/* ---- flush side -------------------------------------------------------- */

const char *redis_state_prefix(const redis_state *rs);
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
 * returns the flushing members (a reply of type array; free with
 * freeReplyObject). Returns NULL with *stale set, moving nothing, when a
 * flush with a larger token has taken the group already: this flush must
 * give up (takes happen in token order). */
redisReply *redis_state_take_dirty(redis_state *rs, uint32_t group, int64_t token, bool *stale,
                                   errbuf *err);
/* After a committed flush: forgets the flushing sets of these groups,
 * unless a later flush has taken them since. */
int redis_state_finish_flush(redis_state *rs, const uint32_t *groups, size_t ngroups, int64_t token,
                             errbuf *err);
/* The dimension changes these groups' flushing hold (HGETALL of each
 * :dimflushing, pipelined): out[i] for groups[i], freed by the caller. */
int redis_state_read_dims(redis_state *rs, const uint32_t *groups, size_t n, redisReply **out,
                          errbuf *err);

typedef struct {
    const char *host;
    size_t host_len;
    int32_t month;    /* month_index */
    int64_t hits[31]; /* [d-1] */
    int64_t uniq[31]; /* [d-1] */
} host_month_state;

int redis_state_read_host_months(redis_state *rs, host_month_state *hm, size_t n, errbuf *err);

typedef struct {
    int64_t user_id;
    int32_t month;
    char *devices; /* "device=mask,..." or NULL; malloc'd, freed by the caller */
    size_t devices_len;
} user_month_state;

int redis_state_read_user_months(redis_state *rs, user_month_state *um, size_t n, errbuf *err);

/* Device attribute values (encoded, see device_value_encode): vals[i] is a
 * malloc'd copy or NULL for an unknown device, freed by the caller. One
 * HMGET per key group. */
int redis_state_read_devices(redis_state *rs, const int64_t *ids, size_t n, char **vals,
                             size_t *lens, errbuf *err);

/* Registers (month, user) as waiting for an unknown device (in the
 * device's key group), then reads the devices again: closes the race with
 * a device record applied meanwhile. */
int redis_state_wait_for_devices(redis_state *rs, const int64_t *device_ids, const int32_t *months,
                                 const int64_t *user_ids, size_t n, char **vals, size_t *lens,
                                 errbuf *err);

/* Members "device|YYYYMM:user" of a device group's waiting set; a reply
 * array the caller frees. */
redisReply *redis_state_waiting(redis_state *rs, uint32_t group, errbuf *err);
int redis_state_forget_waiting(redis_state *rs, uint32_t group, const char *const *members,
                               const size_t *lens, size_t n, errbuf *err);

/* Every (month, user) whose user hash mentions one of devices (int64 ids
 * as keys); one full scan for all of them, used only when devices' browsers
 * change. Calls fn for each; a non-zero return from fn stops the scan
 * with an error. */
int redis_state_users_of_devices(redis_state *rs, const bytes_map *devices,
                                 int (*fn)(void *ctx, int32_t month, int64_t user), void *ctx,
                                 errbuf *err);

#endif
