/*
 * state_apply.c — everything that writes the processor's Redis state: the layout
 * marker, the fences, the fenced apply of a batch (processors/apply.lua), and the
 * flush's hand-off (take_dirty.lua, finish_flush.lua, flush tokens, the
 * PostgreSQL token, the epoch, marking everything dirty).
 *
 * Kept apart from the connection (redis_conn.c) and the flush's reads
 * (state_read.c); `make bench` builds this file a second time with
 * ACTIVITY_UNFENCED to price the fencing.
 */
#include "processors/state_apply.h"

#include "processors/dirty_marker.h"
#include "processors/redis_conn_impl.h"
#include "processors/state_keys.h"

#include "lib/civil_time.h"
#include "lib/failpoint.h"
#include "lib/grow.h"
#include "lib/hll.h"

#include <time.h>
#include <unistd.h>

/* ---- the layout marker ------------------------------------------------ */

/* 2: unique-visitor sets hold lib/hll.h members (preimages of the sketch's
 * hashes), not user ids. */
#define LAYOUT_VERSION "2"

int redis_state_check_layout(redis_state *rs, errbuf *err)
{
    char key[256];
    if (key_prefixed(key, sizeof key, rs, KEY_META, err))
        return -1;
    redisReply *r = rs_command(rs, err, "HSETNX %s layout %s", key, LAYOUT_VERSION);
    if (!r)
        return -1;
    freeReplyObject(r);
    if (!(r = rs_command(rs, err, "HSETNX %s key_groups %d", key, KEY_GROUPS)))
        return -1;
    freeReplyObject(r);
    if (!(r = rs_command(rs, err, "HMGET %s layout key_groups", key)))
        return -1;
    char want_groups[16];
    snprintf(want_groups, sizeof want_groups, "%d", KEY_GROUPS);
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, LAYOUT_VERSION) != 0 ||
        strcmp(r->element[1]->str, want_groups) != 0) {
        err_set(err,
                "redis key prefix '%s' holds state of another layout (want layout %s with %d "
                "key groups); rebuild it from the topics with activity backfill --reset, or "
                "use another --redis-prefix or database",
                rs->prefix, LAYOUT_VERSION, KEY_GROUPS);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int redis_state_layout_present(redis_state *rs, errbuf *err)
{
    char key[256];
    if (key_prefixed(key, sizeof key, rs, KEY_META, err))
        return -1;
    redisReply *r = rs_command(rs, err, "EXISTS %s", key);
    if (!r)
        return -1;
    int present = r->integer == 1;
    freeReplyObject(r);
    return present;
}

/* ---- fences and apply -------------------------------------------------- */

static int fence_field(char *buf, size_t size, const char *topic, int32_t partition)
{
    int n = snprintf(buf, size, "%s/%d", topic, partition);
    return (n < 0 || (size_t)n >= size) ? -1 : n;
}

int redis_state_read_fences(redis_state *rs, const char *topic, int32_t partition,
                            int64_t fences[KEY_GROUPS], errbuf *err)
{
    char field[512];
    if (fence_field(field, sizeof field, topic, partition) < 0) {
        err_set(err, "topic name too long");
        return -1;
    }
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        argv_builder *ab = &rs->ab;
        ab_reset(ab);
        if (ab_add(ab, "HGET", 4) || key_group(ab, rs, g, KEY_FENCE) ||
            ab_add(ab, field, strlen(field)) || ab_send(rs, ab)) {
            err_set(err, "redis: cannot queue fence read");
            return -1;
        }
    }
    int rc = 0;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        redisReply *r;
        if (rs_get_reply(rs, &r, err))
            return -1;
        if (r->type == REDIS_REPLY_STRING)
            fences[g] = strtoll(r->str, NULL, 10);
        else if (r->type == REDIS_REPLY_NIL)
            fences[g] = -1;
        else {
            err_set(err, "redis: unexpected fence reply: %s",
                    r->type == REDIS_REPLY_ERROR ? r->str : "not a string");
            rc = -1;
        }
        freeReplyObject(r);
    }
    return rc;
}

static int cmp_ud(const void *a, const void *b)
{
    const ud_row *x = a, *y = b;
    if (x->month != y->month)
        return x->month < y->month ? -1 : 1;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    if (x->device_null != y->device_null)
        return x->device_null ? 1 : -1;
    if (x->device != y->device)
        return x->device < y->device ? -1 : 1;
    return 0;
}

/* The user hashes of rows sorted by (month, bucket, user): the first row
 * of each run of equal (month, bucket). */
static size_t user_hash_count(const ud_row *rows, size_t n)
{
    size_t nkeys = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || rows[i].month != rows[i - 1].month || rows[i].bucket != rows[i - 1].bucket)
            nkeys++;
    return nkeys;
}

/* Adds the KEYS of the user hashes, each with its month's key list, in
 * the order of their section. */
static int add_user_keys(argv_builder *ab, const redis_state *rs, uint32_t g, const ud_row *rows,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i && rows[i].month == rows[i - 1].month && rows[i].bucket == rows[i - 1].bucket)
            continue;
        char month[8];
        rs_month_text(rows[i].month, month);
        if (key_user_hash(ab, rs, g, rows[i].month, rows[i].bucket) ||
            key_month_list(ab, rs, g, month))
            return -1;
    }
    return 0;
}

