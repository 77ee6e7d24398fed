/*
 * hll.c — the postgresql-hll extension's sketch format, its hash and
 * estimator, and the bridge from Redis's HyperLogLog (see hll.h).
 *
 * Written from the extension's documented format (STORAGE.markdown of the
 * hll storage spec) and checked byte for byte against the extension itself
 * (tests/integration/test_hll_format.sh); every rule that decides a byte is
 * stated where it is applied.
 */
#include "lib/hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Header byte 0: schema version 1 in the high nibble, the type below. */
enum { HLL_EMPTY = 1, HLL_EXPLICIT = 2, HLL_SPARSE = 3, HLL_FULL = 4 };
/* Byte 1: (regwidth - 1) << 5 | log2m. Byte 2: sparseon << 6 | encoded
 * expthresh, where 63 means "auto" (-1). */
#define HDR1 ((uint8_t)(((HLL_REGWIDTH - 1) << 5) | HLL_LOG2M))
#define HDR2 ((uint8_t)((1 << 6) | 63))

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* MurmurHash3_x64_128 with seed 0 on exactly 8 bytes: no 16-byte block,
 * the 8 bytes are the tail's k1 (read little-endian), k2 stays 0. */
uint64_t hll_hash_bigint(int64_t id)
{
    uint64_t k1 = (uint64_t)id; /* the bytes' little-endian value */
    uint64_t h1 = 0, h2 = 0;
    k1 *= 0x87c37b91114253d5ULL;
    k1 = rotl64(k1, 31);
    k1 *= 0x4cf5ad432745937fULL;
    h1 ^= k1;
    h1 ^= 8;
    h2 ^= 8;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    return h1;
}

#define M64A 0xc6a4a7935bd1e995ULL
#define SEED64A 0xadc83b19ULL

uint64_t hll_redis_hash64(uint64_t k)
{
    uint64_t h = SEED64A ^ (8 * M64A);
    k *= M64A;
    k ^= k >> 47;
    k *= M64A;
    h ^= k;
    h *= M64A;
    h ^= h >> 47;
    h *= M64A;
    h ^= h >> 47;
    return h;
}

/* x ^= x >> 47 is its own inverse (47 >= 32); M64A is odd, so it has an
 * inverse modulo 2^64 (Newton's iteration doubles the correct bits). */
static uint64_t inverse_m64a(void)
{
    uint64_t x = M64A;
    for (int i = 0; i < 6; i++)
        x *= 2 - M64A * x;
    return x;
}

uint64_t hll_redis_preimage(uint64_t h)
{
    const uint64_t inv = inverse_m64a();
    h ^= h >> 47;
    h *= inv;
    h ^= h >> 47;
    h *= inv;
    uint64_t k = h ^ (SEED64A ^ (8 * M64A));
    k *= inv;
    k ^= k >> 47;
    k *= inv;
    return k;
}

void hll_le64_put(unsigned char out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(v >> (8 * i));
}

uint64_t hll_le64_get(const unsigned char in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)in[i] << (8 * i);
    return v;
}

bool hll_hash_sets_register(uint64_t h)
{
    return (h >> HLL_LOG2M) != 0;
}

size_t hll_redis_member(int64_t id, unsigned char out[HLL_MEMBER_MAX])
{
    return hll_redis_member_of_hash(hll_hash_bigint(id), out);
}

size_t hll_redis_member_of_hash(uint64_t h, unsigned char out[HLL_MEMBER_MAX])
{
    hll_le64_put(out, hll_redis_preimage(h));
    if (hll_hash_sets_register(h))
        return 8;
    out[8] = 0;
    return 9;
}

int hll_redis_member_hash(const void *m, size_t len, uint64_t *h)
{
    if (len != 8 && len != 9)
        return -1;
    *h = hll_redis_hash64(hll_le64_get(m));
    return len == 9 && hll_hash_sets_register(*h) ? -1 : 0;
}

