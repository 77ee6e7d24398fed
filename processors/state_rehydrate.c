/*
 * state_rehydrate.c — brings entities of an evicted month back from
 * PostgreSQL into Redis (processors/rehydrate.lua), when apply.lua asks for
 * them before it applies a late event (README "Lateness and eviction").
 *
 * PostgreSQL holds a month's full result: per host the hit array and one
 * sketch per day, per user the masks per browser and over all devices.
 * This file turns those rows into what apply.lua reads (hits per day, an
 * EXPLICIT sketch back into the exact set, a SPARSE or FULL one into a
 * HyperLogLog with the same registers, a user's value with one resolved
 * "~<hex browser>=mask" entry per browser) and writes them, fenced by the
 * month's eviction generation read before PostgreSQL was.
 */
#include "processors/state_rehydrate.h"
#include "lib/civil_time.h"
#include "lib/failpoint.h"
#include "lib/grow.h"
#include "lib/hll.h"
#include "processors/bytes_map.h"
#include "processors/key_groups.h"
#include "processors/redis_conn_impl.h"
#include "processors/state_keys.h"
#include "processors/state_read.h"

#include <time.h>

#define DAYS 32 /* day 1..31 of a month; [0] unused */

typedef struct {
    int64_t hits[DAYS];
    unsigned char *sketch[DAYS];
    size_t sketch_len[DAYS];
} host_back;

typedef struct {
    char *browsers; /* "~<hex>=mask," per user_devices_cumulated row */
    size_t len, cap;
    int64_t all; /* users_cumulated.datelist_int */
    bool have_all;
    char *entries; /* "entry=mask," per activity_user_masks row */
    size_t elen, ecap;
} user_back;

struct rehydrate_rows {
    char kind;
    size_t n;
    host_back *hosts;
    user_back *users;
};

void redis_state_set_rehydrate_reader(redis_state *rs, rehydrate_reader fn,
                                      rehydrate_device_users users, void *ctx)
{
    rs->reader = fn;
    rs->device_users = users;
    rs->reader_ctx = ctx;
}

uint64_t redis_state_rehydrations(const redis_state *rs)
{
    return rs->rehydrations;
}

static host_back *host_at(rehydrate_rows *r, size_t i, int day)
{
    return r->kind == 'h' && i < r->n && day >= 1 && day < DAYS ? &r->hosts[i] : NULL;
}

int rehydrate_rows_host_hits(rehydrate_rows *r, size_t i, int day, int64_t hits)
{
    host_back *h = host_at(r, i, day);
    if (!h)
        return -1;
    h->hits[day] = hits;
    return 0;
}

int rehydrate_rows_host_sketch(rehydrate_rows *r, size_t i, int day, const unsigned char *bytes,
                               size_t len)
{
    host_back *h = host_at(r, i, day);
    if (!h || !(h->sketch[day] = malloc(len ? len : 1)))
        return -1;
    memcpy(h->sketch[day], bytes, len);
    h->sketch_len[day] = len;
    return 0;
}

/* Appends len bytes to a growing text (*buf, *len, *cap). */
static int text_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (grow((void **)buf, cap, *len + n + 1, 1, 256))
        return -1;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* Appends len bytes to the user's browser entries. */
static int user_add(user_back *u, const char *s, size_t len)
{
    return text_add(&u->browsers, &u->len, &u->cap, s, len);
}

int rehydrate_rows_user_entry(rehydrate_rows *r, size_t i, const char *entry, size_t len,
                              int64_t mask)
{
    if (r->kind != 'u' || i >= r->n || len == 0 || memchr(entry, ',', len) ||
        memchr(entry, '=', len))
        return -1;
    user_back *u = &r->users[i];
    char tail[32];
    int n = snprintf(tail, sizeof tail, "=%lld,", (long long)mask);
    return text_add(&u->entries, &u->elen, &u->ecap, entry, len) ||
                   text_add(&u->entries, &u->elen, &u->ecap, tail, (size_t)n)
               ? -1
               : 0;
}

int rehydrate_rows_user_browser(rehydrate_rows *r, size_t i, const char *browser, size_t len,
                                int64_t mask)
{
    if (r->kind != 'u' || i >= r->n)
        return -1;
    user_back *u = &r->users[i];
    /* The browser in hex: any bytes survive the "," and "=" of the value
     * (processors/flush_plan.c decodes it). */
    static const char hex[] = "0123456789abcdef";
    if (user_add(u, browser ? "~" : "~-", browser ? 1 : 2))
        return -1;
    for (size_t k = 0; browser && k < len; k++) {
        char two[2] = {hex[(unsigned char)browser[k] >> 4], hex[(unsigned char)browser[k] & 15]};
        if (user_add(u, two, 2))
            return -1;
    }
    char tail[32];
    int n = snprintf(tail, sizeof tail, "=%lld,", (long long)mask);
    return user_add(u, tail, (size_t)n);
}

