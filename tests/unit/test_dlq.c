/*
 * test_dlq.c — how much of a record a dead letter keeps (dlq_fit): whole
 * when it fits the dead-letter topic's limit, else cut so that key, value,
 * headers and framing stay within it, the key never taking more than half.
 */
#include "processors/dlq.h"
#include "tests/unit/unit.h"

START_TEST(fits_whole)
{
    size_t k, v;
    ck_assert_int_eq(dlq_fit(1000000, 300, 10, 500000, &k, &v), 0);
    ck_assert_uint_eq(k, 10);
    ck_assert_uint_eq(v, 500000);
    ck_assert_int_eq(dlq_fit(1000000, 300, 0, 0, &k, &v), 0);
    ck_assert_uint_eq(k + v, 0);
}
END_TEST

/* Whatever the sizes, a cut dead letter keeps within the limit with
 * every header the truncation adds. */
START_TEST(cut_within_limit)
{
    static const size_t keys[] = {0, 4, 1000, 400000, 600000, 1500000, 5000000};
    static const size_t values[] = {0, 3, 999000, 1040000, 1200000, 8000000};
    static const long long limits[] = {2000, 100000, 1000000, 1048588};
    for (size_t l = 0; l < sizeof limits / sizeof *limits; l++)
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            for (size_t j = 0; j < sizeof values / sizeof *values; j++) {
                size_t k, v;
                int r = dlq_fit(limits[l], 300, keys[i], values[j], &k, &v);
                ck_assert_int_ge(r, 0);
                ck_assert_uint_le(k, keys[i]);
                ck_assert_uint_le(v, values[j]);
                /* 512 framing, 300 headers, and the truncation's at
                 * most: names and values, sizes of 20 digits. */
                long long added = 18 + 4 + 22 + 20 + 24 + 64 + 26 + 20 + 28 + 64;
                ck_assert_int_le((long long)(k + v) + 300 + 512 + (r ? added : 0), limits[l]);
                if (r == 0) {
                    ck_assert_uint_eq(k, keys[i]);
                    ck_assert_uint_eq(v, values[j]);
                } else {
                    ck_assert_uint_le(k, (size_t)limits[l] / 2);
                    ck_assert(k < keys[i] || v < values[j]);
                    /* A key that is cut keeps about half of the room. */
                    ck_assert(k == keys[i] || k >= (size_t)(limits[l] - 300 - 512 - 2 * added) / 2);
                }
            }
}
END_TEST

START_TEST(small_key_kept)
{
    size_t k, v;
    ck_assert_int_eq(dlq_fit(1000000, 300, 5, 1200000, &k, &v), 1);
    ck_assert_uint_eq(k, 5);
    ck_assert_uint_gt(v, 990000);
}
END_TEST

START_TEST(headers_too_large)
{
    size_t k, v;
    ck_assert_int_eq(dlq_fit(1000, 600, 10, 10000, &k, &v), -1);
}
END_TEST

Suite *suite_dlq(void)
{
    Suite *s = suite_create("dlq");
    TCase *tc = tcase_create("fit");
    tcase_add_test(tc, fits_whole);
    tcase_add_test(tc, cut_within_limit);
    tcase_add_test(tc, small_key_kept);
    tcase_add_test(tc, headers_too_large);
    suite_add_tcase(s, tc);
    return s;
}
