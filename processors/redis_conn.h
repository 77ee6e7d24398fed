/*
 * redis_conn.h — the connection of the Redis state module: connecting,
 * the eviction-policy check, and what a caller needs to know of the
 * connection (prefix, command count, server version).
 *
 * redis_state is opaque: its inside (hiredis) is private to
 * processors/redis_conn.c, state_apply.c and state_read.c
 * (processors/redis_conn_impl.h). Replies reach callers as plain values.
 */
#ifndef ACTIVITY_REDIS_CONN_H
#define ACTIVITY_REDIS_CONN_H

#include "lib/log.h"

#include <stdbool.h>
#include <stddef.h>
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

/* The users of a (host, day) are kept as an exact set up to this many, then
 * as HyperLogLog registers (12 KB); at least HLL_EXPLICIT_MAX (1280), the
 * daily sketch's EXPLICIT threshold, which is also the default. */
#define REDIS_DEFAULT_EXACT_LIMIT 1280
void redis_state_set_exact_limit(redis_state *rs, long limit);

/* The allowed lateness: a partition's watermark is its latest event time
 * minus this (README "Lateness and eviction"). */
#define REDIS_DEFAULT_LATENESS_MS (3LL * 86400 * 1000)
void redis_state_set_lateness(redis_state *rs, int64_t ms);
/* Whether flushes evict closed months (redis_state_evict_closed). */
void redis_state_set_eviction(redis_state *rs, bool on);

/* Commands sent over the network (a script call counts once). */
uint64_t redis_state_commands(const redis_state *rs);
/* The server's redis_version (INFO server), for the start-up line; "?"
 * when it does not say. */
void redis_state_server_version(redis_state *rs, char *buf, size_t cap);
const char *redis_state_prefix(const redis_state *rs);

/* Byte strings a read returned (set members, hash fields and values),
 * copied out of the reply: v[i].ptr points into buf (NUL-terminated
 * too), owned by the list. */
typedef struct {
    const char *ptr;
    size_t len;
} redis_str;

typedef struct {
    redis_str *v;
    size_t n;
    char *buf;
} redis_strings;

void redis_strings_free(redis_strings *s);

#endif
