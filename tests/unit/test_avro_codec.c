/*
 * test_avro_codec.c — framing and Avro round trips, and the ways a record
 * is refused (each with the reason the dead-letter topic will carry).
 */
#include "consumers/avro_codec.h"
#include "consumers/framing.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

static opt_str S(const char *s)
{
    return (opt_str){s, strlen(s), true};
}

START_TEST(event_round_trip)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    const char host[] = "we\"ird{host},\\\n\ttab";
    web_event ev = {.url = S("/a,b"),
                    .referrer = {0},
                    .user_id = {444502572952128450LL, true},
                    .device_id = {-2147042689LL, true},
                    .host = S(host),
                    .event_time_ms = 1672531610079LL};
    const void *buf;
    size_t len;
    ck_assert_int_eq(avro_codec_encode_event(c, &ev, &buf, &len, &err), 0);
    const unsigned char *b = buf;
    ck_assert_int_eq(b[0], 0);
    ck_assert_int_eq(b[4], RECORD_WEB_EVENT);
    char *copy = malloc(len);
    memcpy(copy, buf, len);
    decoded_record rec;
    ck_assert_int_eq(avro_codec_decode(c, copy, len, RECORD_WEB_EVENT, &rec, &err), DECODE_OK);
    ck_assert_int_eq(rec.kind, RECORD_WEB_EVENT);
    ck_assert(rec.u.event.host.len == strlen(host));
    ck_assert(memcmp(rec.u.event.host.ptr, host, strlen(host)) == 0);
    ck_assert(rec.u.event.user_id.present);
    ck_assert(rec.u.event.user_id.value == 444502572952128450LL);
    ck_assert(rec.u.event.device_id.value == -2147042689LL);
    ck_assert(!rec.u.event.referrer.present);
    ck_assert(rec.u.event.url.present && rec.u.event.url.len == 4);
    ck_assert(rec.u.event.event_time_ms == 1672531610079LL);

    /* Anonymous traffic: null user and device. */
    ev.user_id = (opt_long){0};
    ev.device_id = (opt_long){0};
    ck_assert_int_eq(avro_codec_encode_event(c, &ev, &buf, &len, &err), 0);
    memcpy(copy, buf, len);
    ck_assert_int_eq(avro_codec_decode(c, copy, len, RECORD_NONE, &rec, &err), DECODE_OK);
    ck_assert(!rec.u.event.user_id.present);
    ck_assert(!rec.u.event.device_id.present);
    free(copy);
    avro_codec_free(c);
}
END_TEST

START_TEST(device_round_trip)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    device_record dev = {.device_id = -1247630128,
                         .browser_type = S("Amazon Silk"),
                         .os_type = S("Android"),
                         .device_type = S("Kindle Fire HDX 7\" WiFi"),
                         .updated_at_ms = {0}};
    const void *buf;
    size_t len;
    ck_assert_int_eq(avro_codec_encode_device(c, &dev, &buf, &len, &err), 0);
    decoded_record rec;
    ck_assert_int_eq(avro_codec_decode(c, buf, len, RECORD_DEVICE, &rec, &err), DECODE_OK);
    ck_assert(rec.u.device.device_id == -1247630128);
    ck_assert(rec.u.device.device_type.len == strlen("Kindle Fire HDX 7\" WiFi"));
    ck_assert(!rec.u.device.updated_at_ms.present);
    /* A device record on the events topic is refused: a Device cannot be
     * read as a WebEvent (it has no host). */
    ck_assert_int_eq(avro_codec_decode(c, buf, len, RECORD_WEB_EVENT, &rec, &err),
                     DECODE_INCOMPATIBLE_SCHEMA);
    ck_assert_str_eq(decode_status_name(DECODE_INCOMPATIBLE_SCHEMA), "incompatible-schema");
    avro_codec_free(c);
}
END_TEST

