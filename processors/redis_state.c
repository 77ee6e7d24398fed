/*
 * redis_state.c — Redis state of the processor (see redis_state.h).
 *
 * Everything that changes state goes through processors/apply.lua, one call
 * per key group per batch, pipelined: the network round trips per batch are
 * one, and the commands per batch are the number of groups touched, not the
 * number of events. Reads for the flush are pipelined the same way.
 */
#include "processors/redis_state.h"

#include "lib/civil_time.h"
#include "lib/embedded.h"
#include "lib/failpoint.h"
#include "lib/decimal.h"
#include "lib/grow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAYOUT_VERSION "1"

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
} ud_row;

struct redis_state {
    redisContext *ctx;
    char *url;
    char *prefix;
    char apply_sha[41];
    char take_sha[41];
    char read_host_sha[41];
    char finish_sha[41];
    long exact_limit;
    ud_row *rows; /* scratch for build_apply */
    size_t rows_cap;
    uint64_t commands;
    argv_builder ab;
};

static void ab_reset(argv_builder *ab)
{
    ab->len = 0;
    ab->n = 0;
}

static void ab_free(argv_builder *ab)
{
    free(ab->buf);
    free(ab->off);
    free(ab->alen);
    free(ab->resp);
    memset(ab, 0, sizeof *ab);
}

static int ab_add(argv_builder *ab, const void *data, size_t len)
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
    if (ab->len + len > ab->cap) {
        size_t nc = ab->cap ? ab->cap * 2 : 65536;
        while (nc < ab->len + len)
            nc *= 2;
        char *nb = realloc(ab->buf, nc);
        if (!nb)
            return -1;
        ab->buf = nb;
        ab->cap = nc;
    }
    memcpy(ab->buf + ab->len, data, len);
    ab->off[ab->n] = ab->len;
    ab->alen[ab->n] = len;
    ab->len += len;
    ab->n++;
    return 0;
}

static int ab_addf(argv_builder *ab, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ab_addf(argv_builder *ab, const char *fmt, ...)
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
static int ab_add_i64(argv_builder *ab, long long v)
{
    char tmp[DECIMAL_MAX];
    size_t len;
    const char *p = decimal_i64(tmp, v, &len);
    return ab_add(ab, p, len);
}

/* Adds "<prefix>:{g}:<middle><tail bytes>" as one argument. */
static int ab_add_key(argv_builder *ab, const redis_state *rs, uint32_t g, const char *middle,
                      const char *tail, size_t tail_len)
{
    char head[256];
    int n = snprintf(head, sizeof head, "%s:{%u}:%s", rs->prefix, g, middle);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    if (ab_add(ab, head, (size_t)n))
        return -1;
    if (!tail_len)
        return 0;
    /* Extend the argument just added with the tail bytes. */
    size_t last = ab->n - 1;
    if (ab->len + tail_len > ab->cap) {
        size_t nc = ab->cap * 2;
        while (nc < ab->len + tail_len)
            nc *= 2;
        char *nb = realloc(ab->buf, nc);
        if (!nb)
            return -1;
        ab->buf = nb;
        ab->cap = nc;
    }
    memcpy(ab->buf + ab->len, tail, tail_len);
    ab->len += tail_len;
    ab->alen[last] += tail_len;
    return 0;
}

/* Appends "$<len>\r\n" or "*<n>\r\n" to the RESP buffer (room reserved). */
static char *resp_header(char *o, char kind, size_t v)
{
    char tmp[DECIMAL_MAX];
    size_t len;
    const char *d = decimal_i64(tmp, (long long)v, &len);
    *o++ = kind;
    memcpy(o, d, len);
    o += len;
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

/* Queues the command in the Redis protocol written here in one pass:
 * hiredis' own argv formatting (a printf-style append per argument) cost
 * as much as building the arguments. */
static int ab_send(redis_state *rs, argv_builder *ab)
{
    size_t need = 24 + ab->len + ab->n * 26;
    if (need > ab->resp_cap) {
        char *nb = realloc(ab->resp, need);
        if (!nb)
            return -1;
        ab->resp = nb;
        ab->resp_cap = need;
    }
    char *o = resp_header(ab->resp, '*', ab->n);
    for (size_t i = 0; i < ab->n; i++) {
        o = resp_header(o, '$', ab->alen[i]);
        memcpy(o, ab->buf + ab->off[i], ab->alen[i]);
        o += ab->alen[i];
        *o++ = '\r';
        *o++ = '\n';
    }
    rs->commands++;
    return redisAppendFormattedCommand(rs->ctx, ab->resp, (size_t)(o - ab->resp)) == REDIS_OK ? 0
                                                                                              : -1;
}

static int get_reply(redis_state *rs, redisReply **reply, errbuf *err)
{
    void *r = NULL;
    if (redisGetReply(rs->ctx, &r) != REDIS_OK || !r) {
        err_set(err, "redis: %s", rs->ctx->errstr[0] ? rs->ctx->errstr : "connection lost");
        return -1;
    }
    *reply = r;
    return 0;
}

static redisReply *command(redis_state *rs, errbuf *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rs->ctx, fmt, ap);
    va_end(ap);
    rs->commands++;
    if (!r) {
        err_set(err, "redis: %s", rs->ctx->errstr[0] ? rs->ctx->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        err_set(err, "redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* ---- connection -------------------------------------------------------- */

typedef struct {
    char host[256];
    int port;
    char user[128];
    char password[256];
    int db;
} redis_url;

static int parse_url(const char *url, redis_url *u, errbuf *err)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0) {
        err_set(err, "redis URL '%s' must start with redis://", url);
        return -1;
    }
    p += 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(at - colon - 1) >= sizeof u->password ||
            (size_t)(colon - p) >= sizeof u->user) {
            err_set(err, "redis URL credentials must be [user]:password@");
            return -1;
        }
        memcpy(u->user, p, (size_t)(colon - p));
        memcpy(u->password, colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof u->host) {
        err_set(err, "redis URL '%s' has no host", url);
        return -1;
    }
    memcpy(u->host, p, hl);
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port <= 0 || port > 65535) {
            err_set(err, "redis URL '%s' has a bad port", url);
            return -1;
        }
        u->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (*end || db < 0) {
            err_set(err, "redis URL '%s' has a bad database number", url);
            return -1;
        }
        u->db = (int)db;
    }
    return 0;
}