/* The extension's rule: register = low log2m bits; value = 1 + trailing
 * zeros of the remaining bits (0 when they are all zero), at most 31. */
void hll_registers_add(uint8_t regs[HLL_REGISTERS], uint64_t h)
{
    uint64_t rest = h >> HLL_LOG2M;
    if (!rest)
        return;
    unsigned v = (unsigned)__builtin_ctzll(rest) + 1;
    if (v > HLL_REG_MAX)
        v = HLL_REG_MAX;
    uint8_t *r = &regs[h & (HLL_REGISTERS - 1)];
    if (*r < v)
        *r = (uint8_t)v;
}

static size_t put_header(unsigned char *out, int type)
{
    out[0] = (unsigned char)(0x10 | type);
    out[1] = HDR1;
    out[2] = HDR2;
    return HLL_HEADER;
}

/* The extension keeps explicit hashes sorted as signed integers (for
 * compatibility with its Java implementation). */
static int cmp_signed(const void *a, const void *b)
{
    int64_t x = (int64_t) * (const uint64_t *)a, y = (int64_t) * (const uint64_t *)b;
    return (x > y) - (x < y);
}

void hll_from_hashes(uint64_t *hashes, size_t n, hll_sketch *out)
{
    if (n > 1) /* hashes may be NULL when n is 0 */
        qsort(hashes, n, sizeof *hashes, cmp_signed);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || hashes[m - 1] != hashes[i])
            hashes[m++] = hashes[i];
    if (m == 0) {
        out->len = put_header(out->bytes, HLL_EMPTY);
        out->cardinality = 0.0;
        return;
    }
    if (m <= HLL_EXPLICIT_MAX) {
        /* Big-endian 8-byte words after the header. */
        size_t o = put_header(out->bytes, HLL_EXPLICIT);
        for (size_t i = 0; i < m; i++)
            for (int s = 56; s >= 0; s -= 8)
                out->bytes[o++] = (unsigned char)(hashes[i] >> s);
        out->len = o;
        out->cardinality = (double)m;
        return;
    }
    /* Past the threshold the extension folds every hash into registers. */
    static _Thread_local uint8_t regs[HLL_REGISTERS];
    memset(regs, 0, sizeof regs);
    for (size_t i = 0; i < m; i++)
        hll_registers_add(regs, hashes[i]);
    hll_from_registers(regs, out);
}

/* A big-endian bit stream: each value's bits, most significant first. */
typedef struct {
    unsigned char *out;
    size_t pos;
    uint64_t acc;
    unsigned nacc;
} bit_writer;

static void bits_put(bit_writer *w, uint32_t v, unsigned nbits)
{
    w->acc = (w->acc << nbits) | v;
    w->nacc += nbits;
    while (w->nacc >= 8) {
        w->nacc -= 8;
        w->out[w->pos++] = (unsigned char)(w->acc >> w->nacc);
    }
}

/* The last partial byte is padded with zero bits. */
static size_t bits_end(bit_writer *w)
{
    if (w->nacc)
        w->out[w->pos++] = (unsigned char)(w->acc << (8 - w->nacc));
    w->nacc = 0;
    return w->pos;
}

typedef struct {
    const unsigned char *in;
    size_t len, pos;
    uint64_t acc;
    unsigned nacc;
} bit_reader;

static uint32_t bits_get(bit_reader *r, unsigned nbits)
{
    while (r->nacc < nbits) {
        r->acc = (r->acc << 8) | (r->pos < r->len ? r->in[r->pos] : 0);
        r->pos++;
        r->nacc += 8;
    }
    r->nacc -= nbits;
    return (uint32_t)(r->acc >> r->nacc) & ((1u << nbits) - 1);
}