START_TEST(refusals)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    decoded_record rec;
    unsigned char shortbuf[3] = {0, 0, 0};
    ck_assert_int_eq(avro_codec_decode(c, shortbuf, 3, RECORD_NONE, &rec, &err), DECODE_TOO_SHORT);
    unsigned char magic[8] = {1, 0, 0, 0, 1, 0, 0, 0};
    ck_assert_int_eq(avro_codec_decode(c, magic, 8, RECORD_NONE, &rec, &err), DECODE_BAD_MAGIC);
    unsigned char unknown[8] = {0, 0, 0, 0, 99, 0, 0, 0};
    ck_assert_int_eq(avro_codec_decode(c, unknown, 8, RECORD_NONE, &rec, &err),
                     DECODE_UNKNOWN_SCHEMA);
    ck_assert_str_eq(decode_status_name(DECODE_UNKNOWN_SCHEMA), "unknown-schema-id");

    web_event ev = {.host = S("example.com"), .event_time_ms = 1};
    const void *buf;
    size_t len;
    ck_assert_int_eq(avro_codec_encode_event(c, &ev, &buf, &len, &err), 0);
    unsigned char *copy = malloc(len + 1);
    memcpy(copy, buf, len);
    /* Truncated body. */
    ck_assert_int_eq(avro_codec_decode(c, copy, len - 2, RECORD_NONE, &rec, &err), DECODE_BAD_BODY);
    /* A byte too many. */
    copy[len] = 7;
    ck_assert_int_eq(avro_codec_decode(c, copy, len + 1, RECORD_NONE, &rec, &err),
                     DECODE_TRAILING_BYTES);
    free(copy);
    avro_codec_free(c);
}
END_TEST

/* ---- schema evolution and hostile bodies ------------------------------ */

typedef struct {
    unsigned char b[4096];
    size_t n;
} wbuf;

static void put_id(wbuf *w, uint32_t id)
{
    framing_write_header(w->b, id);
    w->n = 5;
}

static void put_long(wbuf *w, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        w->b[w->n++] = (unsigned char)(z | 0x80);
        z >>= 7;
    }
    w->b[w->n++] = (unsigned char)z;
}

static void put_str(wbuf *w, const char *s)
{
    size_t l = strlen(s);
    put_long(w, (int64_t)l);
    memcpy(w->b + w->n, s, l);
    w->n += l;
}

static void put_raw(wbuf *w, const void *p, size_t l)
{
    memcpy(w->b + w->n, p, l);
    w->n += l;
}

/* An older writer: no url/referrer, int ids, host first. */
static const char old_writer[] =
    "{\"type\":\"record\",\"name\":\"WebEvent\",\"namespace\":\"activity\",\"fields\":["
    "{\"name\":\"host\",\"type\":\"string\"},"
    "{\"name\":\"user_id\",\"type\":[\"null\",\"int\"]},"
    "{\"name\":\"device_id\",\"type\":\"int\"},"
    "{\"name\":\"event_time\",\"type\":\"long\"}]}";

/* A newer writer: every other Avro type in extra fields, a widened url
 * union, bytes for referrer, micros for event_time, a recursive type. */
static const char new_writer[] =
    "{\"type\":\"record\",\"name\":\"WebEvent\",\"namespace\":\"activity\",\"fields\":["
    "{\"name\":\"flag\",\"type\":\"boolean\"},"
    "{\"name\":\"url\",\"type\":[\"null\",\"string\",\"long\"]},"
    "{\"name\":\"referrer\",\"type\":\"bytes\"},"
    "{\"name\":\"score\",\"type\":\"float\"},{\"name\":\"w\",\"type\":\"double\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"md5\",\"type\":{\"type\":\"fixed\",\"name\":\"M\",\"size\":4}},"
    "{\"name\":\"chain\",\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}},"
    "{\"name\":\"user_id\",\"type\":\"long\"},"
    "{\"name\":\"host\",\"type\":\"string\"},"
    "{\"name\":\"event_time\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}}]}";

