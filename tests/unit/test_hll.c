/*
 * test_hll.c — lib/hll: the extension's hash (against published values),
 * the Redis preimage, the four encodings at their thresholds, the
 * estimator on decoded bytes, and Redis's two HyperLogLog encodings.
 * Byte identity with the real extension and the real Redis is checked by
 * tests/integration/test_hll_format.sh.
 */
#include "lib/hll.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

static uint64_t next_rand(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seed-0 rows of the extension's regression data (sql/data/murmur_bigint.csv). */
START_TEST(hash_bigint_published_values)
{
    static const int64_t cases[][2] = {
        {5797898885857920721LL, -4071349394507855115LL},
        {-945726292679342924LL, -876529480041849111LL},
        {-844099673303054332LL, -3868039109288971138LL},
        {3902610103608179935LL, 7520803832632785353LL},
        {-9195789692800418047LL, 294743035609711154LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_uint_eq(hll_hash_bigint(cases[i][0]), (uint64_t)cases[i][1]);
}
END_TEST

START_TEST(redis_preimage_inverts)
{
    uint64_t s = 1;
    for (int i = 0; i < 100000; i++) {
        uint64_t h = next_rand(&s);
        ck_assert_uint_eq(hll_redis_hash64(hll_redis_preimage(h)), h);
    }
    ck_assert_uint_eq(hll_redis_hash64(hll_redis_preimage(0)), 0);
    ck_assert_uint_eq(hll_redis_hash64(hll_redis_preimage(UINT64_MAX)), UINT64_MAX);
    unsigned char b[8];
    hll_le64_put(b, 0x0102030405060708ULL);
    ck_assert_uint_eq(b[0], 8);
    ck_assert_uint_eq(hll_le64_get(b), 0x0102030405060708ULL);
}
END_TEST

START_TEST(redis_members)
{
    unsigned char m[HLL_MEMBER_MAX];
    uint64_t h;
    for (int64_t id = -1000; id < 1000; id++) {
        ck_assert_uint_eq(hll_redis_member(id, m), 8);
        ck_assert_int_eq(hll_redis_member_hash(m, 8, &h), 0);
        ck_assert_uint_eq(h, hll_hash_bigint(id));
        ck_assert_int_eq(hll_redis_member_hash(m, 9, &h), -1); /* a 9th byte only for zero rests */
    }
    /* A member of a hash whose upper 50 bits are zero (built, not found: odds 2^-50). */
    hll_le64_put(m, hll_redis_preimage(5));
    m[8] = 0;
    ck_assert_int_eq(hll_redis_member_hash(m, 9, &h), 0);
    ck_assert_uint_eq(h, 5);
    ck_assert_int_eq(hll_redis_member_hash(m, 7, &h), -1);
}
END_TEST

START_TEST(thresholds)
{
    ck_assert_uint_eq(HLL_EXPLICIT_MAX, 1280);
    ck_assert_uint_eq(HLL_SPARSE_MAX, 4311);
    ck_assert_uint_eq(HLL_MAX_BYTES, 10243);
}
END_TEST

START_TEST(empty_and_explicit)
{
    static hll_sketch sk;
    hll_from_hashes(NULL, 0, &sk);
    ck_assert_uint_eq(sk.len, 3);
    ck_assert_mem_eq(sk.bytes, HLL_EMPTY_BYTES, 3);
    ck_assert(sk.cardinality == 0.0);

    /* Signed order: the negative hash first; duplicates kept once. */
    uint64_t h[] = {5, (uint64_t)-2, 5, 0x0102030405060708ULL};
    hll_from_hashes(h, 4, &sk);
    static const unsigned char want[] = {0x12, 0x8e, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xfe, 0,    0,    0,    0,    0,    0,    0,
                                         5,    1,    2,    3,    4,    5,    6,    7,    8};
    ck_assert_uint_eq(sk.len, sizeof want);
    ck_assert_mem_eq(sk.bytes, want, sizeof want);
    ck_assert(sk.cardinality == 3.0);
    double c;
    ck_assert_int_eq(hll_sketch_cardinality(sk.bytes, sk.len, &c), 0);
    ck_assert(c == 3.0);
}
END_TEST

START_TEST(promotion_at_threshold)
{
    static uint64_t h[HLL_EXPLICIT_MAX + 1];
    static hll_sketch sk;
    uint64_t s = 7;
    for (size_t i = 0; i < HLL_EXPLICIT_MAX + 1; i++)
        h[i] = hll_hash_bigint((int64_t)next_rand(&s));
    hll_from_hashes(h, HLL_EXPLICIT_MAX, &sk);
    ck_assert_uint_eq(sk.bytes[0], 0x12);
    ck_assert_uint_eq(sk.len, 3 + 8 * HLL_EXPLICIT_MAX);
    s = 7;
    for (size_t i = 0; i < HLL_EXPLICIT_MAX + 1; i++)
        h[i] = hll_hash_bigint((int64_t)next_rand(&s));
    hll_from_hashes(h, HLL_EXPLICIT_MAX + 1, &sk);
    ck_assert_uint_eq(sk.bytes[0], 0x13);
    double c;
    ck_assert_int_eq(hll_sketch_cardinality(sk.bytes, sk.len, &c), 0);
    ck_assert(c == sk.cardinality);
    ck_assert(c > 1281 * 0.95 && c < 1281 * 1.05);
}
END_TEST

/* SPARSE while filled registers * 19 bits < 16384 * 5 bits, FULL after. */
START_TEST(sparse_full_switch)
{
    static uint8_t regs[HLL_REGISTERS];
    static hll_sketch sk;
    memset(regs, 0, sizeof regs);
    for (size_t i = 0; i < HLL_SPARSE_MAX; i++)
        regs[i * 3 % HLL_REGISTERS] = (uint8_t)(1 + i % HLL_REG_MAX);
    hll_from_registers(regs, &sk);
    ck_assert_uint_eq(sk.bytes[0], 0x13);
    ck_assert_uint_eq(sk.len, 3 + (HLL_SPARSE_MAX * 19 + 7) / 8);
    double c;
    ck_assert_int_eq(hll_sketch_cardinality(sk.bytes, sk.len, &c), 0);
    ck_assert(c == sk.cardinality);

    regs[1] = 31;
    hll_from_registers(regs, &sk);
    ck_assert_uint_eq(sk.bytes[0], 0x14);
    ck_assert_uint_eq(sk.len, 3 + 10240);
    /* Register 0 holds 1, register 1 holds 31: 00001 11111 ... */
    ck_assert_uint_eq(sk.bytes[3], 0x0f);
    ck_assert_uint_eq(sk.bytes[4] & 0xc0, 0xc0);
    ck_assert_int_eq(hll_sketch_cardinality(sk.bytes, sk.len, &c), 0);
    ck_assert(c == sk.cardinality);
}
END_TEST

START_TEST(register_rule)
{
    static uint8_t regs[HLL_REGISTERS];
    memset(regs, 0, sizeof regs);
    hll_registers_add(regs, (5ULL << HLL_LOG2M) | 7); /* rest 101: 1 + 0 zeros */
    ck_assert_uint_eq(regs[7], 1);
    hll_registers_add(regs, (8ULL << HLL_LOG2M) | 7); /* rest 1000: 1 + 3 */
    ck_assert_uint_eq(regs[7], 4);
    hll_registers_add(regs, (1ULL << 63) | 9); /* 49 zeros: clamped */
    ck_assert_uint_eq(regs[9], 31);
    hll_registers_add(regs, 11); /* rest all zero: no change */
    ck_assert_uint_eq(regs[11], 0);
    ck_assert(!hll_hash_sets_register(11));
    ck_assert(hll_hash_sets_register(1ULL << HLL_LOG2M));
}
END_TEST

START_TEST(malformed_sketches_refused)
{
    double c;
    ck_assert_int_eq(hll_sketch_cardinality((const unsigned char *)"\x11\x8e", 2, &c), -1);
    ck_assert_int_eq(hll_sketch_cardinality((const unsigned char *)"\x12\x8e\x7f\x01", 4, &c), -1);
    ck_assert_int_eq(hll_sketch_cardinality((const unsigned char *)"\x14\x8e\x7f\x01", 4, &c), -1);
    ck_assert_int_eq(hll_sketch_cardinality((const unsigned char *)"\x12\x8f\x7f", 3, &c), -1);
}
END_TEST

/* A Redis string built by hand: sparse opcodes, then the same registers dense. */
START_TEST(redis_encodings)
{
    static uint8_t regs[HLL_REGISTERS];
    unsigned char sp[16 + 6];
    memset(sp, 0, 16);
    memcpy(sp, "HYLL", 4);
    sp[4] = 1;
    sp[16] = 0x02;                /* 3 zero registers */
    sp[17] = 0x80 | (4 << 2) | 1; /* 2 registers of 5 */
    sp[18] = 0x40 | 0x3f;         /* XZERO, 16384 - 3 - 2 - 1 = 16378 */
    sp[19] = 0xf9;                /* 0x3ff9 + 1 = 16378 */
    sp[20] = 0x80 | (31 << 2);    /* 1 register of 32: clamped to 31 */
    ck_assert_int_eq(hll_registers_from_redis(sp, 21, regs), 0);
    ck_assert_uint_eq(regs[2], 0);
    ck_assert_uint_eq(regs[3], 5);
    ck_assert_uint_eq(regs[4], 5);
    ck_assert_uint_eq(regs[5], 0);
    ck_assert_uint_eq(regs[16383], 31);
    /* A run past the last register, a short string, a bad magic. */
    sp[19] = 0xfa;
    ck_assert_int_eq(hll_registers_from_redis(sp, 21, regs), -1);
    sp[19] = 0xf9;
    ck_assert_int_eq(hll_registers_from_redis(sp, 20, regs), -1);
    sp[0] = 'X';
    ck_assert_int_eq(hll_registers_from_redis(sp, 21, regs), -1);

    static unsigned char dense[16 + 12288];
    memset(dense, 0, sizeof dense);
    memcpy(dense, "HYLL", 4);
    /* Register 1 = 51 (bits 6..11), register 16383 = 7 (the last 6 bits). */
    dense[16] = (unsigned char)((51 & 3) << 6);
    dense[17] = (unsigned char)(51 >> 2);
    dense[16 + 12287] = (unsigned char)(7 << 2);
    ck_assert_int_eq(hll_registers_from_redis(dense, sizeof dense, regs), 0);
    ck_assert_uint_eq(regs[0], 0);
    ck_assert_uint_eq(regs[1], 31);
    ck_assert_uint_eq(regs[2], 0);
    ck_assert_uint_eq(regs[16383], 7);
    ck_assert_int_eq(hll_registers_from_redis(dense, sizeof dense - 1, regs), -1);
}
END_TEST

/* Rehydration's inverse of the sketch: every type decodes back to what
 * rebuilds the same bytes (hashes for EMPTY/EXPLICIT, registers past the
 * threshold), and the EXPLICIT hashes come back as the members that
 * hll_redis_member gives their ids. */
START_TEST(sketch_decode_round_trip)
{
    static uint64_t h[HLL_EXPLICIT_MAX * 4], back[HLL_EXPLICIT_MAX];
    static uint8_t regs[HLL_REGISTERS];
    static hll_sketch sk, again;
    size_t sizes[] = {
        0, 1, 2, 100, HLL_EXPLICIT_MAX, HLL_EXPLICIT_MAX + 1, 3000, HLL_EXPLICIT_MAX * 4};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        uint64_t s = 11 + t;
        for (size_t i = 0; i < sizes[t]; i++)
            h[i] = hll_hash_bigint((int64_t)next_rand(&s));
        hll_from_hashes(h, sizes[t], &sk);
        size_t n = 99;
        int kind = hll_sketch_decode(sk.bytes, sk.len, back, &n, regs);
        if (sizes[t] <= HLL_EXPLICIT_MAX) {
            ck_assert_int_eq(kind, HLL_DECODED_HASHES);
            ck_assert_uint_eq(n, sizes[t]);
            hll_from_hashes(back, n, &again);
        } else {
            ck_assert_int_eq(kind, HLL_DECODED_REGISTERS);
            hll_from_registers(regs, &again);
        }
        ck_assert_uint_eq(again.len, sk.len);
        ck_assert_int_eq(memcmp(again.bytes, sk.bytes, sk.len), 0);
    }
    /* An EXPLICIT hash comes back as its id's member. */
    uint64_t s = 5;
    int64_t id = (int64_t)next_rand(&s);
    h[0] = hll_hash_bigint(id);
    hll_from_hashes(h, 1, &sk);
    size_t n;
    ck_assert_int_eq(hll_sketch_decode(sk.bytes, sk.len, back, &n, regs), HLL_DECODED_HASHES);
    unsigned char m1[HLL_MEMBER_MAX], m2[HLL_MEMBER_MAX];
    size_t l1 = hll_redis_member(id, m1), l2 = hll_redis_member_of_hash(back[0], m2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_int_eq(memcmp(m1, m2, l1), 0);
    /* Not sketches. */
    ck_assert_int_eq(
        hll_sketch_decode((const unsigned char *)"\x12\x8e\x7f\x01", 4, back, &n, regs), -1);
    ck_assert_int_eq(hll_sketch_decode((const unsigned char *)"xyz", 3, back, &n, regs), -1);
}
END_TEST

/* Registers written as Redis's dense string read back the same through the
 * Redis decoder (the real Redis's PFCOUNT of such a string:
 * tests/integration/test_hll_format.sh). */
START_TEST(redis_dense_round_trip)
{
    static uint8_t regs[HLL_REGISTERS], back[HLL_REGISTERS];
    static unsigned char dense[HLL_REDIS_DENSE_BYTES];
    uint64_t s = 3;
    for (size_t i = 0; i < HLL_REGISTERS; i++)
        regs[i] = (uint8_t)(next_rand(&s) % (HLL_REG_MAX + 1));
    regs[0] = HLL_REG_MAX;
    regs[HLL_REGISTERS - 1] = HLL_REG_MAX;
    hll_redis_dense_from_registers(regs, dense);
    ck_assert_uint_eq(HLL_REDIS_DENSE_BYTES, 16 + 12288);
    ck_assert_int_eq(memcmp(dense, "HYLL", 4), 0);
    ck_assert_uint_eq(dense[4], 0);
    ck_assert_uint_eq(dense[15] & 0x80, 0x80);
    ck_assert_int_eq(hll_registers_from_redis(dense, sizeof dense, back), 0);
    ck_assert_int_eq(memcmp(regs, back, sizeof regs), 0);
}
END_TEST

Suite *suite_hll(void)
{
    Suite *s = suite_create("hll");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hash_bigint_published_values);
    tcase_add_test(tc, redis_preimage_inverts);
    tcase_add_test(tc, redis_members);
    tcase_add_test(tc, thresholds);
    tcase_add_test(tc, empty_and_explicit);
    tcase_add_test(tc, promotion_at_threshold);
    tcase_add_test(tc, sparse_full_switch);
    tcase_add_test(tc, register_rule);
    tcase_add_test(tc, malformed_sketches_refused);
    tcase_add_test(tc, redis_encodings);
    tcase_add_test(tc, sketch_decode_round_trip);
    tcase_add_test(tc, redis_dense_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