int rehydrate_rows_user_all(rehydrate_rows *r, size_t i, int64_t mask)
{
    if (r->kind != 'u' || i >= r->n)
        return -1;
    r->users[i].all = mask;
    r->users[i].have_all = true;
    return 0;
}

static void rows_free(rehydrate_rows *r)
{
    for (size_t i = 0; r->hosts && i < r->n; i++)
        for (int d = 0; d < DAYS; d++)
            free(r->hosts[i].sketch[d]);
    for (size_t i = 0; r->users && i < r->n; i++) {
        free(r->users[i].browsers);
        free(r->users[i].entries);
    }
    free(r->hosts);
    free(r->users);
}

/* The year and month of "YYYYMM". */
static void month_parts(const char *month, int *y, int *m)
{
    int ym = atoi(month);
    *y = ym / 100;
    *m = ym % 100;
}

/* The five keys every rehydrate.lua call names first. */
static int head_keys(argv_builder *ab, redis_state *rs, uint32_t g, const char *month, int nkeys)
{
    return ab_add(ab, "EVALSHA", 7) || ab_add(ab, rs->rehydrate_sha, 40) ||
           ab_addf(ab, "%d", nkeys) || key_group(ab, rs, g, KEY_EVICTED) ||
           key_group(ab, rs, g, KEY_EVGEN) || key_group(ab, rs, g, KEY_MONTHS) ||
           key_month_list(ab, rs, g, month) || key_month_rehydrated(ab, rs, g, month);
}

/* Queues the rehydrate.lua call of one host: per day with hits or a
 * sketch, its hits and its uniques as apply.lua keeps them. */
static int queue_host(redis_state *rs, uint32_t g, const char *month, const char *gen,
                      const char *host, size_t hlen, const host_back *h, uint64_t *hashes,
                      uint8_t *regs, unsigned char *dense, errbuf *err)
{
    int y, m;
    month_parts(month, &y, &m);
    int ndays = 0;
    for (int d = 1; d < DAYS; d++)
        ndays += h->hits[d] != 0 || h->sketch[d];
    argv_builder *ab = &rs->ab;
    ab_reset(ab);
    if (head_keys(ab, rs, g, month, 6 + 2 * ndays) || key_host_month(ab, rs, g, y, m, host, hlen))
        return -1;
    for (int d = 1; d < DAYS; d++)
        if ((h->hits[d] || h->sketch[d]) && key_host_day_uniques(ab, rs, g, y, m, d, host, hlen))
            return -1;
    if (ab_add(ab, month, 6) || ab_add(ab, gen, strlen(gen)) || ab_add(ab, "h", 1) ||
        ab_add(ab, host, hlen))
        return -1;
    for (int d = 1; d < DAYS; d++) {
        if (!h->hits[d] && !h->sketch[d])
            continue;
        if (ab_addf(ab, "%d", d) || ab_addf(ab, "%lld", (long long)h->hits[d]))
            return -1;
        size_t nh = 0;
        int kind = h->sketch[d]
                       ? hll_sketch_decode(h->sketch[d], h->sketch_len[d], hashes, &nh, regs)
                       : HLL_DECODED_HASHES;
        if (kind < 0) {
            err_set(err,
                    "rehydration of %s, month %s: the stored sketch of day %d is not a "
                    "postgresql-hll sketch of this configuration (log2m 14, regwidth 5)",
                    host, month, d);
            return -2;
        }
        if (kind == HLL_DECODED_REGISTERS) {
            hll_redis_dense_from_registers(regs, dense);
            if (ab_add(ab, "p", 1) || ab_add(ab, (const char *)dense, HLL_REDIS_DENSE_BYTES))
                return -1;
        } else if (nh == 0) {
            if (ab_add(ab, "-", 1))
                return -1;
        } else {
            if (ab_add(ab, "s", 1) || ab_addf(ab, "%zu", nh))
                return -1;
            for (size_t k = 0; k < nh; k++) {
                unsigned char mem[HLL_MEMBER_MAX];
                size_t len = hll_redis_member_of_hash(hashes[k], mem);
                if (ab_add(ab, (const char *)mem, len))
                    return -1;
            }
        }
    }
    return ab_send(rs, ab);
}