static int load_script(redis_state *rs, const char *path, char sha[41], errbuf *err)
{
    size_t len;
    const char *text = embedded_file(path, &len);
    if (!text) {
        err_set(err, "%s is not embedded in this build", path);
        return -1;
    }
    redisReply *r = command(rs, err, "SCRIPT LOAD %b", text, len);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        err_set(err, "redis: SCRIPT LOAD of %s returned no sha", path);
        freeReplyObject(r);
        return -1;
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    return 0;
}

static int load_scripts(redis_state *rs, errbuf *err)
{
    return load_script(rs, "processors/apply.lua", rs->apply_sha, err) ||
           load_script(rs, "processors/take_dirty.lua", rs->take_sha, err) ||
           load_script(rs, "processors/read_host.lua", rs->read_host_sha, err) ||
           load_script(rs, "processors/finish_flush.lua", rs->finish_sha, err);
}

/* Reads maxmemory-policy: CONFIG GET where allowed, else the field
 * maxmemory_policy of INFO memory (managed Redis often renames or disables
 * CONFIG). Returns -1 on a lost connection; an empty policy when neither
 * tells. */
static int read_eviction_policy(redis_state *rs, char *policy, size_t size, errbuf *err)
{
    policy[0] = '\0';
    redisReply *r = redisCommand(rs->ctx, "CONFIG GET maxmemory-policy");
    rs->commands++;
    if (!r) {
        err_set(err, "redis: %s", rs->ctx->errstr[0] ? rs->ctx->errstr : "connection lost");
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len < size)
        snprintf(policy, size, "%s", r->element[1]->str);
    freeReplyObject(r);
    if (policy[0])
        return 0;
    r = redisCommand(rs->ctx, "INFO memory");
    rs->commands++;
    if (!r) {
        err_set(err, "redis: %s", rs->ctx->errstr[0] ? rs->ctx->errstr : "connection lost");
        return -1;
    }
    const char *f = r->type == REDIS_REPLY_STRING ? strstr(r->str, "maxmemory_policy:") : NULL;
    if (f) {
        f += strlen("maxmemory_policy:");
        size_t n = strcspn(f, "\r\n");
        if (n < size) {
            memcpy(policy, f, n);
            policy[n] = '\0';
        }
    }
    freeReplyObject(r);
    return 0;
}

