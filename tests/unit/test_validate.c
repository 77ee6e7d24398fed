/*
 * test_validate.c — record validation limits: key strings against
 * --max-key-bytes (a PostgreSQL btree entry), other strings against
 * --max-field-bytes, and the event-time range the rules may be set to.
 */
#include "processors/validate.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

static opt_str str_of(const char *s, size_t len)
{
    return (opt_str){s, len, true};
}

static web_event event_with_host(const char *host, size_t len)
{
    web_event ev;
    memset(&ev, 0, sizeof ev);
    ev.host = str_of(host, len);
    ev.event_time_ms = 1672531200000LL; /* 2023-01-01 */
    return ev;
}

START_TEST(key_limit_is_inclusive)
{
    validation_rules r;
    validation_defaults(&r);
    char *host = malloc(r.max_key_bytes + 1);
    memset(host, 'a', r.max_key_bytes + 1);
    errbuf d = {{0}};
    web_event ev = event_with_host(host, r.max_key_bytes);
    ck_assert_ptr_null(validate_event(&r, &ev, &d));
    ev = event_with_host(host, r.max_key_bytes + 1);
    ck_assert_str_eq(validate_event(&r, &ev, &d), "oversized-key");
    ck_assert_ptr_nonnull(strstr(d.msg, "--max-key-bytes"));
    free(host);
}
END_TEST

START_TEST(field_limit_wins_when_smaller)
{
    validation_rules r;
    validation_defaults(&r);
    r.max_field_bytes = 100;
    char host[200];
    memset(host, 'h', sizeof host);
    errbuf d = {{0}};
    web_event ev = event_with_host(host, 101);
    ck_assert_str_eq(validate_event(&r, &ev, &d), "oversized-field");
    /* A url is not a key: only the field limit applies to it. */
    validation_defaults(&r);
    char *url = malloc(4000);
    memset(url, 'u', 4000);
    ev = event_with_host("x.example", 9);
    ev.url = str_of(url, 4000);
    ck_assert_ptr_null(validate_event(&r, &ev, &d));
    free(url);
}
END_TEST

START_TEST(browser_type_is_a_key)
{
    validation_rules r;
    validation_defaults(&r);
    r.max_key_bytes = 10;
    device_record dev;
    memset(&dev, 0, sizeof dev);
    errbuf d = {{0}};
    dev.browser_type = str_of("0123456789", 10);
    dev.os_type = str_of("an os name longer than ten bytes", 32);
    ck_assert_ptr_null(validate_device(&r, &dev, &d));
    dev.browser_type = str_of("0123456789A", 11);
    ck_assert_str_eq(validate_device(&r, &dev, &d), "oversized-key");
}
END_TEST

START_TEST(multibyte_key_counts_bytes)
{
    validation_rules r;
    validation_defaults(&r);
    r.max_key_bytes = 8;
    errbuf d = {{0}};
    web_event ev = event_with_host("\xf0\x9f\xa6\x8a\xf0\x9f\xa6\x8a", 8); /* two 4-byte chars */
    ck_assert_ptr_null(validate_event(&r, &ev, &d));
    ev = event_with_host("\xf0\x9f\xa6\x8a\xf0\x9f\xa6\x8a!", 9);
    ck_assert_str_eq(validate_event(&r, &ev, &d), "oversized-key");
}
END_TEST

START_TEST(event_time_range_bounds)
{
    validation_rules r;
    validation_defaults(&r);
    errbuf e = {{0}};
    ck_assert_int_eq(validation_rules_check(&r, &e), 0);
    ck_assert_int_eq(validation_parse_time("0001-01-01", &r.min_event_time_ms), 0);
    ck_assert_int_eq(validation_parse_time("9999-12-31", &r.max_event_time_ms), 0);
    ck_assert_int_eq(validation_rules_check(&r, &e), 0);
    /* Year 0 or 10000 cannot be written as YYYYMM in a key. */
    r.min_event_time_ms -= 1;
    ck_assert_int_eq(validation_rules_check(&r, &e), -1);
    validation_defaults(&r);
    r.max_event_time_ms = r.min_event_time_ms;
    ck_assert_int_eq(validation_rules_check(&r, &e), -1);
}
END_TEST

Suite *suite_validate(void)
{
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("limits");
    tcase_add_test(tc, key_limit_is_inclusive);
    tcase_add_test(tc, field_limit_wins_when_smaller);
    tcase_add_test(tc, browser_type_is_a_key);
    tcase_add_test(tc, multibyte_key_counts_bytes);
    tcase_add_test(tc, event_time_range_bounds);
    suite_add_tcase(s, tc);
    return s;
}