/* Queues the rehydrate.lua call of one user: its value as Redis held it
 * (activity_user_masks); for a month flushed before that table, its
 * browser entries, then every day under the device "null" (skipped by the
 * device join, counted in users_cumulated); or "" when PostgreSQL holds
 * nothing of it. */
static int queue_user(redis_state *rs, uint32_t g, const char *month, const char *gen,
                      const char *user, size_t ulen, const user_back *u)
{
    int y, m;
    month_parts(month, &y, &m);
    int64_t id = strtoll(user, NULL, 10);
    argv_builder *ab = &rs->ab;
    ab_reset(ab);
    if (head_keys(ab, rs, g, month, 6) ||
        key_user_hash(ab, rs, g, month_index(y, m), bucket_of_user(id)) || ab_add(ab, month, 6) ||
        ab_add(ab, gen, strlen(gen)) || ab_add(ab, "u", 1) || ab_add(ab, user, ulen))
        return -1;
    if (u->elen) {
        /* Without the last entry's comma. */
        return ab_add(ab, u->entries, u->elen - 1) || ab_send(rs, ab) ? -1 : 0;
    }
    size_t len = u->len;
    char tail[32] = "";
    if (u->have_all)
        snprintf(tail, sizeof tail, "null=%lld", (long long)u->all);
    else if (len)
        len--; /* the last entry's comma */
    /* One argument: the entries, then the all-devices mask. */
    char *v = malloc(len + strlen(tail) + 1);
    if (!v)
        return -1;
    memcpy(v, u->browsers ? u->browsers : "", len);
    memcpy(v + len, tail, strlen(tail));
    int rc = ab_add(ab, v, len + strlen(tail));
    free(v);
    return rc || ab_send(rs, ab) ? -1 : 0;
}

/* The eviction generation of month in group g ("0" when never evicted). */
static int read_generation(redis_state *rs, uint32_t g, const char *month, char gen[24],
                           errbuf *err)
{
    redisReply *r = NULL;
    ab_reset(&rs->ab);
    if (ab_add(&rs->ab, "HGET", 4) || key_group(&rs->ab, rs, g, KEY_EVGEN) ||
        ab_add(&rs->ab, month, 6) || ab_send(rs, &rs->ab) || rs_collect(rs, &r, 1, err)) {
        if (!err->msg[0])
            err_set(err, "redis: cannot read the eviction generation of %s", month);
        return -1;
    }
    snprintf(gen, 24, "%s", r->type == REDIS_REPLY_STRING ? r->str : "0");
    freeReplyObject(r);
    return 0;
}

/* Brings back the entities of one (kind, month): reads the generation,
 * then PostgreSQL, then writes each entity fenced by that generation. An
 * entity whose generation moved is simply not written: the caller's next
 * apply asks for it again. */
