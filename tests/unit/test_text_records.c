/*
 * test_text_records.c — CSV rows and JSON objects into events and devices:
 * header mapping, null conventions, integer and timestamp rules, the
 * rejection reasons, and record-type detection.
 */
#include "consumers/text_records.h"
#include "tests/unit/unit.h"

#include <string.h>

/* 2023-01-01 00:06:50.079 UTC */
#define T_2023_01_01_000650_079 1672531610079LL

/* Parses "header\nrow\n" and converts the row; the reader stays alive
 * (the record borrows from it) until the fixture is freed. */
typedef struct {
    csv_reader *r;
    text_csv_header h;
    csv_record row;
    errbuf err;
    int rc;
} csv_case;

static void csv_case_open(csv_case *c, enum record_kind kind, const char *text)
{
    memset(c, 0, sizeof *c);
    c->r = csv_reader_from_buffer(text, strlen(text));
    ck_assert_ptr_nonnull(c->r);
    csv_record header;
    ck_assert_int_eq(csv_reader_next(c->r, &header, &c->err), CSV_OK);
    ck_assert_msg(text_csv_header_init(&c->h, kind, &header, &c->err) == 0, "header: %s",
                  c->err.msg);
    ck_assert_int_eq(csv_reader_next(c->r, &c->row, &c->err), CSV_OK);
}

static void csv_case_close(csv_case *c)
{
    csv_reader_free(c->r);
}

/* The case behind event_from(): its strings must outlive the call, so it
 * is freed by the next call or by the test's teardown. */
static csv_case current;

static void teardown(void)
{
    csv_case_close(&current);
    current.r = NULL;
}

static int event_from(const char *text, web_event *ev, errbuf *err)
{
    teardown();
    csv_case_open(&current, RECORD_WEB_EVENT, text);
    return text_event_from_csv(&current.h, &current.row, ev, err);
}

static void assert_str(opt_str s, const char *want)
{
    if (!want) {
        ck_assert_msg(!s.present, "expected null, got '%.*s'", (int)s.len, s.ptr);
        return;
    }
    ck_assert_msg(s.present, "expected '%s', got null", want);
    ck_assert_int_eq(s.len, strlen(want));
    ck_assert(memcmp(s.ptr, want, s.len) == 0);
}

#define EV_HEADER "url,referrer,user_id,device_id,host,event_time\n"

START_TEST(test_header_in_another_order_with_extra_columns)
{
    csv_case c;
    csv_case_open(&c, RECORD_WEB_EVENT,
                  "event_time, Host ,extra,device_id,URL,user_id,referrer\n"
                  "2023-01-01 00:06:50.079000,www.eczachly.com,ignored,-42,/blog,1234,"
                  "https://google.com/\n");
    ck_assert_int_eq(c.h.ncols, 7);
    web_event ev;
    ck_assert_msg(text_event_from_csv(&c.h, &c.row, &ev, &c.err) == 0, "%s", c.err.msg);
    assert_str(ev.url, "/blog");
    assert_str(ev.referrer, "https://google.com/");
    assert_str(ev.host, "www.eczachly.com");
    ck_assert(ev.user_id.present);
    ck_assert_int_eq(ev.user_id.value, 1234);
    ck_assert(ev.device_id.present);
    ck_assert_int_eq(ev.device_id.value, -42);
    ck_assert_int_eq(ev.event_time_ms, T_2023_01_01_000650_079);
    csv_case_close(&c);
}
END_TEST

