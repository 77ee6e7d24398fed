/*
 * state_read.c — the reads a flush makes of the processor's Redis state:
 * the dimension buffers a flush took, each dirty (host, month) through
 * processors/read_host.lua, the user months' device masks, the devices,
 * and the waiting sets of users on a device not yet described. Reads are
 * pipelined: one round trip per kind of read, not per entity.
 *
 * Replies are copied into plain C values (processors/redis_state.h), so
 * no caller sees hiredis.
 */
#include "processors/state_read.h"

#include "processors/dirty_marker.h"
#include "processors/key_groups.h"
#include "processors/redis_conn_impl.h"
#include "processors/state_keys.h"

#include "lib/civil_time.h"
#include "lib/grow.h"
#include "lib/hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int redis_state_read_dims(redis_state *rs, const uint32_t *groups, size_t n, redis_strings *out,
                          errbuf *err)
{
    redisReply *r[KEY_GROUPS];
    if (n > KEY_GROUPS) {
        err_set(err, "flush: %zu dimension groups, more than the %d key groups", n, KEY_GROUPS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        ab_reset(&rs->ab);
        if (ab_add(&rs->ab, "HGETALL", 7) || key_group(&rs->ab, rs, groups[i], KEY_DIMFLUSHING) ||
            ab_send(rs, &rs->ab)) {
            err_set(err, "redis: cannot queue a dimension read");
            return -1;
        }
    }
    if (rs_collect(rs, r, n, err))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && rs_strings_from_reply(r[i], &out[i])) {
            err_set(err, "out of memory");
            rc = -1;
        }
        freeReplyObject(r[i]);
    }
    if (rc)
        for (size_t i = 0; i < n; i++)
            redis_strings_free(&out[i]);
    return rc;
}

void host_days_release(host_days *days)
{
    for (int d = 0; d < 31; d++) {
        free(days->sketch[d]);
        days->sketch[d] = NULL;
        days->sketch_len[d] = 0;
    }
}

/* The day's sketch from what read_host.lua returned for it (kind 's': the
 * exact set's members, 'p': the HyperLogLog string, 'n': no users), and
 * its rounded cardinality (PostgreSQL's round(): half to even, as rint). */
static int day_sketch(const host_row *hm, host_days *days, int day, const redisReply *kind,
                      const redisReply *data, errbuf *err)
{
    static _Thread_local hll_sketch sk;
    static _Thread_local uint8_t regs[HLL_REGISTERS];
    const char k = kind->type == REDIS_REPLY_STRING && kind->len == 1 ? kind->str[0] : '?';
    if (k == 's' && data->type == REDIS_REPLY_ARRAY) {
        uint64_t *h = malloc((data->elements ? data->elements : 1) * sizeof *h);
        if (!h) {
            err_set(err, "out of memory for the sketch of %.*s day %d", (int)hm->host_len, hm->host,
                    day);
            return -1;
        }
        for (size_t j = 0; j < data->elements; j++)
            if (data->element[j]->type != REDIS_REPLY_STRING ||
                hll_redis_member_hash(data->element[j]->str, data->element[j]->len, &h[j])) {
                free(h);
                err_set(err, "redis: a member of the users of %.*s day %d is not of this layout",
                        (int)hm->host_len, hm->host, day);
                return -1;
            }
        hll_from_hashes(h, data->elements, &sk);
        free(h);
    } else if (k == 'p' && data->type == REDIS_REPLY_STRING) {
        if (hll_registers_from_redis((const unsigned char *)data->str, data->len, regs)) {
            err_set(err, "redis: the HyperLogLog of %.*s day %d is not one", (int)hm->host_len,
                    hm->host, day);
            return -1;
        }
        hll_from_registers(regs, &sk);
    } else if (k == 'n') {
        hll_from_hashes(NULL, 0, &sk);
    } else {
        err_set(err, "redis: unexpected reply for the users of %.*s day %d", (int)hm->host_len,
                hm->host, day);
        return -1;
    }
    if (!(days->sketch[day - 1] = malloc(sk.len))) {
        err_set(err, "out of memory for the sketch of %.*s day %d", (int)hm->host_len, hm->host,
                day);
        return -1;
    }
    memcpy(days->sketch[day - 1], sk.bytes, sk.len);
    days->sketch_len[day - 1] = sk.len;
    days->uniq[day - 1] = (int64_t)rint(sk.cardinality);
    return 0;
}

/* One read_host.lua call per (host, month), naming every key it may read:
 * the hits hash and, per day of the month, the exact set and the
 * HyperLogLog of its uniques. On NOSCRIPT (Redis restarted
 * and lost its script cache) the scripts are reloaded and the flush fails
 * this time; the next attempt succeeds. */
