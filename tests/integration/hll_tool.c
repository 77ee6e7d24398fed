/*
 * hll_tool.c — test driver for lib/hll against the real extension and the
 * real Redis (tests/integration/test_hll_format.sh). Not part of bin/activity.
 *
 *   hll_tool sketch            stdin: "set_id<TAB>id id ..." per line;
 *                              stdout: "set_id,\x<hex>,<cardinality>" (CSV for
 *                              psql \copy), the sketch lib/hll builds from the ids
 *   hll_tool redis HOST PORT KEY
 *                              PFADDs the preimages of user sets of many sizes
 *                              to KEY, decodes Redis's string (sparse and dense)
 *                              and compares every register with lib/hll's rule;
 *                              then shows why an element whose 50 bits above the
 *                              index are zero must not be PFADDed. Exit 1 on any
 *                              difference. Then the way back (rehydration,
 *                              README "Lateness and eviction"): registers
 *                              written with SET as lib/hll's dense string are
 *                              a HyperLogLog Redis accepts, whose PFCOUNT
 *                              equals that of the same users PFADDed, and a
 *                              PFADD on it sets what it would on the original.
 *   hll_tool rehydrate HOST PORT PREFIX
 *                              processors/rehydrate.lua and evict.lua on the
 *                              real Redis: a host-month and a user brought back
 *                              from sketches as PostgreSQL stores them (decoded
 *                              with hll_sketch_decode) equal the state they were
 *                              built from; the eviction-generation fence, the
 *                              replay that changes nothing, the eviction that
 *                              deletes them again. Exit 1 on any difference.
 */
#include "lib/hll.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_sketch(void)
{
    static hll_sketch sk;
    size_t cap = 1 << 16, n;
    uint64_t *h = malloc(cap * sizeof *h);
    char *line = NULL;
    size_t lcap = 0;
    if (!h)
        return 1;
    while (getline(&line, &lcap, stdin) > 0) {
        char *p = strchr(line, '\t');
        if (!p)
            continue;
        *p++ = '\0';
        n = 0;
        for (char *end; *p && *p != '\n'; p = end) {
            long long id = strtoll(p, &end, 10);
            if (end == p)
                break;
            if (n == cap) {
                uint64_t *g = realloc(h, 2 * cap * sizeof *h);
                if (!g)
                    return 1;
                h = g;
                cap *= 2;
            }
            h[n++] = hll_hash_bigint(id);
        }
        hll_from_hashes(h, n, &sk);
        printf("%s,\\x", line);
        for (size_t i = 0; i < sk.len; i++)
            printf("%02x", sk.bytes[i]);
        printf(",%.17g\n", sk.cardinality);
    }
    free(line);
    free(h);
    return ferror(stdout) ? 1 : 0;
}