void hll_from_registers(const uint8_t regs[HLL_REGISTERS], hll_sketch *out)
{
    size_t filled = 0;
    for (size_t i = 0; i < HLL_REGISTERS; i++)
        filled += regs[i] != 0;
    bool sparse = filled <= HLL_SPARSE_MAX;
    bit_writer w = {out->bytes, put_header(out->bytes, sparse ? HLL_SPARSE : HLL_FULL), 0, 0};
    for (uint32_t i = 0; i < HLL_REGISTERS; i++) {
        if (!sparse)
            bits_put(&w, regs[i], HLL_REGWIDTH);
        else if (regs[i])
            bits_put(&w, (i << HLL_REGWIDTH) | regs[i], HLL_LOG2M + HLL_REGWIDTH);
    }
    out->len = bits_end(&w);
    out->cardinality = hll_registers_cardinality(regs);
}

/* The extension's multiset_card for registers, operation for operation so
 * that the double is the same: the bias-corrected harmonic mean, linear
 * counting while small, and the correction for the 2^(log2m + 30)-element
 * hash space while large. */
double hll_registers_cardinality(const uint8_t regs[HLL_REGISTERS])
{
    const int nregs = (int)HLL_REGISTERS;
    const uint64_t two_to_l = 1ULL << ((HLL_REG_MAX - 1) + HLL_LOG2M);
    const double large_cutoff = (double)two_to_l / 30.0;
    double sum = 0.0;
    int zeros = 0;
    for (int i = 0; i < nregs; i++) {
        sum += 1.0 / (double)(1L << regs[i]);
        zeros += regs[i] == 0;
    }
    double gamma_m2 = (0.7213 / (1.0 + 1.079 / nregs)) * nregs * nregs;
    double estimator = gamma_m2 / sum;
    if (zeros != 0 && estimator < (5.0 * nregs / 2.0))
        return (size_t)nregs * log((double)nregs / zeros);
    if (estimator <= large_cutoff)
        return estimator;
    return (-1 * (int64_t)two_to_l) * log(1.0 - (estimator / (double)two_to_l));
}

int hll_sketch_decode(const unsigned char *b, size_t len, uint64_t hashes[HLL_EXPLICIT_MAX],
                      size_t *nhashes, uint8_t regs[HLL_REGISTERS])
{
    if (len < HLL_HEADER || (b[0] >> 4) != 1 || b[1] != HDR1 || b[2] != HDR2)
        return -1;
    size_t body = len - HLL_HEADER;
    bit_reader r = {b + HLL_HEADER, body, 0, 0, 0};
    switch (b[0] & 0xf) {
    case HLL_EMPTY:
        if (body)
            return -1;
        *nhashes = 0;
        return HLL_DECODED_HASHES;
    case HLL_EXPLICIT:
        if (body % 8 || body / 8 > HLL_EXPLICIT_MAX)
            return -1;
        *nhashes = body / 8;
        for (size_t i = 0; i < *nhashes; i++) {
            uint64_t h = 0;
            for (size_t k = 0; k < 8; k++) /* big-endian words */
                h = (h << 8) | b[HLL_HEADER + 8 * i + k];
            hashes[i] = h;
        }
        return HLL_DECODED_HASHES;
    case HLL_SPARSE: {
        const unsigned w = HLL_LOG2M + HLL_REGWIDTH;
        size_t n = body * 8 / w;
        if (body * 8 - n * w >= 8)
            return -1;
        memset(regs, 0, HLL_REGISTERS);
        for (size_t i = 0; i < n; i++) {
            uint32_t v = bits_get(&r, w);
            regs[v >> HLL_REGWIDTH] = (uint8_t)(v & HLL_REG_MAX);
        }
        return HLL_DECODED_REGISTERS;
    }
    case HLL_FULL:
        if (body != ((size_t)HLL_REGISTERS * HLL_REGWIDTH + 7) / 8)
            return -1;
        for (size_t i = 0; i < HLL_REGISTERS; i++)
            regs[i] = (uint8_t)bits_get(&r, HLL_REGWIDTH);
        return HLL_DECODED_REGISTERS;
    default:
        return -1;
    }
}