START_TEST(evolution_older_writer)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    ck_assert_int_eq(avro_codec_add_schema(c, 10, old_writer, strlen(old_writer), &err), 0);
    wbuf w;
    put_id(&w, 10);
    put_str(&w, "old.example");
    put_long(&w, 1);
    put_long(&w, 123456); /* user_id int branch */
    put_long(&w, -77);    /* device_id int -> long */
    put_long(&w, 1672531610079LL);
    decoded_record rec;
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_OK);
    const web_event *ev = &rec.u.event;
    ck_assert(!ev->url.present && !ev->referrer.present); /* reader defaults */
    ck_assert(ev->user_id.present && ev->user_id.value == 123456);
    ck_assert(ev->device_id.present && ev->device_id.value == -77);
    ck_assert(ev->host.len == 11 && memcmp(ev->host.ptr, "old.example", 11) == 0);
    ck_assert(ev->event_time_ms == 1672531610079LL);
    /* An int that does not fit 32 bits is a bad body, not a silent wrap. */
    put_id(&w, 10);
    put_str(&w, "h");
    put_long(&w, 0);
    put_long(&w, 1LL << 40);
    put_long(&w, 1);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_BAD_BODY);
    avro_codec_free(c);
}
END_TEST

static void new_record(wbuf *w, int url_branch)
{
    put_id(w, 11);
    put_raw(w, "\1", 1); /* flag */
    put_long(w, url_branch);
    if (url_branch == 1)
        put_str(w, "/new?q={x}");
    else if (url_branch == 2)
        put_long(w, 42);
    put_str(w, "ref-bytes");
    put_raw(w, "\0\0\x80\x3f", 4);     /* score */
    put_raw(w, "\0\0\0\0\0\0\0\0", 8); /* w */
    put_long(w, 2);                    /* tags: one block of 2 */
    put_str(w, "a");
    put_str(w, "bb");
    put_long(w, 0);
    put_long(w, -1); /* attrs: a sized block of 1 */
    put_long(w, 3);
    put_str(w, "k");
    put_long(w, 5);
    put_long(w, 0);
    put_long(w, 1);        /* kind B */
    put_raw(w, "abcd", 4); /* md5 */
    put_long(w, 1);        /* chain: next = Node */
    put_long(w, 1);        /* next = Node */
    put_long(w, 0);        /* next = null */
    put_long(w, 9007199254740993LL);
    put_str(w, "new.example");
    put_long(w, 1672531610079123LL); /* micros */
}

START_TEST(evolution_newer_writer)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    ck_assert_msg(avro_codec_add_schema(c, 11, new_writer, strlen(new_writer), &err) == 0, "%s",
                  err.msg);
    wbuf w;
    new_record(&w, 1);
    decoded_record rec;
    ck_assert_msg(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err) == DECODE_OK, "%s",
                  err.msg);
    const web_event *ev = &rec.u.event;
    ck_assert(ev->url.present && ev->url.len == 10 && memcmp(ev->url.ptr, "/new?q={x}", 10) == 0);
    ck_assert(ev->referrer.present && ev->referrer.len == 9);
    ck_assert(ev->user_id.present && ev->user_id.value == 9007199254740993LL);
    ck_assert(!ev->device_id.present);
    ck_assert(ev->host.len == 11);
    ck_assert(ev->event_time_ms == 1672531610079LL);
    /* Null branch of the widened union: no url. */
    new_record(&w, 0);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_OK);
    ck_assert(!rec.u.event.url.present);
    /* The long branch cannot be read as [null, string]: this record only. */
    new_record(&w, 2);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err),
                     DECODE_SCHEMA_MISMATCH);
    ck_assert_str_eq(decode_status_name(DECODE_SCHEMA_MISMATCH), "schema-mismatch");
    /* Every truncation of a good record is a bad body, never a crash. */
    new_record(&w, 1);
    for (size_t cut = 5; cut < w.n; cut++)
        ck_assert_int_eq(avro_codec_decode(c, w.b, cut, RECORD_WEB_EVENT, &rec, &err),
                         DECODE_BAD_BODY);
    avro_codec_free(c);
}
END_TEST