int redis_state_read_host_months(redis_state *rs, host_row *hm, host_days *days, size_t n,
                                 errbuf *err)
{
    argv_builder *ab = &rs->ab;
    for (size_t i = 0; i < n; i++) {
        int y, m;
        month_from_index(hm[i].month, &y, &m);
        int ndays = days_in_month(y, m);
        uint32_t g = group_of_host(hm[i].host, hm[i].host_len);
        ab_reset(ab);
        if (ab_add(ab, "EVALSHA", 7) || ab_add(ab, rs->read_host_sha, 40) ||
            ab_addf(ab, "%d", 1 + 2 * ndays) ||
            key_host_month(ab, rs, g, y, m, hm[i].host, hm[i].host_len))
            goto queue_failed;
        for (int d = 1; d <= ndays; d++) {
            if (key_host_day_uniques(ab, rs, g, y, m, d, hm[i].host, hm[i].host_len))
                goto queue_failed;
        }
        if (ab_send(rs, ab))
            goto queue_failed;
    }
    redisReply **r = calloc(n ? n : 1, sizeof *r);
    if (!r || rs_collect(rs, r, n, err)) {
        free(r);
        if (strstr(err->msg, "NOSCRIPT"))
            rs_load_scripts(rs, &(errbuf){{0}});
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&days[i], 0, sizeof days[i]);
        hm[i].hits = days[i].hits;
        hm[i].uniq = days[i].uniq;
        hm[i].sketch = days[i].sketch;
        hm[i].sketch_len = days[i].sketch_len;
        for (size_t k = 0; rc == 0 && r[i]->type == REDIS_REPLY_ARRAY && k + 3 < r[i]->elements;
             k += 4) {
            long long day = r[i]->element[k]->integer;
            const redisReply *hits = r[i]->element[k + 1];
            if (day < 1 || day > 31)
                continue;
            days[i].hits[day - 1] =
                hits->type == REDIS_REPLY_STRING ? strtoll(hits->str, NULL, 10) : hits->integer;
            rc = day_sketch(&hm[i], &days[i], (int)day, r[i]->element[k + 2], r[i]->element[k + 3],
                            err);
        }
        freeReplyObject(r[i]);
    }
    free(r);
    if (rc)
        for (size_t i = 0; i < n; i++)
            host_days_release(&days[i]);
    return rc;
queue_failed:
    err_set(err, "redis: cannot queue host read");
    return -1;
}

/* Sorts indices so that entries sharing a Redis hash come together; one
 * HMGET per hash then reads them all. */
typedef struct {
    uint32_t group;
    int32_t month;
    uint32_t bucket;
    size_t index;
} hash_slot;

static int cmp_slot(const void *a, const void *b)
{
    const hash_slot *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->month != y->month)
        return x->month < y->month ? -1 : 1;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return 0;
}

static char *copy_reply(const redisReply *r, size_t *len)
{
    *len = 0;
    if (r->type != REDIS_REPLY_STRING)
        return NULL;
    char *p = malloc(r->len + 1);
    if (p) {
        memcpy(p, r->str, r->len);
        p[r->len] = '\0';
        *len = r->len;
    }
    return p;
}

/* Issues one HMGET per run of equal (group, month, bucket) in slots, with
 * field names from field_of, and stores copies of the values. */
static int hmget_runs(redis_state *rs, const hash_slot *slots, size_t n,
                      int (*key_of)(redis_state *, const hash_slot *),
                      int (*field_of)(argv_builder *, size_t index, const void *ctx),
                      const void *ctx, char **vals, size_t *lens, errbuf *err)
{
    argv_builder *ab = &rs->ab;
    size_t runs = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && cmp_slot(&slots[i], &slots[j]) == 0)
            j++;
        ab_reset(ab);
        if (ab_add(ab, "HMGET", 5) || key_of(rs, &slots[i]))
            return -1;
        for (size_t k = i; k < j; k++)
            if (field_of(ab, slots[k].index, ctx))
                return -1;
        if (ab_send(rs, ab))
            return -1;
        runs++;
        i = j;
    }
    redisReply **r = calloc(runs ? runs : 1, sizeof *r);
    if (!r || rs_collect(rs, r, runs, err)) {
        free(r);
        return -1;
    }
    size_t run = 0;
    for (size_t i = 0; i < n; run++) {
        size_t j = i;
        while (j < n && cmp_slot(&slots[i], &slots[j]) == 0)
            j++;
        for (size_t k = i; k < j; k++)
            vals[slots[k].index] = copy_reply(r[run]->element[k - i], &lens[slots[k].index]);
        freeReplyObject(r[run]);
        i = j;
    }
    free(r);
    return 0;
}

