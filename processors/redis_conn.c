/*
 * redis_conn.c — the Redis connection of the state module: URL parsing,
 * connecting (with the eviction-policy check), the command encoding (RESP,
 * written here in one pass), pipelined replies, and loading the Lua
 * scripts that processors/state_apply.c and processors/state_read.c call.
 *
 * Everything that changes state goes through processors/apply.lua, one call
 * per key group per batch, pipelined: the network round trips per batch are
 * one, and the commands per batch are the number of groups touched, not the
 * number of events. Reads for the flush are pipelined the same way.
 */
#include "processors/redis_conn_impl.h"

#include "processors/key_groups.h"

#include "lib/civil_time.h"
#include "lib/embedded.h"

#include <time.h>
#include <unistd.h>

void ab_free(argv_builder *ab)
{
    free(ab->buf);
    free(ab->off);
    free(ab->alen);
    free(ab->resp);
    memset(ab, 0, sizeof *ab);
}

int ab_add_key(argv_builder *ab, const redis_state *rs, uint32_t g, const char *middle,
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
    if (ab_reserve(ab, tail_len))
        return -1;
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
int ab_send(redis_state *rs, argv_builder *ab)
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

int rs_get_reply(redis_state *rs, redisReply **reply, errbuf *err)
{
    void *r = NULL;
    if (redisGetReply(rs->ctx, &r) != REDIS_OK || !r) {
        err_set(err, "redis: %s", rs->ctx->errstr[0] ? rs->ctx->errstr : "connection lost");
        return -1;
    }
    *reply = r;
    return 0;
}

redisReply *rs_command(redis_state *rs, errbuf *err, const char *fmt, ...)
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
    redisReply *r = rs_command(rs, err, "SCRIPT LOAD %b", text, len);
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

int rs_load_scripts(redis_state *rs, errbuf *err)
{
    return load_script(rs, "processors/apply.lua", rs->apply_sha, err) ||
           load_script(rs, "processors/take_dirty.lua", rs->take_sha, err) ||
           load_script(rs, "processors/read_host.lua", rs->read_host_sha, err) ||
           load_script(rs, "processors/finish_flush.lua", rs->finish_sha, err) ||
           load_script(rs, "processors/evict.lua", rs->evict_sha, err) ||
           load_script(rs, "processors/rehydrate.lua", rs->rehydrate_sha, err);
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
        r = u.user[0] ? rs_command(rs, err, "AUTH %s %s", u.user, u.password)
                      : rs_command(rs, err, "AUTH %s", u.password);
        if (!r)
            return -1;
        freeReplyObject(r);
    }
    if (u.db) {
        if (!(r = rs_command(rs, err, "SELECT %d", u.db)))
            return -1;
        freeReplyObject(r);
    }
    int ev = redis_state_check_eviction(rs, err);
    if (ev)
        return ev;
    return rs_load_scripts(rs, err);
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
    rs->lateness_ms = REDIS_DEFAULT_LATENESS_MS;
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
    free(rs->months);
    free(rs->url);
    free(rs->prefix);
    free(rs);
}

void redis_state_set_lateness(redis_state *rs, int64_t ms)
{
    rs->lateness_ms = ms;
}

void redis_state_set_eviction(redis_state *rs, bool on)
{
    rs->evict = on;
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
    redisReply *r =
        rs_command(rs, err, "EVAL %s 0 %s",
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

void rs_month_text(int32_t month, char out[8])
{
    int y, m;
    month_from_index(month, &y, &m);
    snprintf(out, 8, "%04d%02d", y, m);
}

const char *redis_state_prefix(const redis_state *rs)
{
    return rs->prefix;
}

redisReply *rs_group_script(redis_state *rs, const char *sha, uint32_t g,
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
        if (rs_get_reply(rs, &r, err))
            return NULL;
        if (r->type != REDIS_REPLY_ERROR)
            return r;
        bool noscript = strncmp(r->str, "NOSCRIPT", 8) == 0;
        err_set(err, "redis: script on group %u failed: %s", g, r->str);
        freeReplyObject(r);
        if (!noscript || rs_load_scripts(rs, err))
            return NULL;
    }
    return NULL;
}

int rs_collect(redis_state *rs, redisReply **out, size_t n, errbuf *err)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        if (rc == 0 && rs_get_reply(rs, &out[i], err)) {
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

int rs_drop_replies(redis_state *rs, size_t n, errbuf *err)
{
    redisReply **acks = calloc(n ? n : 1, sizeof *acks);
    if (!acks || rs_collect(rs, acks, n, err)) {
        free(acks);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        freeReplyObject(acks[i]);
    free(acks);
    return 0;
}

int rs_key_group_of(const redis_state *rs, const char *key, size_t len, char kind,
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

int rs_strings_from_reply(const redisReply *r, redis_strings *out)
{
    memset(out, 0, sizeof *out);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            total += r->element[i]->len + 1;
    out->v = malloc(r->elements * sizeof *out->v);
    out->buf = malloc(total ? total : 1);
    if (!out->v || !out->buf) {
        redis_strings_free(out);
        return -1;
    }
    char *o = out->buf;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        size_t len = e->type == REDIS_REPLY_STRING ? e->len : 0;
        memcpy(o, len ? e->str : "", len);
        o[len] = '\0';
        out->v[i] = (redis_str){o, len};
        o += len + 1;
    }
    out->n = r->elements;
    return 0;
}

void redis_strings_free(redis_strings *s)
{
    free(s->v);
    free(s->buf);
    memset(s, 0, sizeof *s);
}