int hll_sketch_cardinality(const unsigned char *b, size_t len, double *out)
{
    static _Thread_local uint64_t hashes[HLL_EXPLICIT_MAX];
    static _Thread_local uint8_t regs[HLL_REGISTERS];
    size_t n;
    int kind = hll_sketch_decode(b, len, hashes, &n, regs);
    if (kind < 0)
        return -1;
    *out = kind == HLL_DECODED_HASHES ? (double)n : hll_registers_cardinality(regs);
    return 0;
}

/* Redis's HyperLogLog string (hyperloglog.c): a 16-byte header "HYLL",
 * the encoding (0 dense, 1 sparse), 3 unused bytes, an 8-byte cached
 * count; then 16384 6-bit registers packed little-endian (dense), or
 * run-length opcodes (sparse): 00xxxxxx = xxxxxx+1 zero registers,
 * 01xxxxxx yyyyyyyy = xxxxxxyyyyyyyy+1 zero registers, 1vvvvvxx = xx+1
 * registers of value vvvvv+1. */
#define REDIS_HDR 16
#define REDIS_BITS 6

int hll_registers_from_redis(const unsigned char *s, size_t len, uint8_t regs[HLL_REGISTERS])
{
    if (len < REDIS_HDR || memcmp(s, "HYLL", 4) != 0)
        return -1;
    const unsigned char *p = s + REDIS_HDR;
    size_t n = len - REDIS_HDR;
    if (s[4] == 0) {
        if (n != ((size_t)HLL_REGISTERS * REDIS_BITS + 7) / 8)
            return -1;
        for (size_t i = 0; i < HLL_REGISTERS; i++) {
            size_t bit = i * REDIS_BITS, byte = bit / 8;
            unsigned fb = bit % 8;
            unsigned v = p[byte] >> fb;
            if (byte + 1 < n)
                v |= (unsigned)p[byte + 1] << (8 - fb);
            v &= (1u << REDIS_BITS) - 1;
            regs[i] = (uint8_t)(v > HLL_REG_MAX ? HLL_REG_MAX : v);
        }
        return 0;
    }
    if (s[4] != 1)
        return -1;
    size_t idx = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned op = p[i];
        size_t run;
        unsigned v = 0;
        if ((op & 0xc0) == 0) {
            run = (op & 0x3f) + 1;
        } else if ((op & 0xc0) == 0x40) {
            if (i + 1 >= n)
                return -1;
            run = (((size_t)(op & 0x3f) << 8) | p[++i]) + 1;
        } else {
            v = ((op >> 2) & 0x1f) + 1;
            run = (op & 0x3) + 1;
        }
        if (run > HLL_REGISTERS - idx)
            return -1;
        memset(regs + idx, v > HLL_REG_MAX ? HLL_REG_MAX : v, run);
        idx += run;
    }
    return idx == HLL_REGISTERS ? 0 : -1;
}

void hll_redis_dense_from_registers(const uint8_t regs[HLL_REGISTERS],
                                    unsigned char out[HLL_REDIS_DENSE_BYTES])
{
    memset(out, 0, HLL_REDIS_DENSE_BYTES);
    memcpy(out, "HYLL", 4); /* encoding 0: dense */
    /* The cached count is marked stale (the top bit of its last byte), so
     * the first PFCOUNT computes it from the registers. */
    out[15] = 0x80;
    unsigned char *p = out + REDIS_HDR;
    const size_t nbytes = HLL_REDIS_DENSE_BYTES - REDIS_HDR;
    for (size_t i = 0; i < HLL_REGISTERS; i++) {
        /* Redis's HLL_DENSE_SET_REGISTER: 6 bits from bit i * 6, least
         * significant bits first. */
        size_t bit = i * REDIS_BITS, byte = bit / 8;
        unsigned fb = bit % 8, v = regs[i];
        p[byte] |= (unsigned char)(v << fb);
        if (byte + 1 < nbytes)
            p[byte + 1] |= (unsigned char)(v >> (8 - fb));
    }
}
