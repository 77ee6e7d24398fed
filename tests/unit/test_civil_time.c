/*
 * test_civil_time.c — calendar arithmetic: day numbers, month lengths,
 * timestamp parsing at the boundaries where bucketing goes wrong.
 */
#include "lib/civil_time.h"
#include "tests/unit/unit.h"

#include <string.h>

START_TEST(days_round_trip)
{
    ck_assert_int_eq(days_from_civil(1970, 1, 1), 0);
    ck_assert_int_eq(days_from_civil(2023, 1, 1), 19358);
    ck_assert_int_eq(days_from_civil(1969, 12, 31), -1);
    for (int64_t d = -800000; d < 800000; d += 13) {
        civil_date c = civil_from_days(d);
        ck_assert_int_eq(days_from_civil(c.year, c.month, c.day), d);
    }
    civil_date c = civil_from_days(days_from_civil(2024, 2, 29));
    ck_assert_int_eq(c.year, 2024);
    ck_assert_int_eq(c.month, 2);
    ck_assert_int_eq(c.day, 29);
}
END_TEST

START_TEST(month_lengths)
{
    ck_assert_int_eq(days_in_month(2023, 1), 31);
    ck_assert_int_eq(days_in_month(2023, 2), 28);
    ck_assert_int_eq(days_in_month(2024, 2), 29);
    ck_assert_int_eq(days_in_month(1900, 2), 28);
    ck_assert_int_eq(days_in_month(2000, 2), 29);
    ck_assert_int_eq(days_in_month(2023, 4), 30);
    ck_assert_int_eq(days_in_month(2023, 13), 0);
}
END_TEST

START_TEST(month_index_round_trip)
{
    int y, m;
    month_from_index(month_index(2023, 1), &y, &m);
    ck_assert_int_eq(y, 2023);
    ck_assert_int_eq(m, 1);
    month_from_index(month_index(2022, 12) + 1, &y, &m);
    ck_assert_int_eq(y, 2023);
    ck_assert_int_eq(m, 1);
}
END_TEST

static int64_t parse(const char *s)
{
    int64_t ms = 0;
    ck_assert_msg(parse_utc_timestamp(s, strlen(s), &ms), "should parse: %s", s);
    return ms;
}

static void reject(const char *s)
{
    int64_t ms;
    ck_assert_msg(!parse_utc_timestamp(s, strlen(s), &ms), "should reject: %s", s);
}

START_TEST(timestamps)
{
    int64_t jan1 = days_from_civil(2023, 1, 1) * 86400000LL;
    ck_assert_int_eq(parse("2023-01-01 00:00:00"), jan1);
    ck_assert_int_eq(parse("2023-01-01 00:06:50.079000"), jan1 + 410079);
    ck_assert_int_eq(parse("2023-01-01T00:06:50.079Z"), jan1 + 410079);
    ck_assert_int_eq(parse("2023-01-01 00:00:00.9"), jan1 + 900);
    ck_assert_int_eq(parse("2023-01-01 00:00:00.123456789"), jan1 + 123);
    /* The last millisecond of a day stays on that day. */
    int64_t last = parse("2023-01-31 23:59:59.999000");
    ck_assert_int_eq(day_of_epoch_ms(last), days_from_civil(2023, 1, 31));
    ck_assert_int_eq(day_of_epoch_ms(last + 1), days_from_civil(2023, 2, 1));
    ck_assert_int_eq(day_of_epoch_ms(-1), -1);
    reject("2023-02-30 00:00:00");
    reject("2023-01-01 24:00:00");
    reject("2023-01-01");
    reject("2023-1-01 00:00:00");
    reject("2023-01-01 00:00:00.");
    reject("2023-01-01 00:00:00 extra");
    reject("");
}
END_TEST

Suite *suite_civil_time(void)
{
    Suite *s = suite_create("civil_time");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, days_round_trip);
    tcase_add_test(tc, month_lengths);
    tcase_add_test(tc, month_index_round_trip);
    tcase_add_test(tc, timestamps);
    suite_add_tcase(s, tc);
    return s;
}