static int user_key(redis_state *rs, const hash_slot *s)
{
    return key_user_hash(&rs->ab, rs, s->group, s->month, s->bucket);
}

static int user_field(argv_builder *ab, size_t index, const void *ctx)
{
    const user_month_state *um = ctx;
    return ab_addf(ab, "%lld", (long long)um[index].user_id);
}

int redis_state_read_user_months(redis_state *rs, user_month_state *um, size_t n, errbuf *err)
{
    hash_slot *slots = malloc((n ? n : 1) * sizeof *slots);
    char **vals = calloc(n ? n : 1, sizeof *vals);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    int rc = -1;
    if (!slots || !vals || !lens) {
        err_set(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        slots[i] = (hash_slot){group_of_user(um[i].user_id), um[i].month,
                               bucket_of_user(um[i].user_id), i};
    qsort(slots, n, sizeof *slots, cmp_slot);
    if (hmget_runs(rs, slots, n, user_key, user_field, um, vals, lens, err))
        goto out;
    for (size_t i = 0; i < n; i++) {
        um[i].devices = vals[i];
        um[i].devices_len = lens[i];
    }
    rc = 0;
out:
    free(slots);
    free(vals);
    free(lens);
    return rc;
}

static int device_key(redis_state *rs, const hash_slot *s)
{
    return key_group(&rs->ab, rs, s->group, KEY_DEVICES);
}

static int device_field(argv_builder *ab, size_t index, const void *ctx)
{
    const int64_t *ids = ctx;
    return ab_addf(ab, "%lld", (long long)ids[index]);
}

int redis_state_read_devices(redis_state *rs, const int64_t *ids, size_t n, char **vals,
                             size_t *lens, errbuf *err)
{
    hash_slot *slots = malloc((n ? n : 1) * sizeof *slots);
    if (!slots) {
        err_set(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        slots[i] = (hash_slot){group_of_device(ids[i]), 0, 0, i};
        vals[i] = NULL;
    }
    qsort(slots, n, sizeof *slots, cmp_slot);
    int rc = hmget_runs(rs, slots, n, device_key, device_field, ids, vals, lens, err);
    free(slots);
    return rc;
}

int redis_state_wait_for_devices(redis_state *rs, const int64_t *device_ids, const int32_t *months,
                                 const int64_t *user_ids, size_t n, char **vals, size_t *lens,
                                 errbuf *err)
{
    /* One SADD per device key group carries all its waiting entries. */
    argv_builder *ab = &rs->ab;
    size_t sent = 0;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        ab_reset(ab);
        if (ab_add(ab, "SADD", 4) || key_group(ab, rs, g, KEY_WAITING))
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (group_of_device(device_ids[i]) != g)
                continue;
            char month[8];
            rs_month_text(months[i], month);
            if (ab_addf(ab, "%lld%c%s:%lld", (long long)device_ids[i], DIRTY_WAITING_SEP, month,
                        (long long)user_ids[i]))
                return -1;
        }
        if (ab->n == 2)
            continue;
        if (ab_send(rs, ab))
            return -1;
        sent++;
    }
    if (rs_drop_replies(rs, sent, err))
        return -1;
    return redis_state_read_devices(rs, device_ids, n, vals, lens, err);
}

int redis_state_waiting(redis_state *rs, uint32_t group, redis_strings *members, errbuf *err)
{
    memset(members, 0, sizeof *members);
    ab_reset(&rs->ab);
    redisReply *r;
    if (ab_add(&rs->ab, "SMEMBERS", 8) || key_group(&rs->ab, rs, group, KEY_WAITING) ||
        ab_send(rs, &rs->ab) || rs_collect(rs, &r, 1, err))
        return -1;
    int rc = rs_strings_from_reply(r, members);
    if (rc)
        err_set(err, "out of memory");
    freeReplyObject(r);
    return rc;
}

int redis_state_forget_waiting(redis_state *rs, uint32_t group, const char *const *members,
                               const size_t *lens, size_t n, errbuf *err)
{
    if (n == 0)
        return 0;
    ab_reset(&rs->ab);
    if (ab_add(&rs->ab, "SREM", 4) || key_group(&rs->ab, rs, group, KEY_WAITING))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (ab_add(&rs->ab, members[i], lens[i]))
            return -1;
    redisReply *r;
    if (ab_send(rs, &rs->ab) || rs_collect(rs, &r, 1, err))
        return -1;
    freeReplyObject(r);
    return 0;
}

/* Whether a "device=mask,..." value names one of the devices. */
static bool mentions_any(const char *v, const bytes_map *devices)
{
    for (const char *p = v; *p;) {
        char *end;
        long long dev = strtoll(p, &end, 10);
        int64_t id = dev;
        if (end != p && *end == '=' && bytes_map_find(devices, &id, sizeof id))
            return true;
        const char *comma = strchr(p, ',');
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

int redis_state_users_of_devices(redis_state *rs, const bytes_map *devices,
                                 int (*fn)(void *ctx, int32_t month, int64_t user), void *ctx,
                                 errbuf *err)
{
    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s:{*}:%c:*", rs->prefix, KEY_KIND_USER_HASH);
    char cursor[32] = "0";
    do {
        redisReply *r = rs_command(rs, err, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r)
            return -1;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t k = 0; k < keys->elements; k++) {
            const char *key = keys->element[k]->str, *rest;
            int year = 0, mon = 0;
            if (rs_key_group_of(rs, key, keys->element[k]->len, KEY_KIND_USER_HASH, &rest) < 0 ||
                sscanf(rest, "%4d%2d", &year, &mon) != 2)
                continue;
            redisReply *h = rs_command(rs, err, "HGETALL %b", key, keys->element[k]->len);
            if (!h) {
                freeReplyObject(r);
                return -1;
            }
            int rc = 0;
            for (size_t f = 0; rc == 0 && f + 1 < h->elements; f += 2)
                if (mentions_any(h->element[f + 1]->str, devices))
                    rc = fn(ctx, month_index(year, mon), strtoll(h->element[f]->str, NULL, 10));
            freeReplyObject(h);
            if (rc) {
                freeReplyObject(r);
                err_set(err, "flush: out of memory listing the users of changed devices");
                return -1;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int rs_read_all_groups(redis_state *rs, const char *cmd, const char *name,
                       redisReply *out[KEY_GROUPS], errbuf *err)
{
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        ab_reset(&rs->ab);
        if (ab_add(&rs->ab, cmd, strlen(cmd)) || key_group(&rs->ab, rs, g, name) ||
            ab_send(rs, &rs->ab)) {
            err_set(err, "redis: cannot queue %s of %s", cmd, name);
            return -1;
        }
    }
    return rs_collect(rs, out, KEY_GROUPS, err);
}

void rs_free_all(redisReply *r[KEY_GROUPS])
{
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        freeReplyObject(r[g]);
}

/* Adds m to (*v, *n, *cap) unless it is there: the distinct months of a
 * call or of a read are a few, so a scan beats a map. */
int rs_month_list_add(int32_t **v, size_t *n, size_t *cap, int32_t m)
{
    for (size_t k = 0; k < *n; k++)
        if ((*v)[k] == m)
            return 0;
    if (grow((void **)v, cap, *n + 1, sizeof **v, 16))
        return -1;
    (*v)[(*n)++] = m;
    return 0;
}

static int read_month_sets(redis_state *rs, const char *name, month_set out[KEY_GROUPS],
                           errbuf *err)
{
    memset(out, 0, KEY_GROUPS * sizeof *out);
    redisReply *r[KEY_GROUPS];
    if (rs_read_all_groups(rs, "SMEMBERS", name, r, err))
        return -1;
    int rc = 0;
    for (uint32_t g = 0; g < KEY_GROUPS && rc == 0; g++) {
        if (r[g]->type != REDIS_REPLY_ARRAY || r[g]->elements == 0)
            continue;
        if (!(out[g].months = malloc(r[g]->elements * sizeof *out[g].months))) {
            err_set(err, "out of memory");
            rc = -1;
            break;
        }
        for (size_t k = 0; k < r[g]->elements; k++) {
            long ym = r[g]->element[k]->str ? strtol(r[g]->element[k]->str, NULL, 10) : 0;
            if (ym % 100 >= 1 && ym % 100 <= 12)
                out[g].months[out[g].n++] = month_index((int)(ym / 100), (int)(ym % 100));
        }
    }
    rs_free_all(r);
    if (rc)
        month_sets_free(out);
    return rc;
}

int redis_state_read_evicted(redis_state *rs, month_set out[KEY_GROUPS], errbuf *err)
{
    return read_month_sets(rs, KEY_EVICTED, out, err);
}

int redis_state_read_held(redis_state *rs, month_set out[KEY_GROUPS], errbuf *err)
{
    return read_month_sets(rs, KEY_MONTHS, out, err);
}

bool month_set_has(const month_set *e, int32_t month)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->months[i] == month)
            return true;
    return false;
}

void month_sets_free(month_set out[KEY_GROUPS])
{
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        free(out[g].months);
        out[g] = (month_set){NULL, 0};
    }
}