static int rehydrate_some(redis_state *rs, uint32_t g, char kind, const char *month,
                          const char *const *ents, const size_t *lens, size_t n, errbuf *err)
{
    if (!rs->reader) {
        err_set(err,
                "events for month %s, which was evicted, need its rows back from PostgreSQL, and "
                "this command cannot read them",
                month);
        return -1;
    }
    char gen[24];
    if (read_generation(rs, g, month, gen, err))
        return -1;
    /* A month PostgreSQL lost (restored to before its eviction) is being
     * rebuilt from the topics: its rows read now are the restored ones. */
    redisReply *lost =
        rs_command(rs, err, "SISMEMBER %s:" KEY_LOST_MONTHS " %s", rs->prefix, month);
    if (!lost)
        return -1;
    if (lost->type == REDIS_REPLY_INTEGER && lost->integer == 1) {
        int y, m;
        month_parts(month, &y, &m);
        log_warn("late events for %s, which PostgreSQL lost and the processor is rebuilding: "
                 "they are applied to the restored rows, and the rebuild may count them too; "
                 "once the lost-months error has cleared, run activity backfill --from "
                 "%04d-%02d --to %04d-%02d again (README \"Lateness and eviction\")",
                 month, y, m, m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1);
    }
    freeReplyObject(lost);
    rehydrate_rows rows = {.kind = kind, .n = n};
    int rc = -1;
    uint64_t *hashes = NULL;
    uint8_t *regs = NULL;
    unsigned char *dense = NULL;
    if (kind == 'h' ? !(rows.hosts = calloc(n, sizeof *rows.hosts))
                    : !(rows.users = calloc(n, sizeof *rows.users))) {
        err_set(err, "out of memory");
        goto out;
    }
    int y, m;
    month_parts(month, &y, &m);
    if (rs->reader(rs->reader_ctx, kind, y, m, ents, lens, n, &rows, err))
        goto out;
    failpoint("rehydrate-read");
    if (kind == 'h' &&
        (!(hashes = malloc(HLL_EXPLICIT_MAX * sizeof *hashes)) || !(regs = malloc(HLL_REGISTERS)) ||
         !(dense = malloc(HLL_REDIS_DENSE_BYTES)))) {
        err_set(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int q = kind == 'h' ? queue_host(rs, g, month, gen, ents[i], lens[i], &rows.hosts[i],
                                         hashes, regs, dense, err)
                            : queue_user(rs, g, month, gen, ents[i], lens[i], &rows.users[i]);
        if (q) {
            if (q == -1)
                err_set(err, "redis: cannot queue the rehydration of %s", month);
            /* The queued calls' replies are still due. */
            errbuf ignored = {0};
            rs_drop_replies(rs, i, &ignored);
            goto out;
        }
    }
    bool noscript = false;
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        if (rs_get_reply(rs, &r, err))
            goto out;
        if (r->type == REDIS_REPLY_INTEGER) {
            if (r->integer == 1)
                rs->rehydrations++;
            log_debug("rehydration of %c%.*s in %s, group %u: %lld", kind, (int)lens[i], ents[i],
                      month, g, (long long)r->integer);
        } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            noscript = true;
        } else {
            err_set(err, "redis: rehydration of %s failed: %s", month,
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
            rs_drop_replies(rs, n - i - 1, &(errbuf){0});
            goto out;
        }
        freeReplyObject(r);
    }
    /* Redis lost its script cache: reload; the next apply asks again. */
    if (noscript && rs_load_scripts(rs, err))
        goto out;
    failpoint("rehydrate-written");
    rc = 0;
out:
    rows_free(&rows);
    free(hashes);
    free(regs);
    free(dense);
    return rc;
}