START_TEST(incompatible_writers)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    const char *no_host = "{\"type\":\"record\",\"name\":\"WebEvent\",\"fields\":["
                          "{\"name\":\"event_time\",\"type\":\"long\"}]}";
    const char *long_host = "{\"type\":\"record\",\"name\":\"WebEvent\",\"fields\":["
                            "{\"name\":\"host\",\"type\":\"long\"},"
                            "{\"name\":\"event_time\",\"type\":\"long\"}]}";
    const char *not_record = "\"string\"";
    ck_assert_int_eq(avro_codec_add_schema(c, 20, no_host, strlen(no_host), &err), 0);
    ck_assert_int_eq(avro_codec_add_schema(c, 21, long_host, strlen(long_host), &err), 0);
    ck_assert_int_eq(avro_codec_add_schema(c, 22, not_record, strlen(not_record), &err), 0);
    ck_assert_int_ne(avro_codec_add_schema(c, 23, "{\"type\":\"nope\"}", 15, &err), 0);
    ck_assert_int_ne(avro_codec_add_schema(c, 23, "[\"null\",[\"int\"]]", 16, &err), 0);
    decoded_record rec;
    for (uint32_t id = 20; id <= 22; id++) {
        wbuf w;
        put_id(&w, id);
        put_long(&w, 1);
        put_long(&w, 1);
        ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err),
                         DECODE_INCOMPATIBLE_SCHEMA);
    }
    avro_codec_free(c);
}
END_TEST

START_TEST(hostile_bodies)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    const char *arr = "{\"type\":\"record\",\"name\":\"WebEvent\",\"fields\":["
                      "{\"name\":\"nulls\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
                      "{\"name\":\"host\",\"type\":\"string\"},"
                      "{\"name\":\"event_time\",\"type\":\"long\"}]}";
    ck_assert_int_eq(avro_codec_add_schema(c, 30, arr, strlen(arr), &err), 0);
    decoded_record rec;
    wbuf w;
    /* A host of 2^62 bytes: refused before anything is allocated. */
    put_id(&w, RECORD_WEB_EVENT);
    put_long(&w, 0);
    put_long(&w, 0);
    put_long(&w, 0);
    put_long(&w, 0);
    put_long(&w, 1LL << 62);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_BAD_BODY);
    /* A negative length. */
    w.n -= 9;
    put_long(&w, -3);
    put_raw(&w, "abc", 3);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_BAD_BODY);
    /* A union index out of range, an 11-byte varint. */
    put_id(&w, RECORD_WEB_EVENT);
    put_long(&w, 7);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_BAD_BODY);
    put_id(&w, RECORD_WEB_EVENT);
    put_raw(&w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_BAD_BODY);
    /* 2^62 array items that take no bytes: refused, not looped over. */
    put_id(&w, 30);
    put_long(&w, 1LL << 62);
    put_long(&w, 0);
    put_str(&w, "h");
    put_long(&w, 1);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_BAD_BODY);
    /* A few are fine. */
    put_id(&w, 30);
    put_long(&w, 3);
    put_long(&w, 0);
    put_str(&w, "h");
    put_long(&w, 1);
    ck_assert_int_eq(avro_codec_decode(c, w.b, w.n, RECORD_WEB_EVENT, &rec, &err), DECODE_OK);
    avro_codec_free(c);
}
END_TEST

Suite *suite_avro_codec(void)
{
    Suite *s = suite_create("avro_codec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, event_round_trip);
    tcase_add_test(tc, device_round_trip);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, evolution_older_writer);
    tcase_add_test(tc, evolution_newer_writer);
    tcase_add_test(tc, incompatible_writers);
    tcase_add_test(tc, hostile_bodies);
    suite_add_tcase(s, tc);
    return s;
}
