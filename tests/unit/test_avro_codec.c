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
    /* A device record on the events topic is refused. */
    ck_assert_int_eq(avro_codec_decode(c, buf, len, RECORD_WEB_EVENT, &rec, &err),
                     DECODE_UNKNOWN_SCHEMA);
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

Suite *suite_avro_codec(void)
{
    Suite *s = suite_create("avro_codec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, event_round_trip);
    tcase_add_test(tc, device_round_trip);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    return s;
}