/* Appends the user-hash section: rows sorted by (month, bucket, user). */
static int add_user_section(argv_builder *ab, const ud_row *rows, size_t n)
{
    if (ab_addf(ab, "%zu", user_hash_count(rows, n)))
        return -1;
    size_t i = 0;
    while (i < n) {
        size_t kend = i;
        size_t nusers = 0;
        while (kend < n && rows[kend].month == rows[i].month &&
               rows[kend].bucket == rows[i].bucket) {
            if (kend == i || rows[kend].user != rows[kend - 1].user)
                nusers++;
            kend++;
        }
        char month[8];
        rs_month_text(rows[i].month, month);
        if (ab_add(ab, month, 6) || ab_addf(ab, "%zu", nusers))
            return -1;
        size_t u = i;
        while (u < kend) {
            size_t uend = u;
            while (uend < kend && rows[uend].user == rows[u].user)
                uend++;
            if (ab_add_i64(ab, rows[u].user) || ab_add_i64(ab, (long long)(uend - u)))
                return -1;
            for (size_t k = u; k < uend; k++)
                if ((rows[k].device_null ? ab_add(ab, "null", 4)
                                         : ab_add_i64(ab, rows[k].device)) ||
                    ab_add_i64(ab, rows[k].mask))
                    return -1;
            u = uend;
        }
        i = kend;
    }
    return 0;
}

static int add_dim_field(void *ctx, const char *field, size_t flen, const char *entries,
                         size_t elen)
{
    return ab_add(ctx, field, flen) || ab_add(ctx, entries, elen) ? -1 : 0;
}

/* `make bench` prices the fencing with a second binary, build/activity-unfenced,
 * compiled with ACTIVITY_UNFENCED: its applies send "*" as the expected fence,
 * which tells apply.lua to skip the fence check and the fence update. */
#ifdef ACTIVITY_UNFENCED
static const bool unfenced = true;
#else
static const bool unfenced = false;
#endif

/* The distinct months of group g's entries, into rs->months (*n of
 * them): apply.lua looks for evicted entities only in a call that touches
 * an evicted month, so other calls pay one lookup per month. */
static int call_months(redis_state *rs, const batch *b, uint32_t g, const ud_row *rows, size_t nu,
                       size_t *n)
{
    *n = 0;
    for (uint32_t i = b ? b->host_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->host_days[i].next) {
        civil_date d = civil_from_days(b->host_days[i].day);
        if (rs_month_list_add(&rs->months, n, &rs->months_cap, month_index(d.year, d.month)))
            return -1;
    }
    for (size_t i = 0; i < nu; i++)
        if ((i == 0 || rows[i].month != rows[i - 1].month) &&
            rs_month_list_add(&rs->months, n, &rs->months_cap, rows[i].month))
            return -1;
    return 0;
}

/* One apply.lua call: every key it touches in KEYS (Redis Cluster routes
 * by them; all share the group's hash tag), in the order apply.lua reads
 * them, then the fence check and the deltas in ARGV. */