int redis_state_check_eviction(redis_state *rs, errbuf *err)
{
    char policy[64];
    if (read_eviction_policy(rs, policy, sizeof policy, err))
        return -1;
    if (!policy[0]) {
        err_set(err,
                "cannot tell whether redis may evict this processor's state: neither CONFIG GET "
                "maxmemory-policy nor INFO memory (maxmemory_policy) answered; the processor "
                "needs a Redis whose maxmemory-policy is noeviction and that says so");
        return REDIS_REFUSED;
    }
    if (strcmp(policy, "noeviction") != 0) {
        err_set(err,
                "redis maxmemory-policy is '%s': Redis may evict this processor's fences and "
                "state, which would corrupt the sink tables without a trace; refusing to run. "
                "Set maxmemory-policy to noeviction (CONFIG SET maxmemory-policy noeviction, and "
                "in redis.conf or the managed service's parameters) and size maxmemory for the "
                "state; if keys may have been evicted already, rebuild with activity backfill "
                "--reset",
                policy);
        return REDIS_REFUSED;
    }
    return 0;
}

static int open_connection(redis_state *rs, errbuf *err)
{
    redis_url u;
    if (parse_url(rs->url, &u, err))
        return -1;
    struct timeval tv = {5, 0};
    redisContext *ctx = redisConnectWithTimeout(u.host, u.port, tv);
    if (!ctx || ctx->err) {
        err_set(err, "cannot connect to redis at %s:%d: %s", u.host, u.port,
                ctx ? ctx->errstr : "out of memory");
        if (ctx)
            redisFree(ctx);
        return -1;
    }
    struct timeval io = {30, 0};
    redisSetTimeout(ctx, io);
    if (rs->ctx)
        redisFree(rs->ctx);
    rs->ctx = ctx;
    redisReply *r;
    if (u.password[0]) {
        r = u.user[0] ? command(rs, err, "AUTH %s %s", u.user, u.password)
                      : command(rs, err, "AUTH %s", u.password);
        if (!r)
            return -1;
        freeReplyObject(r);
    }
    if (u.db) {
        if (!(r = command(rs, err, "SELECT %d", u.db)))
            return -1;
        freeReplyObject(r);
    }
    int ev = redis_state_check_eviction(rs, err);
    if (ev)
        return ev;
    return load_scripts(rs, err);
}

redis_state *redis_state_connect(const char *url, const char *prefix, errbuf *err)
{
    redis_state *rs = calloc(1, sizeof *rs);
    if (!rs || !(rs->url = strdup(url)) || !(rs->prefix = strdup(prefix))) {
        err_set(err, "out of memory");
        redis_state_free(rs);
        return NULL;
    }
    rs->exact_limit = REDIS_DEFAULT_EXACT_LIMIT;
    if (open_connection(rs, err)) {
        redis_state_free(rs);
        return NULL;
    }
    return rs;
}

int redis_state_reconnect(redis_state *rs, errbuf *err)
{
    return open_connection(rs, err);
}

void redis_state_free(redis_state *rs)
{
    if (!rs)
        return;
    if (rs->ctx)
        redisFree(rs->ctx);
    ab_free(&rs->ab);
    free(rs->rows);
    free(rs->url);
    free(rs->prefix);
    free(rs);
}

void redis_state_set_exact_limit(redis_state *rs, long limit)
{
    rs->exact_limit = limit;
}

uint64_t redis_state_commands(const redis_state *rs)
{
    return rs->commands;
}

void redis_state_server_version(redis_state *rs, char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    redisReply *r = redisCommand(rs->ctx, "INFO server");
    const char *v = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "redis_version:") : NULL;
    if (v)
        snprintf(buf, cap, "%.*s", (int)strcspn(v + 14, "\r\n"), v + 14);
    if (r)
        freeReplyObject(r);
}

int redis_state_drop_all(redis_state *rs, errbuf *err)
{
    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s:*", rs->prefix);
    /* SCAN + DEL inside Redis: key names hold host names of any bytes. */
    redisReply *r = command(rs, err, "EVAL %s 0 %s",
                            "local c, n = '0', 0 repeat "
                            "local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000) "
                            "c = r[1] for _, k in ipairs(r[2]) do n = n + redis.call('DEL', k) end "
                            "until c == '0' return n",
                            pattern);
    if (!r)
        return -1;
    log_info("deleted %lld redis keys under '%s:'", r->integer, rs->prefix);
    freeReplyObject(r);
    return 0;
}