START_TEST(test_missing_column_is_named)
{
    const char *text = "url,referrer,user_id,host,event_time\n";
    csv_reader *r = csv_reader_from_buffer(text, strlen(text));
    csv_record header;
    errbuf err = {{0}};
    ck_assert_int_eq(csv_reader_next(r, &header, &err), CSV_OK);
    text_csv_header h;
    ck_assert_int_eq(text_csv_header_init(&h, RECORD_WEB_EVENT, &header, &err), -1);
    ck_assert_msg(strstr(err.msg, "no device_id column") != NULL, "%s", err.msg);
    csv_reader_free(r);

    const char *dup = "device_id,browser_type,os_type,device_type,os_type\n";
    r = csv_reader_from_buffer(dup, strlen(dup));
    ck_assert_int_eq(csv_reader_next(r, &header, &err), CSV_OK);
    ck_assert_int_eq(text_csv_header_init(&h, RECORD_DEVICE, &header, &err), -1);
    ck_assert_str_eq(err.msg, "the header has the os_type column twice");
    csv_reader_free(r);
}
END_TEST

START_TEST(test_empty_ids_are_null)
{
    web_event ev;
    errbuf err = {{0}};
    ck_assert_int_eq(event_from(EV_HEADER "/,,,,example.com,2023-01-01 00:06:50\n", &ev, &err), 0);
    ck_assert(!ev.user_id.present);
    ck_assert(!ev.device_id.present);
    /* Unquoted empty text is null; a quoted "" is the empty string. */
    ck_assert(!ev.referrer.present);
    ck_assert_int_eq(ev.event_time_ms, T_2023_01_01_000650_079 - 79);

    ck_assert_int_eq(
        event_from(EV_HEADER "\"\",\"\",\"\",7,example.com,2023-01-01 00:06:50\n", &ev, &err), 0);
    assert_str(ev.url, "");
    assert_str(ev.referrer, "");
    ck_assert(!ev.user_id.present); /* empty is null for ids even when quoted */
    ck_assert(ev.device_id.present);
    ck_assert_int_eq(ev.device_id.value, 7);
}
END_TEST

START_TEST(test_bad_integers_rejected_with_reason)
{
    static const struct {
        const char *value;
        const char *reason;
    } cases[] = {
        {"1.5", "user_id '1.5' is not an integer"},
        {"abc", "user_id 'abc' is not an integer"},
        {"-", "user_id '-' is not an integer"},
        {"+5", "user_id '+5' is not an integer"},
        {" 5", "user_id ' 5' is not an integer"},
        {"12e3", "user_id '12e3' is not an integer"},
        {"9223372036854775808",
         "user_id '9223372036854775808' is outside the 64-bit integer range"},
        {"-9223372036854775809",
         "user_id '-9223372036854775809' is outside the 64-bit integer range"},
        {"99999999999999999999x", "user_id '99999999999999999999x' is not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, EV_HEADER "/,,\"%s\",,example.com,2023-01-01 00:00:00\n",
                 cases[i].value);
        web_event ev;
        errbuf err = {{0}};
        ck_assert_int_eq(event_from(text, &ev, &err), -1);
        ck_assert_str_eq(err.msg, cases[i].reason);
    }
}
END_TEST

START_TEST(test_int64_bounds)
{
    web_event ev;
    errbuf err = {{0}};
    ck_assert_int_eq(event_from(EV_HEADER "/,,9223372036854775807,-9223372036854775808,h,"
                                          "2023-01-01 00:00:00\n",
                                &ev, &err),
                     0);
    ck_assert(ev.user_id.value == INT64_MAX);
    ck_assert(ev.device_id.value == INT64_MIN);

    int64_t v = 0;
    ck_assert(text_parse_int64("-0", 2, &v) && v == 0);
    ck_assert(text_parse_int64("007", 3, &v) && v == 7);
    ck_assert(!text_parse_int64("", 0, &v));
    ck_assert(!text_parse_int64("1 ", 2, &v));
}
END_TEST