static int build_apply(redis_state *rs, const batch *b, uint32_t g, const char *field,
                       int64_t expected, int64_t new_fence, int64_t max_event_ms, ud_row **rows,
                       size_t *rows_cap)
{
    argv_builder *ab = &rs->ab;
    size_t nh = 0;
    for (uint32_t i = b ? b->host_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->host_days[i].next)
        nh++;
    size_t nu = 0;
    for (uint32_t i = b ? b->ud_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->uds[i].next) {
        if (grow((void **)rows, rows_cap, nu + 1, sizeof **rows, 1024))
            return -1;
        const user_device_delta *ud = &b->uds[i];
        (*rows)[nu++] = (ud_row){.month = ud->month,
                                 .bucket = bucket_of_user(ud->user_id),
                                 .user = ud->user_id,
                                 .device = ud->device_id,
                                 .mask = ud->mask,
                                 .device_null = ud->device_null};
    }
    qsort(*rows, nu, sizeof **rows, cmp_ud);
    size_t nmonths;

    ab_reset(ab);
    if (ab_add(ab, "EVALSHA", 7) || ab_add(ab, rs->apply_sha, 40) ||
        call_months(rs, b, g, *rows, nu, &nmonths) ||
        ab_addf(ab, "%zu", 7 + nmonths + 4 * nh + 2 * user_hash_count(*rows, nu)) ||
        key_group(ab, rs, g, KEY_FENCE) || key_group(ab, rs, g, KEY_DIRTY) ||
        key_group(ab, rs, g, KEY_DEVICES) || key_group(ab, rs, g, KEY_DIM) ||
        key_group(ab, rs, g, KEY_WATERMARK) || key_group(ab, rs, g, KEY_MONTHS) ||
        key_group(ab, rs, g, KEY_EVICTED))
        return -1;
    /* Per month of the call: its set of rehydrated entities. */
    for (size_t k = 0; k < nmonths; k++) {
        char text[8];
        rs_month_text(rs->months[k], text);
        if (key_month_rehydrated(ab, rs, g, text))
            return -1;
    }
    /* Per host-day: its hits hash, both homes of its uniques (the exact
     * set and the HyperLogLog it is folded into) and its month's key list. */
    for (uint32_t i = b ? b->host_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->host_days[i].next) {
        const host_day_delta *hd = &b->host_days[i];
        const char *host = batch_str(b, hd->host_off);
        civil_date d = civil_from_days(hd->day);
        char month[8];
        snprintf(month, sizeof month, "%04d%02d", d.year, d.month);
        if (key_host_month(ab, rs, g, d.year, d.month, host, hd->host_len) ||
            key_host_day_uniques(ab, rs, g, d.year, d.month, d.day, host, hd->host_len) ||
            key_month_list(ab, rs, g, month))
            return -1;
    }
    if (add_user_keys(ab, rs, g, *rows, nu))
        return -1;

    if (ab_add(ab, field, strlen(field)) ||
        (unfenced ? ab_add(ab, "*", 1) : ab_addf(ab, "%lld", (long long)expected)) ||
        ab_addf(ab, "%lld", (long long)new_fence) || ab_addf(ab, "%ld", rs->exact_limit) ||
        (max_event_ms == INT64_MIN
             ? ab_add(ab, "-", 1)
             : ab_addf(ab, "%lld", (long long)(max_event_ms - rs->lateness_ms))) ||
        ab_addf(ab, "%zu", nmonths))
        return -1;
    for (size_t k = 0; k < nmonths; k++) {
        char text[8];
        rs_month_text(rs->months[k], text);
        if (ab_add(ab, text, 6))
            return -1;
    }
    if (ab_addf(ab, "%zu", nh))
        return -1;
    for (uint32_t i = b ? b->host_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->host_days[i].next) {
        const host_day_delta *hd = &b->host_days[i];
        civil_date d = civil_from_days(hd->day);
        /* Members (lib/hll.h): the 8-byte ones first, their count before them;
         * a 9-byte one (a hash setting no register, odds 2^-50) last. */
        uint32_t nreg = 0;
        unsigned char m[HLL_MEMBER_MAX];
        for (uint32_t u = hd->users_head; u != BATCH_NONE; u = b->users[u].next)
            nreg += hll_redis_member(b->users[u].user_id, m) == 8;
        if (ab_addf(ab, "%04d%02d", d.year, d.month) || ab_addf(ab, "%d", d.day) ||
            ab_add(ab, batch_str(b, hd->host_off), hd->host_len) ||
            ab_addf(ab, "%llu", (unsigned long long)hd->hits) || ab_addf(ab, "%u", hd->nusers) ||
            ab_addf(ab, "%u", nreg))
            return -1;
        for (uint32_t u = hd->users_head; u != BATCH_NONE; u = b->users[u].next)
            if (hll_redis_member(b->users[u].user_id, m) == 8 && ab_add(ab, m, 8))
                return -1;
        if (nreg < hd->nusers)
            for (uint32_t u = hd->users_head; u != BATCH_NONE; u = b->users[u].next)
                if (hll_redis_member(b->users[u].user_id, m) == 9 && ab_add(ab, m, 9))
                    return -1;
    }
    if (add_user_section(ab, *rows, nu))
        return -1;

    size_t nd = 0;
    for (uint32_t i = b ? b->dev_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->devices[i].next)
        nd++;
    if (ab_addf(ab, "%zu", nd))
        return -1;
    for (uint32_t i = b ? b->dev_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->devices[i].next) {
        const device_delta *dv = &b->devices[i];
        if (ab_addf(ab, "%lld", (long long)dv->device_id) ||
            ab_add(ab, batch_str(b, dv->value_off), dv->value_len))
            return -1;
    }

    /* Dimension changes: per entity its buffer field and sorted entries. */
    if (ab_addf(ab, "%zu", batch_dim_entity_count(b, g)) ||
        (b && batch_dim_fields(b, g, add_dim_field, ab)))
        return -1;
    return 0;
}

/* Sends the apply script for each group selected in want[], reads the
 * replies. NOSCRIPT (Redis restarted and lost its script cache) reloads
 * the scripts and retries those groups once. */
/* Queues the apply script for each group selected in want[] with the
 * expected fences, and pushes the pipeline onto the socket. */
static int send_apply(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                      int64_t new_fence, int64_t max_event_ms, const int64_t fences[KEY_GROUPS],
                      const bool want[KEY_GROUPS], apply_ticket *t, errbuf *err)
{
    char field[512];
    if (fence_field(field, sizeof field, topic, partition) < 0) {
        err_set(err, "topic name too long");
        return -1;
    }
    t->n = 0;
    memset(t->rehydrate, 0, sizeof t->rehydrate);
    t->new_fence = new_fence;
    t->max_event_ms = max_event_ms;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        if (!want[g])
            continue;
        if (build_apply(rs, b, g, field, fences[g], new_fence, max_event_ms, &rs->rows,
                        &rs->rows_cap) ||
            ab_send(rs, &rs->ab)) {
            err_set(err, "redis: cannot queue the apply of group %u", g);
            return -1;
        }
        t->groups[t->n] = g;
        t->expected[t->n++] = fences[g];
    }
    /* Push the pipeline onto the socket now: Redis works on it while the
     * caller prepares the next batch, and a crash at the failpoint leaves
     * Redis holding applies whose replies nobody read. */
    int done = 0;
    while (!done && redisBufferWrite(rs->ctx, &done) == REDIS_OK)
        ;
    if (rs->ctx->err) {
        err_set(err, "redis: %s", rs->ctx->errstr);
        return -1;
    }
    if (b)
        failpoint("apply-sent");
    return 0;
}