int redis_state_check_layout(redis_state *rs, errbuf *err)
{
    char key[256];
    snprintf(key, sizeof key, "%s:meta", rs->prefix);
    redisReply *r = command(rs, err, "HSETNX %s layout %s", key, LAYOUT_VERSION);
    if (!r)
        return -1;
    freeReplyObject(r);
    if (!(r = command(rs, err, "HSETNX %s key_groups %d", key, KEY_GROUPS)))
        return -1;
    freeReplyObject(r);
    if (!(r = command(rs, err, "HMGET %s layout key_groups", key)))
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
                "key groups); use another --redis-prefix or database",
                rs->prefix, LAYOUT_VERSION, KEY_GROUPS);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int redis_state_layout_present(redis_state *rs, errbuf *err)
{
    char key[256];
    snprintf(key, sizeof key, "%s:meta", rs->prefix);
    redisReply *r = command(rs, err, "EXISTS %s", key);
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
        if (ab_add(ab, "HGET", 4) || ab_add_key(ab, rs, g, "fence", NULL, 0) ||
            ab_add(ab, field, strlen(field)) || ab_send(rs, ab)) {
            err_set(err, "redis: cannot queue fence read");
            return -1;
        }
    }
    int rc = 0;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        redisReply *r;
        if (get_reply(rs, &r, err))
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
    if (x->device != y->device)
        return x->device < y->device ? -1 : 1;
    return 0;
}

static void month_text(int32_t month, char out[8])
{
    int y, m;
    month_from_index(month, &y, &m);
    snprintf(out, 8, "%04d%02d", y, m);
}