static uint64_t next_rand(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int pfadd_hash(redisContext *c, const char *key, uint64_t h)
{
    unsigned char el[8];
    hll_le64_put(el, hll_redis_preimage(h));
    redisReply *r = redisCommand(c, "PFADD %s %b", key, el, (size_t)8);
    int ok = r && r->type == REDIS_REPLY_INTEGER;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static redisReply *get_key(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    if (!r || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "hll_tool: GET %s failed\n", key);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* A dense register as Redis stores it (6 bits, not clamped). */
static unsigned raw_dense(const redisReply *r, size_t i)
{
    const unsigned char *p = (const unsigned char *)r->str + 16;
    size_t bit = i * 6, byte = bit / 8;
    unsigned v = p[byte] >> (bit % 8);
    if (byte + 1 < (size_t)r->len - 16)
        v |= (unsigned)p[byte + 1] << (8 - bit % 8);
    return v & 63;
}

static int cmd_redis(const char *host, int port, const char *key)
{
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        fprintf(stderr, "hll_tool: cannot connect to redis %s:%d\n", host, port);
        return 1;
    }
    static const size_t sizes[] = {1,    2,    10,   100,  500,   1000,  1280,
                                   1281, 2000, 3000, 5000, 20000, 100000};
    static uint8_t want[HLL_REGISTERS], got[HLL_REGISTERS];
    int bad = 0, seen_sparse = 0, seen_dense = 0;
    uint64_t s = 42;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        freeReplyObject(redisCommand(c, "DEL %s", key));
        memset(want, 0, sizeof want);
        for (size_t i = 0; i < sizes[k]; i++) {
            uint64_t h = hll_hash_bigint((int64_t)(next_rand(&s) % 1000000000000ULL));
            hll_registers_add(want, h);
            if (hll_hash_sets_register(h) && pfadd_hash(c, key, h)) {
                fprintf(stderr, "hll_tool: PFADD failed\n");
                return 1;
            }
        }
        redisReply *r = get_key(c, key);
        if (!r)
            return 1;
        int enc = r->len > 4 ? r->str[4] : -1;
        seen_sparse += enc == 1;
        seen_dense += enc == 0;
        int differ = hll_registers_from_redis((const unsigned char *)r->str, r->len, got) != 0 ||
                     memcmp(want, got, sizeof want) != 0;
        bad += differ;
        printf("%zu users: %s, %zu bytes, registers %s\n", sizes[k], enc ? "sparse" : "dense",
               (size_t)r->len, differ ? "DIFFER" : "equal");
        freeReplyObject(r);
    }
    if (!seen_sparse || !seen_dense) {
        fprintf(stderr, "hll_tool: both Redis encodings must be exercised\n");
        bad++;
    }

    /* The way back: the registers of a stored sketch SET as a dense
     * string must be a HyperLogLog equal to the PFADDed one. */
    static const size_t back_sizes[] = {1281, 3000, 20000};
    static unsigned char dense[HLL_REDIS_DENSE_BYTES];
    char key2[512];
    snprintf(key2, sizeof key2, "%s:back", key);
    for (size_t k = 0; k < sizeof back_sizes / sizeof back_sizes[0]; k++) {
        freeReplyObject(redisCommand(c, "DEL %s %s", key, key2));
        memset(want, 0, sizeof want);
        uint64_t later[100];
        for (size_t i = 0; i < back_sizes[k] + 100; i++) {
            uint64_t h = hll_hash_bigint((int64_t)(next_rand(&s) % 1000000000000ULL));
            if (i >= back_sizes[k]) {
                later[i - back_sizes[k]] = h;
                continue;
            }
            hll_registers_add(want, h);
            if (hll_hash_sets_register(h) && pfadd_hash(c, key, h))
                return 1;
        }
        hll_redis_dense_from_registers(want, dense);
        freeReplyObject(redisCommand(c, "SET %s %b", key2, dense, sizeof dense));
        redisReply *a = redisCommand(c, "PFCOUNT %s", key),
                   *b = redisCommand(c, "PFCOUNT %s", key2);
        int ok = a && b && a->type == REDIS_REPLY_INTEGER && b->type == REDIS_REPLY_INTEGER &&
                 a->integer == b->integer;
        printf("%zu users SET back as dense registers: PFCOUNT %lld, PFADDed %lld: %s\n",
               back_sizes[k], b && b->type == REDIS_REPLY_INTEGER ? b->integer : -1,
               a && a->type == REDIS_REPLY_INTEGER ? a->integer : -1, ok ? "equal" : "DIFFER");
        bad += !ok;
        freeReplyObject(a);
        freeReplyObject(b);
        for (size_t i = 0; i < 100; i++) {
            hll_registers_add(want, later[i]);
            if (hll_hash_sets_register(later[i]) && pfadd_hash(c, key2, later[i]))
                return 1;
        }
        redisReply *r = get_key(c, key2);
        if (!r)
            return 1;
        int differ = hll_registers_from_redis((const unsigned char *)r->str, r->len, got) != 0 ||
                     memcmp(want, got, sizeof want) != 0;
        printf("  then 100 more PFADDed: registers %s\n", differ ? "DIFFER" : "equal");
        bad += differ;
        freeReplyObject(r);
    }
    freeReplyObject(redisCommand(c, "DEL %s", key2));

    /* The edges of the register rule, on hashes built for them: 49 trailing
     * zeros (Redis 50, the extension 50, both clamp to 31), and all 50 bits
     * zero (Redis 51, the extension adds nothing). */
    freeReplyObject(redisCommand(c, "DEL %s", key));
    uint64_t h49 = (1ULL << 63) | 9, h0 = 5;
    memset(want, 0, sizeof want);
    hll_registers_add(want, h49);
    hll_registers_add(want, h0);
    if (pfadd_hash(c, key, h49) || pfadd_hash(c, key, h0))
        return 1;
    redisReply *r = get_key(c, key);
    if (!r)
        return 1;
    if (r->str[4] != 0 || raw_dense(r, 9) != 50 || raw_dense(r, 5) != 51 || want[9] != 31 ||
        want[5] != 0) {
        fprintf(stderr, "hll_tool: register edges: Redis %u/%u, extension %u/%u\n", raw_dense(r, 9),
                raw_dense(r, 5), want[9], want[5]);
        bad++;
    } else {
        printf("edges: 49 zeros -> Redis 50, extension 50 (both 31 at 5 bits); "
               "50 zero bits -> Redis 51, extension 0: never PFADDed\n");
    }
    if (hll_hash_sets_register(h0) || !hll_hash_sets_register(h49))
        bad++;
    freeReplyObject(r);
    freeReplyObject(redisCommand(c, "DEL %s", key));
    redisFree(c);
    return bad ? 1 : 0;
}

/* ---- rehydrate ---------------------------------------------------------- */

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

typedef struct {
    const char *v[40000];
    size_t l[40000];
    size_t n;
    char own[40000][96];
} args;

static void arg(args *a, const void *v, size_t l)
{
    a->v[a->n] = v;
    a->l[a->n++] = l;
}

static void argf(args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(a->own[a->n], sizeof a->own[0], fmt, ap);
    va_end(ap);
    arg(a, a->own[a->n], (size_t)n);
}

static int bad_count;
#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "hll_tool rehydrate: %s\n", what);                                     \
            bad_count++;                                                                           \
        } else {                                                                                   \
            printf("ok: %s\n", what);                                                              \
        }                                                                                          \
    } while (0)

