/*
 * state_keys.h — the one place that spells the processor's Redis key names
 * (their list and meaning: processors/redis_state.h), beside the Lua
 * scripts that write them, which receive every key in KEYS and so never
 * build a name themselves. Private to the Redis state module
 * (redis_conn.c, state_apply.c, state_read.c): an apply and a read name
 * the same key through the same function here.
 */
#ifndef ACTIVITY_STATE_KEYS_H
#define ACTIVITY_STATE_KEYS_H

#include "processors/redis_conn_impl.h"

/* Keys of one key group, "<prefix>:{g}:<name>". */
#define KEY_FENCE "fence"
#define KEY_DIRTY "dirty"
#define KEY_FLUSHING "flushing"
#define KEY_FLUSHTOKEN "flushtoken"
#define KEY_DIM "dim"
#define KEY_DIMFLUSHING "dimflushing"
#define KEY_DEVICES "d"
#define KEY_WAITING "w"
#define KEY_WATERMARK "wm"
#define KEY_MONTHS "months"
#define KEY_EVICTED "evicted"
#define KEY_EVGEN "evgen"
#define KEY_EVICTED_AT "evictedat"

/* Keys of the whole prefix, "<prefix>:<name>". */
#define KEY_META "meta"
#define KEY_FLUSHGEN "flushgen"
#define KEY_PGTOKEN "pgtoken"
#define KEY_EPOCH "epoch"
#define KEY_LOST_MONTHS "lostmonths"

/* Per-entity keys, "<prefix>:{g}:<kind>:...": the kind letters (SCANs and
 * rs_key_group_of match them). */
#define KEY_KIND_HOST_MONTH 'h' /* h:<YYYYMM>:<host> hash day -> hits */
#define KEY_KIND_UNIQ_SET 's'   /* s:<YYYYMMDD>:<host> exact set of users (hll_redis_member) */
#define KEY_KIND_UNIQ_HLL 'p'   /* p:<YYYYMMDD>:<host> HyperLogLog of those members */
#define KEY_KIND_USER_HASH 'u'  /* u:<YYYYMM>:<bucket> hash user -> masks */

/* Adds group g's key name as one argument. */
static inline int key_group(argv_builder *ab, const redis_state *rs, uint32_t g, const char *name)
{
    return ab_add_key(ab, rs, g, name, NULL, 0);
}

/* Adds the hits hash of (host, year-month). */
static inline int key_host_month(argv_builder *ab, const redis_state *rs, uint32_t g, int y, int m,
                                 const char *host, size_t host_len)
{
    char mid[48];
    snprintf(mid, sizeof mid, "%c:%04d%02d:", KEY_KIND_HOST_MONTH, y, m);
    return ab_add_key(ab, rs, g, mid, host, host_len);
}

/* Adds both homes of a (host, day)'s unique visitors: the exact set, then
 * the HyperLogLog it is folded into past the exact limit. */
static inline int key_host_day_uniques(argv_builder *ab, const redis_state *rs, uint32_t g, int y,
                                       int m, int d, const char *host, size_t host_len)
{
    char set[48], hll[48];
    snprintf(set, sizeof set, "%c:%04d%02d%02d:", KEY_KIND_UNIQ_SET, y, m, d);
    snprintf(hll, sizeof hll, "%c:%04d%02d%02d:", KEY_KIND_UNIQ_HLL, y, m, d);
    return ab_add_key(ab, rs, g, set, host, host_len) || ab_add_key(ab, rs, g, hll, host, host_len)
               ? -1
               : 0;
}

/* Adds the user hash of (month, bucket). */
static inline int key_user_hash(argv_builder *ab, const redis_state *rs, uint32_t g, int32_t month,
                                uint32_t bucket)
{
    char text[8], mid[48];
    rs_month_text(month, text);
    snprintf(mid, sizeof mid, "%c:%s:%u", KEY_KIND_USER_HASH, text, bucket);
    return ab_add_key(ab, rs, g, mid, NULL, 0);
}

/* Adds the key list of a month (every key apply.lua wrote for it). */
static inline int key_month_list(argv_builder *ab, const redis_state *rs, uint32_t g,
                                 const char *month6)
{
    char mid[16];
    snprintf(mid, sizeof mid, "k:%.6s", month6);
    return ab_add_key(ab, rs, g, mid, NULL, 0);
}

/* Adds the set of a month's entities rehydrate.lua brought back
 * ("h<host>", "u<user>"), read by apply.lua while the month is evicted. */
static inline int key_month_rehydrated(argv_builder *ab, const redis_state *rs, uint32_t g,
                                       const char *month6)
{
    char mid[16];
    snprintf(mid, sizeof mid, "r:%.6s", month6);
    return ab_add_key(ab, rs, g, mid, NULL, 0);
}

/* "<prefix>:<name>" into buf; -1 (err set) when it does not fit. */
static inline int key_prefixed(char *buf, size_t size, const redis_state *rs, const char *name,
                               errbuf *err)
{
    int n = snprintf(buf, size, "%s:%s", rs->prefix, name);
    if (n >= 0 && (size_t)n < size)
        return 0;
    err_set(err, "redis key prefix '%s' is too long", rs->prefix);
    return -1;
}

#endif
