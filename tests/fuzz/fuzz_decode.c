/*
 * fuzz_decode.c — libFuzzer target for what a hostile producer or registry
 * controls: the framing, the Avro body (decoded through writer→reader
 * plans of several writer schemas) and validation; and, for the same
 * input read as schema JSON, the schema parser and plan compiler.
 *
 * Every decoded string is read byte by byte, so ASan catches a span that
 * points outside the input. Built and run by `make fuzz` (tests/fuzz/run.sh).
 */
#include "consumers/avro_codec.h"
#include "consumers/avro_resolve.h"
#include "processors/validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An older and a newer writer of WebEvent (as the integration tests use). */
static const char older[] =
    "{\"type\":\"record\",\"name\":\"WebEvent\",\"namespace\":\"activity\",\"fields\":["
    "{\"name\":\"host\",\"type\":\"string\"},"
    "{\"name\":\"event_time\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"user_id\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"device_id\",\"type\":[\"null\",\"int\"],\"default\":null}]}";
static const char newer[] =
    "{\"type\":\"record\",\"name\":\"WebEvent\",\"namespace\":\"activity\",\"fields\":["
    "{\"name\":\"session\",\"type\":{\"type\":\"record\",\"name\":\"Session\",\"fields\":["
    "{\"name\":\"id\",\"type\":{\"type\":\"fixed\",\"name\":\"SessionId\",\"size\":8}},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"double\"]}}]}},"
    "{\"name\":\"url\",\"type\":[\"null\",\"string\",\"long\"],\"default\":null},"
    "{\"name\":\"referrer\",\"type\":[\"null\",\"bytes\"],\"default\":null},"
    "{\"name\":\"user_id\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"device_id\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"channel\",\"type\":{\"type\":\"enum\",\"name\":\"Channel\",\"symbols\":[\"WEB\","
    "\"APP\"]}},"
    "{\"name\":\"host\",\"type\":\"string\"},"
    "{\"name\":\"event_time\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
    "{\"name\":\"score\",\"type\":\"float\",\"default\":0.0}]}";
/* A recursive writer: a linked list before the host. */
static const char recursive[] =
    "{\"type\":\"record\",\"name\":\"WebEvent\",\"fields\":["
    "{\"name\":\"chain\",\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
    "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"Node\"}}]}},"
    "{\"name\":\"host\",\"type\":\"string\"},{\"name\":\"event_time\",\"type\":\"long\"}]}";

static avro_codec *codec;
static validation_rules rules;
static volatile unsigned sink;

static void touch(opt_str s)
{
    for (size_t i = 0; s.present && i < s.len; i++)
        sink += (unsigned char)s.ptr[i];
}

static void init(void)
{
    errbuf err = {{0}};
    codec = avro_codec_new(&err);
    if (!codec || avro_codec_add_schema(codec, 101, older, strlen(older), &err) ||
        avro_codec_add_schema(codec, 102, newer, strlen(newer), &err) ||
        avro_codec_add_schema(codec, 103, recursive, strlen(recursive), &err))
        abort();
    validation_defaults(&rules);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!codec)
        init();
    static const enum record_kind kinds[] = {RECORD_NONE, RECORD_WEB_EVENT, RECORD_DEVICE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        decoded_record rec;
        errbuf err = {{0}};
        if (avro_codec_decode(codec, data, size, kinds[k], &rec, &err) != DECODE_OK)
            continue;
        if (rec.kind == RECORD_WEB_EVENT) {
            const web_event *ev = &rec.u.event;
            touch(ev->url);
            touch(ev->referrer);
            touch(ev->host);
            validate_event(&rules, ev, &err);
        } else if (rec.kind == RECORD_DEVICE) {
            const device_record *dev = &rec.u.device;
            touch(dev->browser_type);
            touch(dev->os_type);
            touch(dev->device_type);
            validate_device(&rules, dev, &err);
        }
    }
    /* The same bytes as a writer schema from a hostile registry. */
    if (size > 0 && (data[0] == '{' || data[0] == '[' || data[0] == '"')) {
        errbuf err = {{0}};
        if (avro_codec_add_schema(codec, 900, (const char *)data, size, &err) == 0) {
            unsigned char body[] = {0, 0, 0, 3, 0x84, 2, 'h', 'i', 2, 0, 0, 0, 0, 0, 0};
            decoded_record rec;
            avro_codec_decode(codec, body, sizeof body, RECORD_WEB_EVENT, &rec, &err);
            avro_codec_decode(codec, body, sizeof body, RECORD_DEVICE, &rec, &err);
        }
    }
    return 0;
}
