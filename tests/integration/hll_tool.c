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
 */
#include "lib/hll.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
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

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "sketch") == 0)
        return cmd_sketch();
    if (argc == 5 && strcmp(argv[1], "redis") == 0)
        return cmd_redis(argv[2], atoi(argv[3]), argv[4]);
    fprintf(stderr, "usage: hll_tool sketch | hll_tool redis HOST PORT KEY\n");
    return 2;
}