/* Reads the replies of a send_apply. A NOSCRIPT (Redis restarted and lost
 * its script cache) reloads the scripts and sends those groups again. */
static int recv_apply(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                      apply_ticket *t, int64_t fences[KEY_GROUPS], errbuf *err)
{
    int result = 0;
    bool again[KEY_GROUPS] = {false}, noscript = false, rehydrate = false;
    int64_t expected[KEY_GROUPS];
    for (size_t k = 0; k < t->n; k++) {
        uint32_t g = t->groups[k];
        redisReply *r;
        if (rs_get_reply(rs, &r, err))
            return -1;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            noscript = again[g] = true;
            expected[g] = t->expected[k];
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                   r->element[0]->type == REDIS_REPLY_INTEGER) {
            if (r->element[0]->integer == 1) {
                fences[g] = t->new_fence;
            } else if (r->element[0]->integer == 2) {
                /* Entities of evicted months first (nothing written):
                 * redis_state_apply_rehydrating brings them back. */
                rehydrate = t->rehydrate[g] = true;
                if (rs->capture) {
                    rs->need[g] = r;
                    r = NULL;
                }
            } else {
                fences[g] = (r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING)
                                ? strtoll(r->element[1]->str, NULL, 10)
                                : -1;
                result = 1;
            }
        } else {
            err_set(err, "redis: apply of group %u failed: %s", g,
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            result = -1;
        }
        if (r)
            freeReplyObject(r);
    }
    if (result == 0 && rehydrate)
        result = REDIS_APPLY_REHYDRATE;
    if (result >= 0 && noscript) {
        if (rs_load_scripts(rs, err))
            return -1;
        apply_ticket retry;
        int r = send_apply(rs, b, topic, partition, t->new_fence, t->max_event_ms, expected, again,
                           &retry, err);
        if (r == 0) {
            r = recv_apply(rs, b, topic, partition, &retry, fences, err);
            /* A second NOSCRIPT right after loading them is an error. */
        }
        if (r < 0 || r == 1 || (r == REDIS_APPLY_REHYDRATE && result == 0))
            result = r;
        for (uint32_t g = 0; g < KEY_GROUPS; g++)
            t->rehydrate[g] |= retry.rehydrate[g];
    }
    if (b && result == 0)
        failpoint("apply-done");
    return result;
}

static int run_apply(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                     int64_t new_fence, int64_t max_event_ms, int64_t fences[KEY_GROUPS],
                     const bool want[KEY_GROUPS], errbuf *err)
{
    apply_ticket t;
    if (send_apply(rs, b, topic, partition, new_fence, max_event_ms, fences, want, &t, err))
        return -1;
    return recv_apply(rs, b, topic, partition, &t, fences, err);
}

int redis_state_apply_send(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                           int64_t new_fence, const int64_t fences[KEY_GROUPS], apply_ticket *t,
                           errbuf *err)
{
    bool want[KEY_GROUPS];
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        want[g] = !batch_group_empty(b, g);
    return send_apply(rs, b, topic, partition, new_fence, b->max_event_ms, fences, want, t, err);
}

int redis_state_apply_recv(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                           apply_ticket *t, int64_t fences[KEY_GROUPS], errbuf *err)
{
    return recv_apply(rs, b, topic, partition, t, fences, err);
}

int redis_state_apply_rehydrating(redis_state *rs, const batch *b, const char *topic,
                                  int32_t partition, apply_ticket *t, int64_t fences[KEY_GROUPS],
                                  errbuf *err)
{
    bool want[KEY_GROUPS];
    int64_t expected[KEY_GROUPS];
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        want[g] = false;
    for (size_t k = 0; k < t->n; k++) {
        want[t->groups[k]] = t->rehydrate[t->groups[k]];
        expected[t->groups[k]] = t->expected[k];
    }
    /* Each round asks again (the apply names what is still missing),
     * brings that back, and applies; a round without progress is one where
     * another instance evicted the month again in between. */
    for (int round = 0; round < 16; round++) {
        apply_ticket again;
        rs->capture = true;
        int r = send_apply(rs, b, topic, partition, t->new_fence, t->max_event_ms, expected, want,
                           &again, err);
        if (r == 0)
            r = recv_apply(rs, b, topic, partition, &again, fences, err);
        rs->capture = false;
        for (uint32_t g = 0; g < KEY_GROUPS; g++) {
            if (r == REDIS_APPLY_REHYDRATE && rs->need[g] && rs_rehydrate(rs, g, rs->need[g], err))
                r = -1;
            if (rs->need[g])
                freeReplyObject(rs->need[g]);
            rs->need[g] = NULL;
            want[g] = again.rehydrate[g];
        }
        if (r != REDIS_APPLY_REHYDRATE)
            return r;
    }
    err_set(err, "rehydration of evicted months for %s [%d] did not settle in 16 rounds", topic,
            partition);
    return -1;
}

int redis_state_advance_fences(redis_state *rs, const char *topic, int32_t partition, int64_t next,
                               int64_t fences[KEY_GROUPS], errbuf *err)
{
    return redis_state_advance_fences_wm(rs, topic, partition, next, INT64_MIN, fences, err);
}