static long long int_reply(redisContext *c, args *a)
{
    redisReply *r = redisCommandArgv(c, (int)a->n, a->v, a->l);
    long long v = LLONG_MIN;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else
        fprintf(stderr, "hll_tool rehydrate: %s: %s\n", a->v[0],
                r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return v;
}

static long long cmd_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : LLONG_MIN;
    freeReplyObject(r);
    return v;
}

static char *cmd_str(redisContext *c, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    char *out = NULL;
    if (r && r->type == REDIS_REPLY_STRING && (out = malloc((size_t)r->len + 1))) {
        memcpy(out, r->str, (size_t)r->len);
        out[r->len] = '\0';
        *len = (size_t)r->len;
    }
    freeReplyObject(r);
    return out;
}

/* EVAL of rehydrate.lua with nkeys keys, the five every call names first
 * (month 202401). */
static void rehydrate_head(args *a, const char *script, size_t slen, const char *p, int nkeys)
{
    a->n = 0;
    arg(a, "EVAL", 4);
    arg(a, script, slen);
    argf(a, "%d", nkeys);
    argf(a, "%s:evicted", p);
    argf(a, "%s:evgen", p);
    argf(a, "%s:months", p);
    argf(a, "%s:k:202401", p);
    argf(a, "%s:r:202401", p);
}

/* The rehydrate.lua call of host "ex.com", month 202401: day 5 from an
 * EXPLICIT sketch (its hashes as members), day 6 from a FULL one (its
 * registers as Redis's dense string), day 7 hits only. */
static void host_call(args *a, const char *script, size_t slen, const char *p, const char *gen,
                      const char *hits5, const unsigned char *sk5, size_t sk5_len,
                      const unsigned char *sk6, size_t sk6_len)
{
    static uint64_t hashes[HLL_EXPLICIT_MAX];
    static uint8_t regs[HLL_REGISTERS];
    static unsigned char dense[HLL_REDIS_DENSE_BYTES];
    static unsigned char members[HLL_EXPLICIT_MAX][HLL_MEMBER_MAX];
    rehydrate_head(a, script, slen, p, 12);
    argf(a, "%s:h:202401:ex.com", p);
    for (int d = 5; d <= 7; d++) {
        argf(a, "%s:s:202401%02d:ex.com", p, d);
        argf(a, "%s:p:202401%02d:ex.com", p, d);
    }
    arg(a, "202401", 6);
    arg(a, gen, strlen(gen));
    arg(a, "h", 1);
    arg(a, "ex.com", 6);
    size_t n;
    arg(a, "5", 1);
    arg(a, hits5, strlen(hits5));
    if (hll_sketch_decode(sk5, sk5_len, hashes, &n, regs) == HLL_DECODED_HASHES) {
        arg(a, "s", 1);
        argf(a, "%zu", n);
        for (size_t i = 0; i < n; i++)
            arg(a, members[i], hll_redis_member_of_hash(hashes[i], members[i]));
    }
    arg(a, "6", 1);
    arg(a, "40", 2);
    if (hll_sketch_decode(sk6, sk6_len, hashes, &n, regs) == HLL_DECODED_REGISTERS) {
        hll_redis_dense_from_registers(regs, dense);
        arg(a, "p", 1);
        arg(a, dense, sizeof dense);
    }
    arg(a, "7", 1);
    arg(a, "2", 1);
    arg(a, "-", 1);
}

