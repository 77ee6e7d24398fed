/*
 * test_rows.c — sink row building: array lengths per month, datelists
 * most recent first, datelist_int bits, COPY escaping of hostile hosts.
 */
#include "lib/civil_time.h"
#include "sinks/rows.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <string.h>

START_TEST(datelists)
{
    strbuf sb = {0};
    ck_assert_int_eq(rows_datelist(&sb, month_index(2023, 1), (1u << 0) | (1u << 4) | (1u << 30)),
                     0);
    ck_assert_str_eq(sb.data, "{2023-01-31,2023-01-05,2023-01-01}");
    sb.len = 0;
    ck_assert_int_eq(rows_datelist(&sb, month_index(2023, 1), 0), 0);
    ck_assert_str_eq(sb.data, "{}");
    strbuf_free(&sb);
}
END_TEST

START_TEST(host_row_february)
{
    int64_t hits[31] = {0}, uniq[31] = {0};
    hits[0] = 5;
    uniq[0] = 2;
    hits[27] = 1;
    hits[28] = 99; /* past February's end: must not appear */
    host_row row = {"a\tb\\c\nd", 7, month_index(2023, 2), hits, uniq, NULL, NULL};
    strbuf sb = {0};
    ck_assert_int_eq(rows_encode_host(&sb, &row), 0);
    ck_assert_str_eq(sb.data, "a\\tb\\\\c\\nd\t2023-02-01\t"
                              "{5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1}\t"
                              "{2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}\t"
                              "{2023-02-28,2023-02-01}\n");
    strbuf_free(&sb);
}
END_TEST

START_TEST(daily_row)
{
    strbuf sb = {0};
    const unsigned char sk[] = {0x11, 0x8e, 0x7f, 0x00, 0xff};
    ck_assert_int_eq(rows_encode_daily(&sb, "a\tb", 3, month_index(2024, 2), 9, sk, 5), 0);
    ck_assert_str_eq(sb.data, "a\\tb\t2024-02-09\t\\\\x118e7f00ff\n");
    strbuf_free(&sb);
}
END_TEST

START_TEST(user_rows)
{
    strbuf sb = {0};
    user_row r = {444502572952128450LL, month_index(2024, 2), {"Chrome", 6, true}, (1u << 28) | 1u};
    ck_assert_int_eq(rows_encode_user(&sb, &r), 0);
    ck_assert_str_eq(sb.data, "444502572952128450\tChrome\t2024-02-01\t{2024-02-29,2024-02-01}"
                              "\t268435457\n");
    sb.len = 0;
    user_row n = {1, month_index(2023, 1), {0}, 1u << 30};
    ck_assert_int_eq(rows_encode_user(&sb, &n), 0);
    ck_assert_str_eq(sb.data, "1\t\\N\t2023-01-01\t{2023-01-31}\t1073741824\n");
    sb.len = 0;
    ck_assert_int_eq(rows_encode_user_key(&sb, -5, month_index(2022, 12), (1u << 30) | 2u), 0);
    ck_assert_str_eq(sb.data, "-5\t2022-12-01\t{2022-12-31,2022-12-02}\t1073741826\n");
    /* The extremes of the hand-written formatting. */
    sb.len = 0;
    ck_assert_int_eq(rows_encode_user_key(&sb, INT64_MIN, month_index(999, 3), 1u), 0);
    ck_assert_str_eq(sb.data, "-9223372036854775808\t0999-03-01\t{0999-03-01}\t1\n");
    sb.len = 0;
    ck_assert_int_eq(rows_datelist(&sb, month_index(9999, 12), 0x7fffffffu), 0);
    ck_assert_int_eq((int)sb.len, 2 + 31 * 10 + 30);
    ck_assert(strncmp(sb.data, "{9999-12-31,9999-12-30,", 23) == 0);
    strbuf_free(&sb);
}
END_TEST

/* activity_user_masks lines: the entry spelled as the user's Redis value
 * spells it, so rehydration gives that value back. */
START_TEST(user_mask_rows)
{
    strbuf sb = {0};
    user_mask_row d = {7, month_index(2023, 1), 'd', -2136667425LL, {0}, 5u};
    ck_assert_int_eq(rows_encode_user_mask(&sb, &d), 0);
    ck_assert_str_eq(sb.data, "7\t2023-01-01\t-2136667425\t-2136667425\t5\n");
    sb.len = 0;
    user_mask_row n = {7, month_index(2023, 1), 'n', 0, {0}, 1u << 30};
    ck_assert_int_eq(rows_encode_user_mask(&sb, &n), 0);
    ck_assert_str_eq(sb.data, "7\t2023-01-01\tnull\t\\N\t1073741824\n");
    sb.len = 0;
    user_mask_row b = {7, month_index(2023, 1), 'b', 0, {"Ch\t\xc3\xa9", 5, true}, 3u};
    ck_assert_int_eq(rows_encode_user_mask(&sb, &b), 0);
    ck_assert_str_eq(sb.data, "7\t2023-01-01\t~436809c3a9\t\\N\t3\n");
    sb.len = 0;
    user_mask_row nb = {7, month_index(2023, 1), 'b', 0, {0}, 3u};
    ck_assert_int_eq(rows_encode_user_mask(&sb, &nb), 0);
    ck_assert_str_eq(sb.data, "7\t2023-01-01\t~-\t\\N\t3\n");
    strbuf_free(&sb);
}
END_TEST

Suite *suite_rows(void)
{
    Suite *s = suite_create("rows");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, datelists);
    tcase_add_test(tc, host_row_february);
    tcase_add_test(tc, user_rows);
    tcase_add_test(tc, user_mask_rows);
    tcase_add_test(tc, daily_row);
    suite_add_tcase(s, tc);
    return s;
}