/* Appends the user-hash section: rows sorted by (month, bucket, user). */
static int add_user_section(argv_builder *ab, const ud_row *rows, size_t n)
{
    size_t nkeys = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || rows[i].month != rows[i - 1].month || rows[i].bucket != rows[i - 1].bucket)
            nkeys++;
    if (ab_addf(ab, "%zu", nkeys))
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
        month_text(rows[i].month, month);
        if (ab_add(ab, month, 6) || ab_addf(ab, "%u", rows[i].bucket) || ab_addf(ab, "%zu", nusers))
            return -1;
        size_t u = i;
        while (u < kend) {
            size_t uend = u;
            while (uend < kend && rows[uend].user == rows[u].user)
                uend++;
            if (ab_add_i64(ab, rows[u].user) || ab_add_i64(ab, (long long)(uend - u)))
                return -1;
            for (size_t k = u; k < uend; k++)
                if (ab_add_i64(ab, rows[k].device) || ab_add_i64(ab, rows[k].mask))
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

static int build_apply(redis_state *rs, const batch *b, uint32_t g, const char *field,
                       int64_t expected, int64_t new_fence, ud_row **rows, size_t *rows_cap)
{
    argv_builder *ab = &rs->ab;
    ab_reset(ab);
    if (ab_add(ab, "EVALSHA", 7) || ab_add(ab, rs->apply_sha, 40) || ab_add(ab, "1", 1) ||
        ab_add_key(ab, rs, g, "fence", NULL, 0) || ab_add(ab, field, strlen(field)) ||
        (unfenced ? ab_add(ab, "*", 1) : ab_addf(ab, "%lld", (long long)expected)) ||
        ab_addf(ab, "%lld", (long long)new_fence) || ab_addf(ab, "%ld", rs->exact_limit))
        return -1;

    size_t nh = 0;
    for (uint32_t i = b ? b->host_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->host_days[i].next)
        nh++;
    if (ab_addf(ab, "%zu", nh))
        return -1;
    for (uint32_t i = b ? b->host_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->host_days[i].next) {
        const host_day_delta *hd = &b->host_days[i];
        civil_date d = civil_from_days(hd->day);
        if (ab_addf(ab, "%04d%02d", d.year, d.month) || ab_addf(ab, "%d", d.day) ||
            ab_addf(ab, "%04d%02d%02d", d.year, d.month, d.day) ||
            ab_add(ab, batch_str(b, hd->host_off), hd->host_len) ||
            ab_addf(ab, "%llu", (unsigned long long)hd->hits) || ab_addf(ab, "%u", hd->nusers))
            return -1;
        for (uint32_t u = hd->users_head; u != BATCH_NONE; u = b->users[u].next)
            if (ab_add_i64(ab, b->users[u].user_id))
                return -1;
    }

    size_t nu = 0;
    for (uint32_t i = b ? b->ud_head[g] : BATCH_NONE; i != BATCH_NONE; i = b->uds[i].next) {
        if (grow((void **)rows, rows_cap, nu + 1, sizeof **rows, 1024))
            return -1;
        const user_device_delta *ud = &b->uds[i];
        (*rows)[nu++] =
            (ud_row){ud->month, bucket_of_user(ud->user_id), ud->user_id, ud->device_id, ud->mask};
    }
    qsort(*rows, nu, sizeof **rows, cmp_ud);
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
                      int64_t new_fence, const int64_t fences[KEY_GROUPS],
                      const bool want[KEY_GROUPS], apply_ticket *t, errbuf *err)
{
    char field[512];
    if (fence_field(field, sizeof field, topic, partition) < 0) {
        err_set(err, "topic name too long");
        return -1;
    }
    t->n = 0;
    t->new_fence = new_fence;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        if (!want[g])
            continue;
        if (build_apply(rs, b, g, field, fences[g], new_fence, &rs->rows, &rs->rows_cap) ||
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
    bool again[KEY_GROUPS] = {false}, noscript = false;
    int64_t expected[KEY_GROUPS];
    for (size_t k = 0; k < t->n; k++) {
        uint32_t g = t->groups[k];
        redisReply *r;
        if (get_reply(rs, &r, err))
            return -1;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            noscript = again[g] = true;
            expected[g] = t->expected[k];
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                   r->element[0]->type == REDIS_REPLY_INTEGER) {
            if (r->element[0]->integer == 1) {
                fences[g] = t->new_fence;
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
        freeReplyObject(r);
    }
    if (result >= 0 && noscript) {
        if (load_scripts(rs, err))
            return -1;
        apply_ticket retry;
        int r = send_apply(rs, b, topic, partition, t->new_fence, expected, again, &retry, err);
        if (r == 0) {
            r = recv_apply(rs, b, topic, partition, &retry, fences, err);
            /* A second NOSCRIPT right after loading them is an error. */
        }
        if (r != 0)
            result = r;
    }
    if (b && result == 0)
        failpoint("apply-done");
    return result;
}

static int run_apply(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                     int64_t new_fence, int64_t fences[KEY_GROUPS], const bool want[KEY_GROUPS],
                     errbuf *err)
{
    apply_ticket t;
    if (send_apply(rs, b, topic, partition, new_fence, fences, want, &t, err))
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
    return send_apply(rs, b, topic, partition, new_fence, fences, want, t, err);
}

int redis_state_apply_recv(redis_state *rs, const batch *b, const char *topic, int32_t partition,
                           apply_ticket *t, int64_t fences[KEY_GROUPS], errbuf *err)
{
    return recv_apply(rs, b, topic, partition, t, fences, err);
}

int redis_state_advance_fences(redis_state *rs, const char *topic, int32_t partition, int64_t next,
                               int64_t fences[KEY_GROUPS], errbuf *err)
{
    bool want[KEY_GROUPS], any = false;
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        any |= want[g] = fences[g] < next;
    if (!any)
        return 0;
    return run_apply(rs, NULL, topic, partition, next, fences, want, err);
}

/* ---- flush side -------------------------------------------------------- */

int redis_state_flush_token(redis_state *rs, int64_t *token, errbuf *err)
{
    char key[256];
    snprintf(key, sizeof key, "%s:flushgen", rs->prefix);
    redisReply *r = command(rs, err, "INCR %s", key);
    if (!r)
        return -1;
    *token = r->integer;
    freeReplyObject(r);
    return 0;
}

const char *redis_state_prefix(const redis_state *rs)
{
    return rs->prefix;
}

int redis_state_raise_flush_token(redis_state *rs, int64_t at_least, errbuf *err)
{
    char key[256];
    snprintf(key, sizeof key, "%s:flushgen", rs->prefix);
    redisReply *r = command(rs, err, "EVAL %s 1 %s %lld",
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
static redisReply *group_script(redis_state *rs, const char *sha, uint32_t g,
                                const char *const *middles, int nkeys, int64_t token, errbuf *err)
{
    argv_builder *ab = &rs->ab;
    for (int attempt = 0; attempt < 2; attempt++) {
        ab_reset(ab);
        if (ab_add(ab, "EVALSHA", 7) || ab_add(ab, sha, 40) || ab_addf(ab, "%d", nkeys)) {
            err_set(err, "out of memory");
            return NULL;
        }
        for (int k = 0; k < nkeys; k++)
            if (ab_add_key(ab, rs, g, middles[k], NULL, 0)) {
                err_set(err, "out of memory");
                return NULL;
            }
        if (ab_addf(ab, "%lld", (long long)token) || ab_send(rs, ab)) {
            err_set(err, "redis: cannot queue script");
            return NULL;
        }
        redisReply *r;
        if (get_reply(rs, &r, err))
            return NULL;
        if (r->type != REDIS_REPLY_ERROR)
            return r;
        bool noscript = strncmp(r->str, "NOSCRIPT", 8) == 0;
        err_set(err, "redis: script on group %u failed: %s", g, r->str);
        freeReplyObject(r);
        if (!noscript || load_scripts(rs, err))
            return NULL;
    }
    return NULL;
}

redisReply *redis_state_take_dirty(redis_state *rs, uint32_t g, int64_t token, bool *stale,
                                   errbuf *err)
{
    static const char *const keys[5] = {"dirty", "flushing", "flushtoken", "dim", "dimflushing"};
    *stale = false;
    redisReply *r = group_script(rs, rs->take_sha, g, keys, 5, token, err);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        err_set(err, "flush token %lld is older than %lld, which took group %u already",
                (long long)token, (long long)r->integer, g);
        *stale = true;
        freeReplyObject(r);
        return NULL;
    }
    if (r && r->type != REDIS_REPLY_ARRAY) {
        err_set(err, "redis: take-dirty of group %u: unexpected reply", g);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Reads n pipelined replies; fails (freeing them) if any is an error. */
static int collect(redis_state *rs, redisReply **out, size_t n, errbuf *err)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        if (rc == 0 && get_reply(rs, &out[i], err)) {
            rc = -1;
            continue;
        }
        if (rc == 0 && out[i]->type == REDIS_REPLY_ERROR) {
            err_set(err, "redis: %s", out[i]->str);
            rc = -1;
        }
    }
    if (rc)
        for (size_t i = 0; i < n; i++)
            if (out[i])
                freeReplyObject(out[i]);
    return rc;
}

/* Reads and drops n pipelined acknowledgements; fails on any error. */
static int drop_replies(redis_state *rs, size_t n, errbuf *err)
{
    redisReply **acks = calloc(n ? n : 1, sizeof *acks);
    if (!acks || collect(rs, acks, n, err)) {
        free(acks);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        freeReplyObject(acks[i]);
    free(acks);
    return 0;
}

int redis_state_pg_token(redis_state *rs, int64_t *token, errbuf *err)
{
    redisReply *r = command(rs, err, "GET %s:pgtoken", rs->prefix);
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
        r = command(rs, err, "SET %s:epoch %lld", rs->prefix, (long long)*epoch);
    } else {
        r = command(rs, err, "GET %s:epoch", rs->prefix);
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
        raise_only ? command(rs, err, "EVAL %s 1 %s:pgtoken %lld",
                             "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) "
                             "then redis.call('SET', KEYS[1], ARGV[1]) end return 1",
                             rs->prefix, (long long)token)
                   : command(rs, err, "SET %s:pgtoken %lld", rs->prefix, (long long)token);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* The key group of "<prefix>:{g}:<kind>:..." (kind one letter), or -1 for
 * a key of another shape; *rest points past "<kind>:". */
static int key_group_of(const redis_state *rs, const char *key, size_t len, char kind,
                        const char **rest)
{
    size_t pl = strlen(rs->prefix);
    if (len < pl + 6 || memcmp(key, rs->prefix, pl) != 0 || key[pl] != ':' || key[pl + 1] != '{')
        return -1;
    size_t i = pl + 2;
    long g = 0;
    while (i < len && key[i] >= '0' && key[i] <= '9' && g < KEY_GROUPS)
        g = g * 10 + (key[i++] - '0');
    if (i == pl + 2 || g >= KEY_GROUPS || i + 3 > len || key[i] != '}' || key[i + 1] != ':' ||
        key[i + 2] != kind || key[i + 3] != ':')
        return -1;
    *rest = key + i + 4;
    return (int)g;
}

/* Adds every field of a user hash "<p>:{g}:u:<YYYYMM>:<bucket>" to the
 * group's dirty set as "u<YYYYMM>:<user>", inside Redis. */
static const char mark_users_lua[] =
    "local f = redis.call('HKEYS', KEYS[1]) "
    "for i = 1, #f, 1000 do local m = {} "
    "for j = i, math.min(i + 999, #f) do m[#m + 1] = ARGV[1] .. f[j] end "
    "redis.call('SADD', KEYS[2], unpack(m)) end return #f";

int redis_state_mark_all_dirty(redis_state *rs, size_t *hosts, size_t *users, errbuf *err)
{
    *hosts = *users = 0;
    char cursor[32] = "0";
    do {
        redisReply *r =
            command(rs, err, "SCAN %s MATCH %s:{*}:[hu]:* COUNT 1000", cursor, rs->prefix);
        if (!r)
            return -1;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        size_t sent = 0;
        for (size_t k = 0; k < keys->elements; k++) {
            const char *key = keys->element[k]->str, *rest;
            size_t len = keys->element[k]->len;
            int g = key_group_of(rs, key, len, 'h', &rest);
            bool user = g < 0 && (g = key_group_of(rs, key, len, 'u', &rest)) >= 0;
            if (g < 0 || (size_t)(key + len - rest) < 7)
                continue;
            ab_reset(&rs->ab);
            int bad = 0;
            if (user) {
                /* ARGV[1] = "u<YYYYMM>:" */
                char head[16];
                snprintf(head, sizeof head, "u%.6s:", rest);
                bad = ab_add(&rs->ab, "EVAL", 4) ||
                      ab_add(&rs->ab, mark_users_lua, sizeof mark_users_lua - 1) ||
                      ab_add(&rs->ab, "2", 1) || ab_add(&rs->ab, key, len) ||
                      ab_add_key(&rs->ab, rs, (uint32_t)g, "dirty", NULL, 0) ||
                      ab_add(&rs->ab, head, strlen(head));
            } else {
                /* The member is "h" followed by the key's "<YYYYMM>:<host>". */
                size_t tail = (size_t)(key + len - rest);
                char *member = malloc(tail + 1);
                if (member) {
                    member[0] = 'h';
                    memcpy(member + 1, rest, tail);
                }
                bad = !member || ab_add(&rs->ab, "SADD", 4) ||
                      ab_add_key(&rs->ab, rs, (uint32_t)g, "dirty", NULL, 0) ||
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
        if (drop_replies(rs, sent, err))
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
            ab_add(&rs->ab, "1", 1) || ab_add_key(&rs->ab, rs, g, "fence", NULL, 0) ||
            ab_add(&rs->ab, field, (size_t)fl) || ab_send(rs, &rs->ab)) {
            err_set(err, "redis: cannot queue a fence reset");
            return -1;
        }
    }
    return drop_replies(rs, KEY_GROUPS, err);
}

int redis_state_finish_flush(redis_state *rs, const uint32_t *groups, size_t n, int64_t token,
                             errbuf *err)
{
    static const char *const keys[3] = {"flushing", "flushtoken", "dimflushing"};
    for (size_t i = 0; i < n; i++) {
        redisReply *r = group_script(rs, rs->finish_sha, groups[i], keys, 3, token, err);
        if (!r)
            return -1;
        freeReplyObject(r);
    }
    return 0;
}

int redis_state_read_dims(redis_state *rs, const uint32_t *groups, size_t n, redisReply **out,
                          errbuf *err)
{
    for (size_t i = 0; i < n; i++) {
        ab_reset(&rs->ab);
        if (ab_add(&rs->ab, "HGETALL", 7) ||
            ab_add_key(&rs->ab, rs, groups[i], "dimflushing", NULL, 0) || ab_send(rs, &rs->ab)) {
            err_set(err, "redis: cannot queue a dimension read");
            return -1;
        }
    }
    return collect(rs, out, n, err);
}

/* One read_host.lua call per (host, month). On NOSCRIPT (Redis restarted
 * and lost its script cache) the scripts are reloaded and the flush fails
 * this time; the next attempt succeeds. */
int redis_state_read_host_months(redis_state *rs, host_month_state *hm, size_t n, errbuf *err)
{
    argv_builder *ab = &rs->ab;
    for (size_t i = 0; i < n; i++) {
        char month[8], head[300];
        month_text(hm[i].month, month);
        uint32_t g = group_of_host(hm[i].host, hm[i].host_len);
        char mid[16];
        snprintf(mid, sizeof mid, "h:%s:", month);
        snprintf(head, sizeof head, "%s:{%u}:", rs->prefix, g);
        ab_reset(ab);
        if (ab_add(ab, "EVALSHA", 7) || ab_add(ab, rs->read_host_sha, 40) || ab_add(ab, "1", 1) ||
            ab_add_key(ab, rs, g, mid, hm[i].host, hm[i].host_len) ||
            ab_add(ab, head, strlen(head)) || ab_add(ab, month, 6) ||
            ab_add(ab, hm[i].host, hm[i].host_len) || ab_send(rs, ab)) {
            err_set(err, "redis: cannot queue host read");
            return -1;
        }
    }
    redisReply **r = calloc(n ? n : 1, sizeof *r);
    if (!r || collect(rs, r, n, err)) {
        free(r);
        if (strstr(err->msg, "NOSCRIPT"))
            load_scripts(rs, &(errbuf){{0}});
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        memset(hm[i].hits, 0, sizeof hm[i].hits);
        memset(hm[i].uniq, 0, sizeof hm[i].uniq);
        for (size_t k = 0; r[i]->type == REDIS_REPLY_ARRAY && k + 2 < r[i]->elements; k += 3) {
            long long day = r[i]->element[k]->integer;
            const redisReply *hits = r[i]->element[k + 1];
            if (day >= 1 && day <= 31) {
                hm[i].hits[day - 1] =
                    hits->type == REDIS_REPLY_STRING ? strtoll(hits->str, NULL, 10) : hits->integer;
                hm[i].uniq[day - 1] = r[i]->element[k + 2]->integer;
            }
        }
        freeReplyObject(r[i]);
    }
    free(r);
    return 0;
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
    if (!r || collect(rs, r, runs, err)) {
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
    char month[8], mid[32];
    month_text(s->month, month);
    snprintf(mid, sizeof mid, "u:%s:%u", month, s->bucket);
    return ab_add_key(&rs->ab, rs, s->group, mid, NULL, 0);
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
    return ab_add_key(&rs->ab, rs, s->group, "d", NULL, 0);
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
        if (ab_add(ab, "SADD", 4) || ab_add_key(ab, rs, g, "w", NULL, 0))
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (group_of_device(device_ids[i]) != g)
                continue;
            char month[8];
            month_text(months[i], month);
            if (ab_addf(ab, "%lld|%s:%lld", (long long)device_ids[i], month,
                        (long long)user_ids[i]))
                return -1;
        }
        if (ab->n == 2)
            continue;
        if (ab_send(rs, ab))
            return -1;
        sent++;
    }
    if (drop_replies(rs, sent, err))
        return -1;
    return redis_state_read_devices(rs, device_ids, n, vals, lens, err);
}

redisReply *redis_state_waiting(redis_state *rs, uint32_t group, errbuf *err)
{
    ab_reset(&rs->ab);
    redisReply *r;
    if (ab_add(&rs->ab, "SMEMBERS", 8) || ab_add_key(&rs->ab, rs, group, "w", NULL, 0) ||
        ab_send(rs, &rs->ab) || collect(rs, &r, 1, err))
        return NULL;
    return r;
}

int redis_state_forget_waiting(redis_state *rs, uint32_t group, const char *const *members,
                               const size_t *lens, size_t n, errbuf *err)
{
    if (n == 0)
        return 0;
    ab_reset(&rs->ab);
    if (ab_add(&rs->ab, "SREM", 4) || ab_add_key(&rs->ab, rs, group, "w", NULL, 0))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (ab_add(&rs->ab, members[i], lens[i]))
            return -1;
    redisReply *r;
    if (ab_send(rs, &rs->ab) || collect(rs, &r, 1, err))
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
    snprintf(pattern, sizeof pattern, "%s:{*}:u:*", rs->prefix);
    char cursor[32] = "0";
    do {
        redisReply *r = command(rs, err, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r)
            return -1;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t k = 0; k < keys->elements; k++) {
            const char *key = keys->element[k]->str;
            const char *u = strstr(key, "}:u:");
            if (!u)
                continue;
            int year = 0, mon = 0;
            if (sscanf(u + 4, "%4d%2d", &year, &mon) != 2)
                continue;
            redisReply *h = command(rs, err, "HGETALL %b", key, keys->element[k]->len);
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