int rs_rehydrate(redis_state *rs, uint32_t g, const redisReply *need, errbuf *err)
{
    /* {2, kind, month, entity, ...}: grouped by (kind, month), one
     * PostgreSQL read each. */
    size_t n = need->elements > 1 ? (need->elements - 1) / 3 : 0;
    const char **ents = malloc((n ? n : 1) * sizeof *ents);
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    bool *done = calloc(n ? n : 1, 1);
    int rc = ents && lens && done ? 0 : -1;
    if (rc)
        err_set(err, "out of memory");
    for (size_t s = 0; rc == 0 && s < n; s++) {
        if (done[s])
            continue;
        const redisReply *kind = need->element[1 + 3 * s], *month = need->element[2 + 3 * s];
        if (kind->type != REDIS_REPLY_STRING || month->type != REDIS_REPLY_STRING ||
            month->len != 6) {
            err_set(err, "redis: apply asked for a rehydration in an unexpected form");
            rc = -1;
            break;
        }
        size_t k = 0;
        for (size_t t = s; t < n; t++) {
            const redisReply *kt = need->element[1 + 3 * t], *mt = need->element[2 + 3 * t],
                             *et = need->element[3 + 3 * t];
            if (done[t] || kt->type != REDIS_REPLY_STRING || mt->type != REDIS_REPLY_STRING ||
                et->type != REDIS_REPLY_STRING || kt->str[0] != kind->str[0] ||
                strcmp(mt->str, month->str) != 0)
                continue;
            done[t] = true;
            ents[k] = et->str;
            lens[k++] = et->len;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t before = rs->rehydrations;
        rc = rehydrate_some(rs, g, kind->str[0], month->str, ents, lens, k, err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (rc == 0)
            log_info(
                "late events for %s, which was evicted: brought back %llu of %zu %s from "
                "PostgreSQL in %.1f ms (key group %u)",
                month->str, (unsigned long long)(rs->rehydrations - before), k,
                kind->str[0] == 'h' ? "hosts" : "users",
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6, g);
    }
    free(ents);
    free(lens);
    free(done);
    return rc;
}

/* ---- devices of evicted user months ------------------------------------ */

typedef struct {
    int64_t user;
    int32_t month;
    uint32_t group;
} evicted_user;

typedef struct {
    evicted_user *v;
    size_t n, cap;
} evicted_users;

static int collect_user(void *ctx, int64_t user, int32_t month)
{
    evicted_users *eu = ctx;
    if (GROW_ONE(eu->v, eu->n, eu->cap, 64))
        return -1;
    eu->v[eu->n++] = (evicted_user){user, month, group_of_user(user)};
    return 0;
}

static int cmp_evicted_user(const void *a, const void *b)
{
    const evicted_user *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->month != y->month)
        return x->month < y->month ? -1 : 1;
    return x->user < y->user ? -1 : x->user > y->user;
}

/* Appends the ids of a bytes_map of device ids. */
static int add_ids(const bytes_map *m, int64_t **ids, size_t *n, size_t *cap)
{
    for (size_t i = 0; m && i < m->cap; i++) {
        if (!m->slots[i].used)
            continue;
        if (grow((void **)ids, cap, *n + 1, sizeof **ids, 64))
            return -1;
        memcpy(&(*ids)[(*n)++], m->keys + m->slots[i].key_off, sizeof **ids);
    }
    return 0;
}

int redis_state_evicted_users_of_devices(redis_state *rs, const bytes_map *new_devices,
                                         const bytes_map *changed_devices,
                                         int (*fn)(void *ctx, int32_t month, int64_t user),
                                         void *ctx, errbuf *err)
{
    month_set evicted[KEY_GROUPS], held[KEY_GROUPS];
    if (redis_state_read_evicted(rs, evicted, err))
        return -1;
    int rc = -1;
    int32_t *months = NULL;
    size_t nmonths = 0, cap_months = 0;
    int64_t *ids = NULL;
    size_t nids = 0, cap_ids = 0;
    evicted_users eu = {0};
    bool held_read = false;
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        for (size_t k = 0; k < evicted[g].n; k++)
            if (rs_month_list_add(&months, &nmonths, &cap_months, evicted[g].months[k]))
                goto oom;
    if (nmonths == 0) {
        rc = 0;
        goto out;
    }
    if (!rs->device_users) {
        err_set(err, "devices of evicted months need their users from PostgreSQL, and this "
                     "command cannot read them");
        goto out;
    }
    if (add_ids(new_devices, &ids, &nids, &cap_ids) ||
        add_ids(changed_devices, &ids, &nids, &cap_ids))
        goto oom;
    if (rs->device_users(rs->reader_ctx, ids, nids, months, nmonths, collect_user, &eu, err))
        goto out;
    if (eu.n == 0) {
        rc = 0;
        goto out;
    }
    if (redis_state_read_held(rs, held, err))
        goto out;
    held_read = true;
    qsort(eu.v, eu.n, sizeof *eu.v, cmp_evicted_user);
    /* Per (group, month): an evicted one brings its users back first;
     * one Redis holds (not evicted) is re-flushed from Redis as it is. */
    const char **ents = malloc(eu.n * sizeof *ents);
    size_t *lens = malloc(eu.n * sizeof *lens);
    char(*texts)[24] = malloc(eu.n * sizeof *texts);
    if (!ents || !lens || !texts) {
        free(ents);
        free(lens);
        free(texts);
        goto oom;
    }
    rc = 0;
    for (size_t s = 0; rc == 0 && s < eu.n;) {
        size_t e = s;
        while (e < eu.n && eu.v[e].group == eu.v[s].group && eu.v[e].month == eu.v[s].month)
            e++;
        char m[8];
        rs_month_text(eu.v[s].month, m);
        uint32_t g = eu.v[s].group;
        if (month_set_has(&evicted[g], eu.v[s].month)) {
            size_t k = 0;
            for (size_t i = s; i < e; i++) {
                if (i > s && eu.v[i].user == eu.v[i - 1].user)
                    continue;
                lens[k] =
                    (size_t)snprintf(texts[k], sizeof texts[k], "%lld", (long long)eu.v[i].user);
                ents[k] = texts[k];
                k++;
            }
            log_info("devices described or changed after month %s was evicted: bringing back %zu "
                     "of its users (key group %u) to re-resolve them",
                     m, k, g);
            rc = rehydrate_some(rs, g, 'u', m, ents, lens, k, err);
        } else if (!month_set_has(&held[g], eu.v[s].month)) {
            s = e;
            continue; /* neither held nor evicted here: nothing of it in Redis */
        }
        for (size_t i = s; rc == 0 && i < e; i++)
            if (fn(ctx, eu.v[i].month, eu.v[i].user)) {
                err_set(err, "flush: out of memory");
                rc = -1;
            }
        s = e;
    }
    free(ents);
    free(lens);
    free(texts);
    goto out;
oom:
    err_set(err, "out of memory");
    rc = -1;
out:
    month_sets_free(evicted);
    if (held_read)
        month_sets_free(held);
    free(months);
    free(ids);
    free(eu.v);
    return rc;
}