START_TEST(test_timestamps)
{
    web_event ev;
    errbuf err = {{0}};
    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,h,2023-01-01 00:06:50.079000\n", &ev, &err), 0);
    ck_assert_int_eq(ev.event_time_ms, T_2023_01_01_000650_079);
    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,h,2023-01-01 00:06:50\n", &ev, &err), 0);
    ck_assert_int_eq(ev.event_time_ms, T_2023_01_01_000650_079 - 79);
    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,h,2024-02-29T23:59:59.9Z\n", &ev, &err), 0);
    ck_assert_int_eq(ev.event_time_ms, 1709251199900LL);

    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,h,2023-02-30 00:00:00\n", &ev, &err), -1);
    ck_assert_msg(strstr(err.msg, "event_time '2023-02-30 00:00:00' is not a valid UTC "
                                  "timestamp") != NULL,
                  "%s", err.msg);
    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,h,2023-01-01 24:00:00\n", &ev, &err), -1);
    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,h,1672531610079\n", &ev, &err), -1);
    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,h,\n", &ev, &err), -1);
    ck_assert_str_eq(err.msg, "event_time is empty");
}
END_TEST

START_TEST(test_host_required_and_text_checked)
{
    web_event ev;
    errbuf err = {{0}};
    ck_assert_int_eq(event_from(EV_HEADER "/,,1,1,,2023-01-01 00:00:00\n", &ev, &err), -1);
    ck_assert_str_eq(err.msg, "host is empty, but it is required");
    ck_assert_int_eq(event_from(EV_HEADER "/\xff,,1,1,h,2023-01-01 00:00:00\n", &ev, &err), -1);
    ck_assert_msg(strstr(err.msg, "url is not valid UTF-8") != NULL, "%s", err.msg);
    /* A row with a different number of fields than the header. */
    ck_assert_int_eq(event_from(EV_HEADER "/a,b,/c,,1,1,h,2023-01-01 00:00:00\n", &ev, &err), -1);
    ck_assert_str_eq(err.msg, "8 fields, but the header has 6 columns");
}
END_TEST

START_TEST(test_devices_from_csv)
{
    csv_case c;
    csv_case_open(&c, RECORD_DEVICE,
                  "device_id,browser_type,os_type,device_type\n"
                  "-2147042689,Firefox,,\"Samsung \"\"SM\"\"\"\n");
    ck_assert_int_eq(c.h.col[4], -1); /* updated_at is optional */
    device_record dev;
    ck_assert_msg(text_device_from_csv(&c.h, &c.row, &dev, &c.err) == 0, "%s", c.err.msg);
    ck_assert_int_eq(dev.device_id, -2147042689LL);
    assert_str(dev.browser_type, "Firefox");
    assert_str(dev.os_type, NULL);
    assert_str(dev.device_type, "Samsung \"SM\"");
    ck_assert(!dev.updated_at_ms.present);
    csv_case_close(&c);

    csv_case_open(&c, RECORD_DEVICE,
                  "updated_at,device_id,browser_type,os_type,device_type\n"
                  "2023-01-01 00:06:50.079,5,\"\",Linux,Other\n");
    ck_assert_int_eq(text_device_from_csv(&c.h, &c.row, &dev, &c.err), 0);
    ck_assert_int_eq(dev.device_id, 5);
    assert_str(dev.browser_type, NULL); /* device strings: empty is null, quoted or not */
    ck_assert(dev.updated_at_ms.present);
    ck_assert_int_eq(dev.updated_at_ms.value, T_2023_01_01_000650_079);
    csv_case_close(&c);

    csv_case_open(&c, RECORD_DEVICE, "device_id,browser_type,os_type,device_type\n,a,b,c\n");
    ck_assert_int_eq(text_device_from_csv(&c.h, &c.row, &dev, &c.err), -1);
    ck_assert_str_eq(c.err.msg, "device_id is empty, but it is required");
    csv_case_close(&c);
}
END_TEST

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(v != NULL, "bad test JSON: %s", jerr.text);
    return v;
}

