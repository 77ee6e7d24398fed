/*
 * redis_conn_impl.h — the private inside of the Redis state module, shared
 * by its four files only: processors/redis_conn.c (connection, commands,
 * scripts), processors/state_apply.c (applies, fences, the flush's
 * hand-off), processors/state_read.c (the flush's reads) and
 * processors/state_rehydrate.c (evicted entities back from PostgreSQL).
 *
 * This is the one header that names hiredis: everything else sees the
 * opaque redis_state and plain C structs (processors/redis_state.h), so
 * no caller parses a Redis reply (`make check-layers` fails otherwise).
 * The argument builder is defined here, inline, because an apply adds
 * millions of arguments and the calls must stay as cheap as they were
 * when everything lived in one file.
 */
#ifndef ACTIVITY_REDIS_CONN_IMPL_H
#define ACTIVITY_REDIS_CONN_IMPL_H

#include "processors/key_groups.h"
#include "processors/redis_conn.h"
#include "processors/state_rehydrate.h"
#include "lib/decimal.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Builds one command's argument vector in a single growable buffer. */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *off, *alen;
    size_t n, cap_n;
    char *resp; /* the command in the Redis protocol, see ab_send */
    size_t resp_cap;
} argv_builder;

/* One (user, device, month) mask of a batch, sorted into user-hash order. */
typedef struct {
    int32_t month;
    uint32_t bucket;
    int64_t user, device;
    uint32_t mask;
    bool device_null; /* written as the device "null" (redis_state.h) */
} ud_row;

struct redis_state {
    redisContext *ctx;
    char *url;
    char *prefix;
    char apply_sha[41];
    char take_sha[41];
    char read_host_sha[41];
    char finish_sha[41];
    char evict_sha[41];
    char rehydrate_sha[41];
    long exact_limit;
    int64_t lateness_ms; /* the allowed lateness (watermarks) */
    bool evict;          /* evict closed months after flushes */
    /* rehydration (processors/state_rehydrate.c) */
    rehydrate_reader reader;
    rehydrate_device_users device_users;
    void *reader_ctx;
    uint64_t rehydrations;
    bool capture;                        /* keep apply replies asking for it */
    struct redisReply *need[KEY_GROUPS]; /* ... here, per group */
    ud_row *rows;                        /* scratch for the apply (state_apply.c) */
    int32_t *months;                     /* ... and the months of one call */
    size_t months_cap;
    size_t rows_cap;
    uint64_t commands;
    argv_builder ab;
};

static inline void ab_reset(argv_builder *ab)
{
    ab->len = 0;
    ab->n = 0;
}

/* Room for len more bytes of arguments. */
static inline int ab_reserve(argv_builder *ab, size_t len)
{
    if (ab->len + len <= ab->cap)
        return 0;
    size_t nc = ab->cap ? ab->cap * 2 : 65536;
    while (nc < ab->len + len)
        nc *= 2;
    char *nb = realloc(ab->buf, nc);
    if (!nb)
        return -1;
    ab->buf = nb;
    ab->cap = nc;
    return 0;
}

static inline int ab_add(argv_builder *ab, const void *data, size_t len)
{
    if (ab->n == ab->cap_n) {
        size_t nc = ab->cap_n ? ab->cap_n * 2 : 256;
        size_t *no = realloc(ab->off, nc * sizeof *no);
        if (!no)
            return -1;
        ab->off = no;
        size_t *nl = realloc(ab->alen, nc * sizeof *nl);
        if (!nl)
            return -1;
        ab->alen = nl;
        ab->cap_n = nc;
    }
    if (ab_reserve(ab, len))
        return -1;
    memcpy(ab->buf + ab->len, data, len);
    ab->off[ab->n] = ab->len;
    ab->alen[ab->n] = len;
    ab->len += len;
    ab->n++;
    return 0;
}

static inline int ab_addf(argv_builder *ab, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int ab_addf(argv_builder *ab, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    return ab_add(ab, tmp, (size_t)n);
}

/* Decimal integers are most of an apply's arguments: formatted by hand,
 * not through printf. */
static inline int ab_add_i64(argv_builder *ab, long long v)
{
    char tmp[DECIMAL_MAX];
    size_t len;
    const char *p = decimal_i64(tmp, v, &len);
    return ab_add(ab, p, len);
}

void ab_free(argv_builder *ab);
/* Adds "<prefix>:{g}:<middle><tail bytes>" as one argument. */
int ab_add_key(argv_builder *ab, const redis_state *rs, uint32_t g, const char *middle,
               const char *tail, size_t tail_len);
/* Queues the built command on the connection (not yet sent). */
int ab_send(redis_state *rs, argv_builder *ab);

/* One reply of the pipeline; -1 with err set when the connection failed. */
int rs_get_reply(redis_state *rs, redisReply **reply, errbuf *err);
/* A command sent and its reply read; NULL with err set on an error reply. */
redisReply *rs_command(redis_state *rs, errbuf *err, const char *fmt, ...);
/* Reads n pipelined replies; fails (freeing them) if any is an error. */
int rs_collect(redis_state *rs, redisReply **out, size_t n, errbuf *err);
/* Reads and drops n pipelined acknowledgements; fails on any error. */
int rs_drop_replies(redis_state *rs, size_t n, errbuf *err);
/* (Re)loads our Lua scripts into the server's cache (after NOSCRIPT). */
int rs_load_scripts(redis_state *rs, errbuf *err);
/* Runs one of our scripts on group g's keys named by middles[], with the
 * token as its argument; reloads the scripts once on NOSCRIPT. */
redisReply *rs_group_script(redis_state *rs, const char *sha, uint32_t g,
                            const char *const *middles, int nkeys, int64_t token, errbuf *err);
/* The key group of "<prefix>:{g}:<kind>:..." (kind one letter), or -1 for
 * a key of another shape; *rest points past "<kind>:". */
int rs_key_group_of(const redis_state *rs, const char *key, size_t len, char kind,
                    const char **rest);
/* "YYYYMM" of a month_index. */
void rs_month_text(int32_t month, char out[8]);
/* Runs cmd (SMEMBERS, HGETALL) on group name's key of every group, pipelined
 * (processors/state_read.c). */
int rs_read_all_groups(redis_state *rs, const char *cmd, const char *name,
                       redisReply *out[KEY_GROUPS], errbuf *err);
void rs_free_all(redisReply *r[KEY_GROUPS]);
/* Adds month m to the list (*v, *n, *cap) unless it holds it already. */
int rs_month_list_add(int32_t **v, size_t *n, size_t *cap, int32_t m);
/* Brings back from PostgreSQL the entities an apply of group g asked for
 * (its reply {2, kind, month, entity, ...}; processors/state_rehydrate.c). */
int rs_rehydrate(redis_state *rs, uint32_t g, const redisReply *need, errbuf *err);
/* Copies the string elements of an array reply into out (others empty). */
int rs_strings_from_reply(const redisReply *r, redis_strings *out);

#endif