static int cmd_rehydrate(const char *host, int port, const char *prefix)
{
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        fprintf(stderr, "hll_tool: cannot connect to redis %s:%d\n", host, port);
        return 1;
    }
    size_t slen, elen;
    char *s = read_text("processors/rehydrate.lua", &slen);
    char *script = s ? strdup(s) : NULL;
    char *e = read_text("processors/evict.lua", &elen);
    char *evict = e ? strdup(e) : NULL;
    static args a;
    char p[256];
    snprintf(p, sizeof p, "%s:{7}", prefix);
    if (!script || !evict) {
        fprintf(stderr, "hll_tool rehydrate: run from the repository root\n");
        return 1;
    }

    /* What PostgreSQL holds for the month: two sketches, built by lib/hll
     * (byte-identical to the extension, test_hll_format.sh). */
    static uint64_t h5[3], h6[3000];
    static hll_sketch sk5, sk6;
    static unsigned char m[HLL_MEMBER_MAX];
    uint64_t seed = 9;
    for (size_t i = 0; i < 3; i++)
        h5[i] = hll_hash_bigint((int64_t)i + 1);
    /* The reference: the day-6 users PFADDed as an apply would. */
    for (size_t i = 0; i < 3000; i++)
        h6[i] = hll_hash_bigint((int64_t)(next_rand(&seed) % 1000000000000ULL));
    char ref[300];
    snprintf(ref, sizeof ref, "%s:ref6", p);
    for (size_t i = 0; i < 3000; i++)
        if (hll_hash_sets_register(h6[i]) && pfadd_hash(c, ref, h6[i]))
            return 1;
    uint64_t tmp[3000];
    memcpy(tmp, h5, sizeof h5);
    hll_from_hashes(tmp, 3, &sk5);
    memcpy(tmp, h6, sizeof h6);
    hll_from_hashes(tmp, 3000, &sk6);

    /* The month is evicted, once. */
    cmd_int(c, "SADD %s:evicted 202401", p);
    cmd_int(c, "HSET %s:evgen 202401 1", p);

    host_call(&a, script, slen, p, "0", "11", sk5.bytes, sk5.len, sk6.bytes, sk6.len);
    CHECK(int_reply(c, &a) == -1, "a read older than the last eviction writes nothing (-1)");
    CHECK(cmd_int(c, "EXISTS %s:h:202401:ex.com", p) == 0, "  and the hits hash stays absent");

    host_call(&a, script, slen, p, "1", "11", sk5.bytes, sk5.len, sk6.bytes, sk6.len);
    CHECK(int_reply(c, &a) == 1, "the host-month is brought back (1)");
    size_t len;
    char *v = cmd_str(c, &len, "HGET %s:h:202401:ex.com 5", p);
    CHECK(v && strcmp(v, "11") == 0, "  day 5 hits");
    free(v);
    v = cmd_str(c, &len, "HGET %s:h:202401:ex.com 7", p);
    CHECK(v && strcmp(v, "2") == 0, "  day 7 hits (no uniques)");
    free(v);
    CHECK(cmd_int(c, "SCARD %s:s:20240105:ex.com", p) == 3, "  day 5: 3 members in the exact set");
    int all = 1;
    for (int64_t id = 1; id <= 3; id++) {
        size_t ml = hll_redis_member(id, m);
        all &= cmd_int(c, "SISMEMBER %s:s:20240105:ex.com %b", p, m, ml) == 1;
    }
    CHECK(all, "  day 5: the members are those the users' own applies add");
    CHECK(cmd_int(c, "EXISTS %s:p:20240105:ex.com", p) == 0, "  day 5: no HyperLogLog");
    long long pc = cmd_int(c, "PFCOUNT %s:p:20240106:ex.com", p),
              rc = cmd_int(c, "PFCOUNT %s", ref);
    CHECK(pc == rc && pc > 0, "  day 6: PFCOUNT equals that of the users PFADDed");
    static uint8_t got[HLL_REGISTERS], want[HLL_REGISTERS];
    memset(want, 0, sizeof want);
    for (size_t i = 0; i < 3000; i++)
        hll_registers_add(want, h6[i]);
    v = cmd_str(c, &len, "GET %s:p:20240106:ex.com", p);
    CHECK(v && hll_registers_from_redis((unsigned char *)v, len, got) == 0 &&
              memcmp(got, want, sizeof got) == 0,
          "  day 6: its registers are the stored sketch's");
    free(v);
    /* A flush of the brought-back days rebuilds the stored bytes. */
    static hll_sketch again;
    hll_from_registers(got, &again);
    CHECK(again.len == sk6.len && memcmp(again.bytes, sk6.bytes, sk6.len) == 0,
          "  day 6: the sketch rebuilt from Redis is the stored one, byte for byte");
    CHECK(cmd_int(c, "SISMEMBER %s:r:202401 hex.com", p) == 1, "  listed as brought back");
    CHECK(cmd_int(c, "SISMEMBER %s:months 202401", p) == 1, "  the month is held again");
    CHECK(cmd_int(c, "SCARD %s:k:202401", p) == 8,
          "  the key list names the hits hash, 3 sets, 3 HyperLogLogs and r:202401");
    CHECK(cmd_int(c, "SCARD %s:dirty", p) == 0, "  no dirty marker (PostgreSQL holds it)");

    host_call(&a, script, slen, p, "1", "999", sk5.bytes, sk5.len, sk6.bytes, sk6.len);
    CHECK(int_reply(c, &a) == 0, "a replay changes nothing (0)");
    v = cmd_str(c, &len, "HGET %s:h:202401:ex.com 5", p);
    CHECK(v && strcmp(v, "11") == 0, "  day 5 hits unchanged");
    free(v);

    /* A user: the value as rehydration writes it. */
    rehydrate_head(&a, script, slen, p, 6);
    argf(&a, "%s:u:202401:3", p);
    arg(&a, "202401", 6);
    arg(&a, "1", 1);
    arg(&a, "u", 1);
    arg(&a, "42", 2);
    arg(&a, "null=7", 6);
    CHECK(int_reply(c, &a) == 1, "a user is brought back (1)");
    v = cmd_str(c, &len, "HGET %s:u:202401:3 42", p);
    CHECK(v && strcmp(v, "null=7") == 0, "  its value");
    free(v);
    CHECK(int_reply(c, &a) == 0, "  a replay changes nothing (0)");

    /* The month is evicted again: everything brought back goes, and the
     * generation moves. */
    redisReply *list = redisCommand(c, "SMEMBERS %s:k:202401", p);
    a.n = 0;
    arg(&a, "EVAL", 4);
    arg(&a, evict, elen);
    argf(&a, "%zu", 7 + (list ? list->elements : 0));
    argf(&a, "%s:dirty", p);
    argf(&a, "%s:flushing", p);
    argf(&a, "%s:months", p);
    argf(&a, "%s:evicted", p);
    argf(&a, "%s:k:202401", p);
    argf(&a, "%s:evgen", p);
    argf(&a, "%s:evictedat", p);
    for (size_t i = 0; list && i < list->elements; i++)
        arg(&a, list->element[i]->str, list->element[i]->len);
    arg(&a, "202401", 6);
    arg(&a, "0", 1); /* the flush token PostgreSQL committed */
    CHECK(int_reply(c, &a) == 1, "the month is evicted again (1)");
    freeReplyObject(list);
    CHECK(cmd_int(c, "EXISTS %s:h:202401:ex.com %s:r:202401 %s:u:202401:3 %s:k:202401", p, p, p,
                  p) == 0,
          "  its keys are gone");
    v = cmd_str(c, &len, "HGET %s:evgen 202401", p);
    CHECK(v && strcmp(v, "2") == 0, "  the eviction generation is 2");
    free(v);
    host_call(&a, script, slen, p, "1", "11", sk5.bytes, sk5.len, sk6.bytes, sk6.len);
    CHECK(int_reply(c, &a) == -1, "a rehydration read before that eviction writes nothing (-1)");
    host_call(&a, script, slen, p, "2", "12", sk5.bytes, sk5.len, sk6.bytes, sk6.len);
    CHECK(int_reply(c, &a) == 1, "one read after it brings the host back (1)");

    redisFree(c);
    free(script);
    free(evict);
    return bad_count ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "sketch") == 0)
        return cmd_sketch();
    if (argc == 5 && strcmp(argv[1], "redis") == 0)
        return cmd_redis(argv[2], atoi(argv[3]), argv[4]);
    if (argc == 5 && strcmp(argv[1], "rehydrate") == 0)
        return cmd_rehydrate(argv[2], atoi(argv[3]), argv[4]);
    fprintf(stderr, "usage: hll_tool sketch | hll_tool redis HOST PORT KEY | hll_tool rehydrate "
                    "HOST PORT PREFIX\n");
    return 2;
}