START_TEST(test_json_event)
{
    json_t *obj = parse("{\"url\":\"/x\",\"referrer\":null,\"user_id\":null,\"device_id\":\"42\","
                        "\"host\":\"a.com\",\"event_time\":1672531610079}");
    web_event ev;
    errbuf err = {{0}};
    ck_assert_msg(text_event_from_json(obj, &ev, &err) == 0, "%s", err.msg);
    assert_str(ev.url, "/x");
    assert_str(ev.referrer, NULL);
    ck_assert(!ev.user_id.present);
    ck_assert(ev.device_id.present);
    ck_assert_int_eq(ev.device_id.value, 42);
    assert_str(ev.host, "a.com");
    ck_assert_int_eq(ev.event_time_ms, T_2023_01_01_000650_079);
    json_decref(obj);

    /* Missing optional keys are null; timestamp strings work too. */
    obj = parse("{\"host\":\"b\",\"user_id\":-9223372036854775808,"
                "\"event_time\":\"2023-01-01 00:06:50.079000\"}");
    ck_assert_int_eq(text_event_from_json(obj, &ev, &err), 0);
    ck_assert(!ev.url.present && !ev.referrer.present && !ev.device_id.present);
    ck_assert(ev.user_id.present && ev.user_id.value == INT64_MIN);
    ck_assert_int_eq(ev.event_time_ms, T_2023_01_01_000650_079);
    json_decref(obj);
}
END_TEST