int redis_state_advance_fences_wm(redis_state *rs, const char *topic, int32_t partition,
                                  int64_t next, int64_t max_event_ms, int64_t fences[KEY_GROUPS],
                                  errbuf *err)
{
    bool want[KEY_GROUPS], any = false;
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        any |= want[g] = fences[g] < next;
    if (!any)
        return 0;
    return run_apply(rs, NULL, topic, partition, next, max_event_ms, fences, want, err);
}

/* ---- flush side -------------------------------------------------------- */

int redis_state_flush_token(redis_state *rs, int64_t *token, errbuf *err)
{
    char key[256];
    if (key_prefixed(key, sizeof key, rs, KEY_FLUSHGEN, err))
        return -1;
    redisReply *r = rs_command(rs, err, "INCR %s", key);
    if (!r)
        return -1;
    *token = r->integer;
    freeReplyObject(r);
    return 0;
}

int redis_state_raise_flush_token(redis_state *rs, int64_t at_least, errbuf *err)
{
    char key[256];
    if (key_prefixed(key, sizeof key, rs, KEY_FLUSHGEN, err))
        return -1;
    redisReply *r = rs_command(rs, err, "EVAL %s 1 %s %lld",
                               "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) "
                               "then redis.call('SET', KEYS[1], ARGV[1]) end return 1",
                               key, (long long)at_least);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* Runs one of our scripts on group g's keys named by middles[], with the
 * token as its argument; reloads the scripts once on NOSCRIPT. */
int redis_state_take_dirty(redis_state *rs, uint32_t g, int64_t token, redis_strings *members,
                           bool *stale, errbuf *err)
{
    static const char *const keys[5] = {KEY_DIRTY, KEY_FLUSHING, KEY_FLUSHTOKEN, KEY_DIM,
                                        KEY_DIMFLUSHING};
    *stale = false;
    memset(members, 0, sizeof *members);
    redisReply *r = rs_group_script(rs, rs->take_sha, g, keys, 5, token, err);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER) {
        err_set(err, "flush token %lld is older than %lld, which took group %u already",
                (long long)token, (long long)r->integer, g);
        *stale = true;
        rc = -1;
    } else if (r->type != REDIS_REPLY_ARRAY) {
        err_set(err, "redis: take-dirty of group %u: unexpected reply", g);
        rc = -1;
    } else if (rs_strings_from_reply(r, members)) {
        err_set(err, "out of memory");
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Reads n pipelined replies; fails (freeing them) if any is an error. */
int redis_state_pg_token(redis_state *rs, int64_t *token, errbuf *err)
{
    redisReply *r = rs_command(rs, err, "GET %s:" KEY_PGTOKEN, rs->prefix);
    if (!r)
        return -1;
    *token = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return 0;
}

int redis_state_epoch(redis_state *rs, int64_t *epoch, bool bump, errbuf *err)
{
    redisReply *r;
    if (bump) {
        /* A new value unlike any before, not a counter: a wipe of Redis
         * would restart a counter at values instances have seen. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *epoch = ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000) * 1000 + getpid() % 1000;
        r = rs_command(rs, err, "SET %s:" KEY_EPOCH " %lld", rs->prefix, (long long)*epoch);
    } else {
        r = rs_command(rs, err, "GET %s:" KEY_EPOCH, rs->prefix);
        if (r)
            *epoch = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    }
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

int redis_state_set_pg_token(redis_state *rs, int64_t token, bool raise_only, errbuf *err)
{
    redisReply *r =
        raise_only
            ? rs_command(rs, err, "EVAL %s 1 %s:" KEY_PGTOKEN " %lld",
                         "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) "
                         "then redis.call('SET', KEYS[1], ARGV[1]) end return 1",
                         rs->prefix, (long long)token)
            : rs_command(rs, err, "SET %s:" KEY_PGTOKEN " %lld", rs->prefix, (long long)token);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* The key group of "<prefix>:{g}:<kind>:..." (kind one letter), or -1 for
 * a key of another shape; *rest points past "<kind>:". */
static const char mark_users_lua[] =
    "local f = redis.call('HKEYS', KEYS[1]) "
    "for i = 1, #f, 1000 do local m = {} "
    "for j = i, math.min(i + 999, #f) do m[#m + 1] = ARGV[1] .. f[j] end "
    "redis.call('SADD', KEYS[2], unpack(m)) end return #f";

int redis_state_mark_all_dirty(redis_state *rs, size_t *hosts, size_t *users, errbuf *err)
{
    *hosts = *users = 0;
    char cursor[32] = "0", pattern[300];
    /* hiredis' format takes no %c: the pattern is made here. */
    snprintf(pattern, sizeof pattern, "%s:{*}:[%c%c]:*", rs->prefix, KEY_KIND_HOST_MONTH,
             KEY_KIND_USER_HASH);
    do {
        redisReply *r = rs_command(rs, err, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r)
            return -1;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        size_t sent = 0;
        for (size_t k = 0; k < keys->elements; k++) {
            const char *key = keys->element[k]->str, *rest;
            size_t len = keys->element[k]->len;
            int g = rs_key_group_of(rs, key, len, KEY_KIND_HOST_MONTH, &rest);
            bool user =
                g < 0 && (g = rs_key_group_of(rs, key, len, KEY_KIND_USER_HASH, &rest)) >= 0;
            if (g < 0 || (size_t)(key + len - rest) < 7)
                continue;
            ab_reset(&rs->ab);
            int bad = 0;
            if (user) {
                /* ARGV[1] = "u<YYYYMM>:" */
                char head[16];
                snprintf(head, sizeof head, "%c%.6s:", DIRTY_TAG_USER, rest);
                bad = ab_add(&rs->ab, "EVAL", 4) ||
                      ab_add(&rs->ab, mark_users_lua, sizeof mark_users_lua - 1) ||
                      ab_add(&rs->ab, "2", 1) || ab_add(&rs->ab, key, len) ||
                      key_group(&rs->ab, rs, (uint32_t)g, KEY_DIRTY) ||
                      ab_add(&rs->ab, head, strlen(head));
            } else {
                /* The member is "h" followed by the key's "<YYYYMM>:<host>". */
                size_t tail = (size_t)(key + len - rest);
                char *member = malloc(tail + 1);
                if (member) {
                    member[0] = DIRTY_TAG_HOST;
                    memcpy(member + 1, rest, tail);
                }
                bad = !member || ab_add(&rs->ab, "SADD", 4) ||
                      key_group(&rs->ab, rs, (uint32_t)g, KEY_DIRTY) ||
                      ab_add(&rs->ab, member, tail + 1);
                free(member);
            }
            if (bad || ab_send(rs, &rs->ab)) {
                freeReplyObject(r);
                err_set(err, "redis: cannot queue a dirty mark");
                return -1;
            }
            sent++;
            if (user)
                ++*users;
            else
                ++*hosts;
        }
        freeReplyObject(r);
        if (rs_drop_replies(rs, sent, err))
            return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int redis_state_forget_fences(redis_state *rs, const char *topic, errbuf *err)
{
    static const char lua[] =
        "local n = 0 for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do "
        "if string.sub(f, 1, #ARGV[1]) == ARGV[1] and string.match(string.sub(f, #ARGV[1] + 1), "
        "'^%d+$') then n = n + redis.call('HDEL', KEYS[1], f) end end return n";
    char field[512];
    int fl = snprintf(field, sizeof field, "%s/", topic);
    if (fl < 0 || (size_t)fl >= sizeof field) {
        err_set(err, "topic name too long");
        return -1;
    }
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        ab_reset(&rs->ab);
        if (ab_add(&rs->ab, "EVAL", 4) || ab_add(&rs->ab, lua, sizeof lua - 1) ||
            ab_add(&rs->ab, "1", 1) || key_group(&rs->ab, rs, g, KEY_FENCE) ||
            ab_add(&rs->ab, field, (size_t)fl) || ab_send(rs, &rs->ab)) {
            err_set(err, "redis: cannot queue a fence reset");
            return -1;
        }
    }
    return rs_drop_replies(rs, KEY_GROUPS, err);
}

int redis_state_finish_flush(redis_state *rs, const uint32_t *groups, size_t n, int64_t token,
                             errbuf *err)
{
    static const char *const keys[3] = {KEY_FLUSHING, KEY_FLUSHTOKEN, KEY_DIMFLUSHING};
    for (size_t i = 0; i < n; i++) {
        redisReply *r = rs_group_script(rs, rs->finish_sha, groups[i], keys, 3, token, err);
        if (!r)
            return -1;
        freeReplyObject(r);
    }
    return 0;
}

/* ---- eviction of closed months ----------------------------------------- */

/* Queues "<cmd> <group key>" for every group and collects the replies. */
/* The time before which every month is closed (epoch ms), or INT64_MIN:
 * the lowest watermark over the partitions that carried events, each
 * partition's being the lowest over the key groups (a group's watermark
 * covers the batches up to its fence, so a group behind after a crash
 * holds the month open until it has applied them again). A partition
 * some group has no watermark of yet counts as none. */
static int closed_before(redis_state *rs, int64_t *before, errbuf *err)
{
    redisReply *wm[KEY_GROUPS];
    if (rs_read_all_groups(rs, "HGETALL", KEY_WATERMARK, wm, err))
        return -1;
    *before = INT64_MIN;
    bool any = false;
    int64_t low = INT64_MAX;
    /* Every partition appears in group 0's hash once all groups have
     * it: walk group 0's fields and look each up in the others. */
    for (size_t f = 0; wm[0]->type == REDIS_REPLY_ARRAY && f + 1 < wm[0]->elements; f += 2) {
        const char *field = wm[0]->element[f]->str;
        int64_t part = INT64_MAX;
        for (uint32_t g = 0; g < KEY_GROUPS && part != INT64_MIN; g++) {
            bool found = false;
            for (size_t k = 0; wm[g]->type == REDIS_REPLY_ARRAY && k + 1 < wm[g]->elements; k += 2)
                if (strcmp(wm[g]->element[k]->str, field) == 0) {
                    int64_t v = strtoll(wm[g]->element[k + 1]->str, NULL, 10);
                    if (v < part)
                        part = v;
                    found = true;
                    break;
                }
            if (!found)
                part = INT64_MIN;
        }
        any = true;
        if (part < low)
            low = part;
    }
    /* A partition group 0 lacks but another group has holds closure too. */
    for (uint32_t g = 1; g < KEY_GROUPS; g++)
        if (wm[g]->type == REDIS_REPLY_ARRAY && wm[0]->type == REDIS_REPLY_ARRAY &&
            wm[g]->elements > wm[0]->elements)
            low = INT64_MIN;
    rs_free_all(wm);
    if (any)
        *before = low;
    return 0;
}

/* Forgets, in every group's waiting set, the users of the closed months
 * about to be evicted ("<device>|<YYYYMM>:<user>"): a device first seen
 * after its users' month was evicted does not reopen it (README "Lateness
 * and eviction"). Done before the evictions: a crash in between leaves a
 * month whose rows simply lack that device, never a waiting entry naming
 * state that is gone (which a flush would take for lost state). */
static const char forget_waiting_lua[] =
    "local gone = {} for i = 1, #ARGV do gone[ARGV[i]] = true end "
    "local out = {} for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "local ym = string.match(m, '|(%d%d%d%d%d%d):') "
    "if ym and gone[ym] then out[#out + 1] = m end end "
    "for j = 1, #out, 1000 do redis.call('SREM', KEYS[1], unpack(out, j, math.min(j + 999, #out))) "
    "end return #out";

static int forget_waiting(redis_state *rs, char (*closed)[8], size_t n, errbuf *err)
{
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        ab_reset(&rs->ab);
        int bad = ab_add(&rs->ab, "EVAL", 4) ||
                  ab_add(&rs->ab, forget_waiting_lua, sizeof forget_waiting_lua - 1) ||
                  ab_add(&rs->ab, "1", 1) || key_group(&rs->ab, rs, g, KEY_WAITING);
        for (size_t i = 0; !bad && i < n; i++)
            bad = ab_add(&rs->ab, closed[i], 6);
        if (bad || ab_send(rs, &rs->ab)) {
            err_set(err, "redis: cannot queue the waiting entries' clean-up");
            return -1;
        }
    }
    return rs_drop_replies(rs, KEY_GROUPS, err);
}

/* Whether month "YYYYMM" ends at or before `before` (epoch ms). */
static bool month_closed(const char *m, int64_t before)
{
    long ym = strtol(m, NULL, 10);
    int y = (int)(ym / 100), mo = (int)(ym % 100);
    /* The month's end: the first day of the next month, 00:00 UTC. */
    int64_t end = days_from_civil(mo == 12 ? y + 1 : y, mo == 12 ? 1 : mo + 1, 1) * 86400000LL;
    return end <= before;
}

int redis_state_evict_closed(redis_state *rs, size_t *evicted, errbuf *err)
{
    *evicted = 0;
    if (!rs->evict)
        return 0;
    int64_t before;
    if (closed_before(rs, &before, err))
        return -1;
    log_debug("eviction: months ending at or before %lld ms are closed", (long long)before);
    if (before == INT64_MIN)
        return 0;
    /* Every eviction records this token: PostgreSQL holds the month's
     * final state from it on (redis_state_record_lost_months). */
    int64_t committed;
    if (redis_state_pg_token(rs, &committed, err))
        return -1;
    redisReply *months[KEY_GROUPS];
    if (rs_read_all_groups(rs, "SMEMBERS", KEY_MONTHS, months, err))
        return -1;
    /* The closed months any group holds (a few: those since the last
     * eviction). */
    char closed[64][8];
    size_t nclosed = 0;
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        for (size_t k = 0; months[g]->type == REDIS_REPLY_ARRAY && k < months[g]->elements; k++) {
            const char *m = months[g]->element[k]->str;
            bool seen = false;
            for (size_t i = 0; i < nclosed; i++)
                seen |= strcmp(closed[i], m) == 0;
            if (!seen && months[g]->element[k]->len == 6 && month_closed(m, before) && nclosed < 64)
                snprintf(closed[nclosed++], sizeof closed[0], "%s", m);
        }
    int rc = 0;
    if (nclosed) {
        rc = forget_waiting(rs, closed, nclosed, err);
        failpoint("evict-waiting-forgotten");
    }
    for (uint32_t g = 0; g < KEY_GROUPS && rc == 0; g++) {
        for (size_t k = 0; months[g]->type == REDIS_REPLY_ARRAY && k < months[g]->elements; k++) {
            const char *m = months[g]->element[k]->str;
            /* Only the months whose waiting entries were forgotten (at most
             * 64 per round; the rest go at the next flush). */
            bool listed = false;
            for (size_t i = 0; i < nclosed; i++)
                listed |= strcmp(closed[i], m) == 0;
            if (!listed)
                continue;
            /* The month's key list, then the eviction naming them all. */
            ab_reset(&rs->ab);
            redisReply *list = NULL;
            if (ab_add(&rs->ab, "SMEMBERS", 8) || key_month_list(&rs->ab, rs, g, m) ||
                ab_send(rs, &rs->ab) || rs_collect(rs, &list, 1, err)) {
                if (!err->msg[0])
                    err_set(err, "redis: cannot read the key list of %s", m);
                rc = -1;
                break;
            }
            failpoint("evict-before");
            ab_reset(&rs->ab);
            int bad =
                ab_add(&rs->ab, "EVALSHA", 7) || ab_add(&rs->ab, rs->evict_sha, 40) ||
                ab_addf(&rs->ab, "%zu", 7 + list->elements) ||
                key_group(&rs->ab, rs, g, KEY_DIRTY) || key_group(&rs->ab, rs, g, KEY_FLUSHING) ||
                key_group(&rs->ab, rs, g, KEY_MONTHS) || key_group(&rs->ab, rs, g, KEY_EVICTED) ||
                key_month_list(&rs->ab, rs, g, m) || key_group(&rs->ab, rs, g, KEY_EVGEN) ||
                key_group(&rs->ab, rs, g, KEY_EVICTED_AT);
            for (size_t e = 0; !bad && e < list->elements; e++)
                bad = ab_add(&rs->ab, list->element[e]->str, list->element[e]->len);
            freeReplyObject(list);
            redisReply *r = NULL;
            if (bad || ab_add(&rs->ab, m, 6) || ab_addf(&rs->ab, "%lld", (long long)committed) ||
                ab_send(rs, &rs->ab) || rs_collect(rs, &r, 1, err)) {
                if (!err->msg[0])
                    err_set(err, "redis: cannot evict month %s of group %u", m, g);
                /* Redis lost its script cache: reload; the next flush evicts. */
                rc = strstr(err->msg, "NOSCRIPT") && rs_load_scripts(rs, err) == 0 ? 0 : -1;
                goto done;
            }
            log_debug("eviction of %s in group %u: %lld", m, g,
                      r->type == REDIS_REPLY_INTEGER ? (long long)r->integer : -2LL);
            if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
                ++*evicted;
                failpoint("evict-after");
            }
            freeReplyObject(r);
        }
    }
done:
    rs_free_all(months);
    return rc;
}

int redis_state_record_lost_months(redis_state *rs, int64_t held, size_t *n, errbuf *err)
{
    *n = 0;
    redisReply *ev[KEY_GROUPS], *at[KEY_GROUPS];
    if (rs_read_all_groups(rs, "SMEMBERS", KEY_EVICTED, ev, err))
        return -1;
    if (rs_read_all_groups(rs, "HGETALL", KEY_EVICTED_AT, at, err)) {
        rs_free_all(ev);
        return -1;
    }
    int rc = 0;
    for (uint32_t g = 0; g < KEY_GROUPS && rc == 0; g++)
        for (size_t k = 0; ev[g]->type == REDIS_REPLY_ARRAY && k < ev[g]->elements; k++) {
            const char *m = ev[g]->element[k]->str;
            bool lost = true; /* no record: evicted before records existed */
            for (size_t f = 0; at[g]->type == REDIS_REPLY_ARRAY && f + 1 < at[g]->elements; f += 2)
                if (strcmp(at[g]->element[f]->str, m) == 0)
                    lost = strtoll(at[g]->element[f + 1]->str, NULL, 10) > held;
            if (!lost)
                continue;
            redisReply *r = rs_command(rs, err, "SADD %s:" KEY_LOST_MONTHS " %s", rs->prefix, m);
            if (!r) {
                rc = -1;
                break;
            }
            if (r->type == REDIS_REPLY_INTEGER)
                *n += (size_t)r->integer;
            freeReplyObject(r);
        }
    rs_free_all(ev);
    rs_free_all(at);
    return rc;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int redis_state_lost_months(redis_state *rs, int32_t **months, size_t *n, errbuf *err)
{
    *months = NULL;
    *n = 0;
    redisReply *r = rs_command(rs, err, "SMEMBERS %s:" KEY_LOST_MONTHS, rs->prefix);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        if (!(*months = malloc(r->elements * sizeof **months))) {
            freeReplyObject(r);
            err_set(err, "out of memory");
            return -1;
        }
        for (size_t k = 0; k < r->elements; k++)
            if (r->element[k]->str)
                (*months)[(*n)++] = (int32_t)strtol(r->element[k]->str, NULL, 10);
        qsort(*months, *n, sizeof **months, cmp_i32);
    }
    freeReplyObject(r);
    return 0;
}

int redis_state_forget_lost_months(redis_state *rs, int32_t from_ym, int32_t to_ym, size_t *n,
                                   errbuf *err)
{
    *n = 0;
    int32_t *months;
    size_t count;
    if (redis_state_lost_months(rs, &months, &count, err))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (months[i] < from_ym || months[i] >= to_ym)
            continue;
        redisReply *r =
            rs_command(rs, err, "SREM %s:" KEY_LOST_MONTHS " %06d", rs->prefix, (int)months[i]);
        if (!r)
            rc = -1;
        else
            ++*n;
        freeReplyObject(r);
    }
    free(months);
    return rc;
}

int redis_state_claim(redis_state *rs, const char *name, int ttl_ms, bool refresh, bool *got,
                      errbuf *err)
{
    static const char mine_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
                                   "if ARGV[2] == '0' then return redis.call('DEL', KEYS[1]) end "
                                   "return redis.call('PEXPIRE', KEYS[1], ARGV[2])";
    char owner[300];
    gethostname(owner, 256);
    owner[255] = '\0';
    snprintf(owner + strlen(owner), sizeof owner - strlen(owner), ":%ld", (long)getpid());
    redisReply *r;
    if (ttl_ms == 0 || refresh)
        r = rs_command(rs, err, "EVAL %s 1 %s:%s %s %d", mine_lua, rs->prefix, name, owner, ttl_ms);
    else
        r = rs_command(rs, err, "SET %s:%s %s NX PX %d", rs->prefix, name, owner, ttl_ms);
    if (!r)
        return -1;
    if (got)
        *got = r->type == REDIS_REPLY_STATUS || (r->type == REDIS_REPLY_INTEGER && r->integer);
    freeReplyObject(r);
    return 0;
}