START_TEST(test_json_rejections)
{
    static const struct {
        const char *json;
        const char *reason;
    } cases[] = {
        {"{\"host\":\"h\",\"event_time\":0,\"user_id\":1.5}",
         "user_id must be an integer, a numeric string or null, not a fractional number"},
        {"{\"host\":\"h\",\"event_time\":0,\"user_id\":\"abc\"}",
         "user_id 'abc' is not an integer"},
        {"{\"host\":\"h\",\"event_time\":0,\"device_id\":\"99999999999999999999\"}",
         "device_id '99999999999999999999' is outside the 64-bit integer range"},
        {"{\"host\":\"h\",\"event_time\":0,\"user_id\":true}",
         "user_id must be an integer, a numeric string or null, not a boolean"},
        {"{\"event_time\":0}", "host is missing, but it is required"},
        {"{\"host\":\"\",\"event_time\":0}", "host is empty, but it is required"},
        {"{\"host\":7,\"event_time\":0}", "host must be a string, not an integer"},
        {"{\"host\":\"h\"}", "event_time is missing, but it is required"},
        {"{\"host\":\"h\",\"event_time\":1.5e12}",
         "event_time must be a timestamp string or integer epoch milliseconds, not a "
         "fractional number"},
        {"{\"host\":\"h\",\"event_time\":\"2023-02-30 00:00:00\"}",
         "event_time '2023-02-30 00:00:00' is not a valid UTC timestamp "
         "(YYYY-MM-DD HH:MM:SS[.ffffff])"},
        {"{\"host\":\"h\",\"event_time\":0,\"url\":[]}",
         "url must be a string or null, not an array"},
        {"{\"host\":\"a\\u0000b\",\"event_time\":0}",
         "host is not valid UTF-8 text (or contains a NUL byte)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *obj = parse(cases[i].json);
        web_event ev;
        errbuf err = {{0}};
        ck_assert_msg(text_event_from_json(obj, &ev, &err) == -1, "accepted %s", cases[i].json);
        ck_assert_str_eq(err.msg, cases[i].reason);
        json_decref(obj);
    }
    json_t *arr = parse("[1]");
    web_event ev;
    errbuf err = {{0}};
    ck_assert_int_eq(text_event_from_json(arr, &ev, &err), -1);
    ck_assert_str_eq(err.msg, "expected a JSON object, got an array");
    json_decref(arr);
}
END_TEST

START_TEST(test_json_device)
{
    json_t *obj = parse("{\"device_id\":\"-7\",\"browser_type\":\"Chrome\",\"os_type\":\"\","
                        "\"updated_at\":1672531610079}");
    device_record dev;
    errbuf err = {{0}};
    ck_assert_msg(text_device_from_json(obj, &dev, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(dev.device_id, -7);
    assert_str(dev.browser_type, "Chrome");
    assert_str(dev.os_type, NULL);
    assert_str(dev.device_type, NULL);
    ck_assert(dev.updated_at_ms.present);
    ck_assert_int_eq(dev.updated_at_ms.value, T_2023_01_01_000650_079);
    json_decref(obj);

    obj = parse("{\"device_id\":null,\"browser_type\":\"Chrome\"}");
    ck_assert_int_eq(text_device_from_json(obj, &dev, &err), -1);
    ck_assert_str_eq(err.msg, "device_id is null, but it is required");
    json_decref(obj);
}
END_TEST

static enum record_kind kind_of_header(const char *text)
{
    csv_reader *r = csv_reader_from_buffer(text, strlen(text));
    csv_record header;
    errbuf err;
    ck_assert_int_eq(csv_reader_next(r, &header, &err), CSV_OK);
    enum record_kind k = text_kind_from_csv_header(&header);
    csv_reader_free(r);
    return k;
}

static enum record_kind kind_of_json(const char *text)
{
    json_t *obj = parse(text);
    enum record_kind k = text_kind_from_json(obj);
    json_decref(obj);
    return k;
}

START_TEST(test_record_type_detection)
{
    ck_assert_int_eq(kind_of_header("url,referrer,user_id,device_id,host,event_time\n"),
                     RECORD_WEB_EVENT);
    ck_assert_int_eq(kind_of_header("\xEF\xBB\xBF"
                                    "event_time,host\n"),
                     RECORD_WEB_EVENT);
    ck_assert_int_eq(kind_of_header("device_id,browser_type,os_type,device_type\n"), RECORD_DEVICE);
    ck_assert_int_eq(kind_of_header("device_id,os_type\n"), RECORD_NONE);
    ck_assert_int_eq(kind_of_header("a,b,c\n"), RECORD_NONE);

    ck_assert_int_eq(kind_of_json("{\"host\":\"h\",\"event_time\":1,\"device_id\":2}"),
                     RECORD_WEB_EVENT);
    ck_assert_int_eq(kind_of_json("{\"device_id\":2,\"browser_type\":null}"), RECORD_DEVICE);
    ck_assert_int_eq(kind_of_json("{\"host\":\"h\"}"), RECORD_NONE);
    ck_assert_int_eq(kind_of_json("[]"), RECORD_NONE);

    enum record_kind k = RECORD_NONE;
    errbuf err = {{0}};
    ck_assert_int_eq(text_kind_from_name("web_event", &k, &err), 0);
    ck_assert_int_eq(k, RECORD_WEB_EVENT);
    ck_assert_int_eq(text_kind_from_name("device", &k, &err), 0);
    ck_assert_int_eq(k, RECORD_DEVICE);
    ck_assert_int_eq(text_kind_from_name("devices", &k, &err), -1);
    ck_assert_msg(strstr(err.msg, "web_event, device or user_profile") != NULL, "%s", err.msg);
    ck_assert_str_eq(text_kind_name(RECORD_DEVICE), "device");
}
END_TEST

Suite *suite_text_records(void)
{
    Suite *s = suite_create("text_records");
    TCase *tc = tcase_create("convert");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_header_in_another_order_with_extra_columns);
    tcase_add_test(tc, test_missing_column_is_named);
    tcase_add_test(tc, test_empty_ids_are_null);
    tcase_add_test(tc, test_bad_integers_rejected_with_reason);
    tcase_add_test(tc, test_int64_bounds);
    tcase_add_test(tc, test_timestamps);
    tcase_add_test(tc, test_host_required_and_text_checked);
    tcase_add_test(tc, test_devices_from_csv);
    tcase_add_test(tc, test_json_event);
    tcase_add_test(tc, test_json_rejections);
    tcase_add_test(tc, test_json_device);
    tcase_add_test(tc, test_record_type_detection);
    suite_add_tcase(s, tc);
    return s;
}
