/*
 * avro_codec.c — Avro encode/decode of web events and devices (see
 * avro_codec.h).
 *
 * Field positions are looked up by name once, when the codec is built, so
 * the per-record path is index-based and reordering fields in a schema file
 * cannot silently swap values. The reader rejects bytes left over after a
 * record: a body that decodes but does not end where the record ends was not
 * written with the schema its id names.
 */
#include "consumers/avro_codec.h"

#include "consumers/framing.h"
#include "src/embedded.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EV_URL, EV_REFERRER, EV_USER_ID, EV_DEVICE_ID, EV_HOST, EV_EVENT_TIME, EV_NFIELDS };
enum { DV_DEVICE_ID, DV_BROWSER, DV_OS, DV_TYPE, DV_UPDATED_AT, DV_NFIELDS };

static const char *const event_fields[EV_NFIELDS] = {"url",       "referrer", "user_id",
                                                     "device_id", "host",     "event_time"};
static const char *const device_fields[DV_NFIELDS] = {"device_id", "browser_type", "os_type",
                                                      "device_type", "updated_at"};

typedef struct {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    bool has_value;
    size_t index[8];
} kind_codec;

struct avro_codec {
    kind_codec event;
    kind_codec device;
    avro_reader_t reader;
    avro_writer_t writer;
    char *wbuf;
    size_t wcap;
    char *scratch; /* NUL-terminated copies of strings being encoded */
    size_t scratch_cap;
};

uint32_t avro_codec_schema_id(enum record_kind kind)
{
    return (uint32_t)kind;
}

const char *decode_status_name(enum decode_status status)
{
    switch (status) {
    case DECODE_OK:
        return "ok";
    case DECODE_TOO_SHORT:
        return "too-short";
    case DECODE_BAD_MAGIC:
        return "bad-magic-byte";
    case DECODE_UNKNOWN_SCHEMA:
        return "unknown-schema-id";
    case DECODE_BAD_BODY:
        return "undecodable-body";
    case DECODE_TRAILING_BYTES:
        return "trailing-bytes";
    }
    return "unknown";
}

static int kind_init(kind_codec *kc, const char *name, const char *const *fields, int nfields,
                     errbuf *err)
{
    size_t len;
    char path[128];
    snprintf(path, sizeof path, "schemas/%s.avsc", name);
    const char *text = embedded_file(path, &len);
    if (!text) {
        err_set(err, "schema %s is not embedded in this build", name);
        return -1;
    }
    if (avro_schema_from_json_length(text, len, &kc->schema)) {
        err_set(err, "schema %s does not parse: %s", name, avro_strerror());
        return -1;
    }
    for (int i = 0; i < nfields; i++) {
        int idx = avro_schema_record_field_get_index(kc->schema, fields[i]);
        if (idx < 0) {
            err_set(err, "schema %s has no field %s", name, fields[i]);
            return -1;
        }
        kc->index[i] = (size_t)idx;
    }
    kc->iface = avro_generic_class_from_schema(kc->schema);
    if (!kc->iface || avro_generic_value_new(kc->iface, &kc->value)) {
        err_set(err, "cannot build a value for schema %s: %s", name, avro_strerror());
        return -1;
    }
    kc->has_value = true;
    return 0;
}

static void kind_free(kind_codec *kc)
{
    if (kc->has_value)
        avro_value_decref(&kc->value);
    if (kc->iface)
        avro_value_iface_decref(kc->iface);
    if (kc->schema)
        avro_schema_decref(kc->schema);
}

avro_codec *avro_codec_new(errbuf *err)
{
    avro_codec *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (kind_init(&c->event, "web_event", event_fields, EV_NFIELDS, err) ||
        kind_init(&c->device, "device", device_fields, DV_NFIELDS, err)) {
        avro_codec_free(c);
        return NULL;
    }
    c->reader = avro_reader_memory("", 0);
    c->wcap = 4096;
    c->wbuf = malloc(c->wcap);
    c->writer = avro_writer_memory(c->wbuf, (int64_t)c->wcap);
    if (!c->reader || !c->wbuf || !c->writer) {
        err_set(err, "out of memory");
        avro_codec_free(c);
        return NULL;
    }
    return c;
}

void avro_codec_free(avro_codec *c)
{
    if (!c)
        return;
    kind_free(&c->event);
    kind_free(&c->device);
    if (c->reader)
        avro_reader_free(c->reader);
    if (c->writer)
        avro_writer_free(c->writer);
    free(c->wbuf);
    free(c->scratch);
    free(c);
}

/* ---- encoding ---------------------------------------------------------- */

static int set_string(avro_codec *c, avro_value_t *v, const char *s, size_t len)
{
    if (len + 1 > c->scratch_cap) {
        size_t cap = (len + 1) * 2;
        char *p = realloc(c->scratch, cap);
        if (!p)
            return -1;
        c->scratch = p;
        c->scratch_cap = cap;
    }
    memcpy(c->scratch, s, len);
    c->scratch[len] = '\0';
    return avro_value_set_string_len(v, c->scratch, len + 1);
}

/* Unions in our schemas are always ["null", T]: branch 0 is null. */
static int set_opt_string(avro_codec *c, avro_value_t *field, opt_str s)
{
    avro_value_t branch;
    if (!s.present)
        return avro_value_set_branch(field, 0, &branch) || avro_value_set_null(&branch);
    return avro_value_set_branch(field, 1, &branch) || set_string(c, &branch, s.ptr, s.len);
}

static int set_opt_long(avro_value_t *field, opt_long l)
{
    avro_value_t branch;
    if (!l.present)
        return avro_value_set_branch(field, 0, &branch) || avro_value_set_null(&branch);
    return avro_value_set_branch(field, 1, &branch) || avro_value_set_long(&branch, l.value);
}

static int field_at(kind_codec *kc, int which, avro_value_t *out)
{
    return avro_value_get_by_index(&kc->value, kc->index[which], out, NULL);
}

static int write_framed(avro_codec *c, kind_codec *kc, enum record_kind kind, const void **out,
                        size_t *len, errbuf *err)
{
    size_t body = 0;
    if (avro_value_sizeof(&kc->value, &body)) {
        err_set(err, "cannot size record: %s", avro_strerror());
        return -1;
    }
    size_t need = body + FRAMING_HEADER_SIZE;
    if (need > c->wcap) {
        size_t cap = need * 2;
        char *p = realloc(c->wbuf, cap);
        if (!p) {
            err_set(err, "out of memory");
            return -1;
        }
        c->wbuf = p;
        c->wcap = cap;
    }
    framing_write_header((unsigned char *)c->wbuf, avro_codec_schema_id(kind));
    avro_writer_memory_set_dest(c->writer, c->wbuf + FRAMING_HEADER_SIZE,
                                (int64_t)(c->wcap - FRAMING_HEADER_SIZE));
    if (avro_value_write(c->writer, &kc->value)) {
        err_set(err, "cannot encode record: %s", avro_strerror());
        return -1;
    }
    *out = c->wbuf;
    *len = FRAMING_HEADER_SIZE + (size_t)avro_writer_tell(c->writer);
    return 0;
}

int avro_codec_encode_event(avro_codec *c, const web_event *ev, const void **out, size_t *len,
                            errbuf *err)
{
    kind_codec *kc = &c->event;
    avro_value_t f;
    int rc = field_at(kc, EV_URL, &f) || set_opt_string(c, &f, ev->url);
    rc = rc || field_at(kc, EV_REFERRER, &f) || set_opt_string(c, &f, ev->referrer);
    rc = rc || field_at(kc, EV_USER_ID, &f) || set_opt_long(&f, ev->user_id);
    rc = rc || field_at(kc, EV_DEVICE_ID, &f) || set_opt_long(&f, ev->device_id);
    rc = rc || field_at(kc, EV_HOST, &f) || set_string(c, &f, ev->host.ptr, ev->host.len);
    rc = rc || field_at(kc, EV_EVENT_TIME, &f) || avro_value_set_long(&f, ev->event_time_ms);
    if (rc) {
        err_set(err, "cannot set event fields: %s", avro_strerror());
        return -1;
    }
    return write_framed(c, kc, RECORD_WEB_EVENT, out, len, err);
}

int avro_codec_encode_device(avro_codec *c, const device_record *dev, const void **out, size_t *len,
                             errbuf *err)
{
    kind_codec *kc = &c->device;
    avro_value_t f;
    int rc = field_at(kc, DV_DEVICE_ID, &f) || avro_value_set_long(&f, dev->device_id);
    rc = rc || field_at(kc, DV_BROWSER, &f) || set_opt_string(c, &f, dev->browser_type);
    rc = rc || field_at(kc, DV_OS, &f) || set_opt_string(c, &f, dev->os_type);
    rc = rc || field_at(kc, DV_TYPE, &f) || set_opt_string(c, &f, dev->device_type);
    rc = rc || field_at(kc, DV_UPDATED_AT, &f) || set_opt_long(&f, dev->updated_at_ms);
    if (rc) {
        err_set(err, "cannot set device fields: %s", avro_strerror());
        return -1;
    }
    return write_framed(c, kc, RECORD_DEVICE, out, len, err);
}

/* ---- decoding ---------------------------------------------------------- */

static int get_string(avro_value_t *v, opt_str *out)
{
    const char *p;
    size_t size;
    if (avro_value_get_string(v, &p, &size))
        return -1;
    out->ptr = p;
    out->len = size ? size - 1 : 0; /* avro-c counts the NUL terminator */
    out->present = true;
    return 0;
}

static int get_opt_string(avro_value_t *field, opt_str *out)
{
    avro_value_t branch;
    if (avro_value_get_current_branch(field, &branch))
        return -1;
    if (avro_value_get_type(&branch) == AVRO_NULL) {
        *out = (opt_str){0};
        return 0;
    }
    return get_string(&branch, out);
}

static int get_opt_long(avro_value_t *field, opt_long *out)
{
    avro_value_t branch;
    if (avro_value_get_current_branch(field, &branch))
        return -1;
    if (avro_value_get_type(&branch) == AVRO_NULL) {
        *out = (opt_long){0};
        return 0;
    }
    out->present = true;
    return avro_value_get_long(&branch, &out->value);
}

static int extract_event(kind_codec *kc, web_event *ev)
{
    avro_value_t f;
    return field_at(kc, EV_URL, &f) || get_opt_string(&f, &ev->url) ||
           field_at(kc, EV_REFERRER, &f) || get_opt_string(&f, &ev->referrer) ||
           field_at(kc, EV_USER_ID, &f) || get_opt_long(&f, &ev->user_id) ||
           field_at(kc, EV_DEVICE_ID, &f) || get_opt_long(&f, &ev->device_id) ||
           field_at(kc, EV_HOST, &f) || get_string(&f, &ev->host) ||
           field_at(kc, EV_EVENT_TIME, &f) || avro_value_get_long(&f, &ev->event_time_ms);
}

static int extract_device(kind_codec *kc, device_record *dev)
{
    avro_value_t f;
    return field_at(kc, DV_DEVICE_ID, &f) || avro_value_get_long(&f, &dev->device_id) ||
           field_at(kc, DV_BROWSER, &f) || get_opt_string(&f, &dev->browser_type) ||
           field_at(kc, DV_OS, &f) || get_opt_string(&f, &dev->os_type) ||
           field_at(kc, DV_TYPE, &f) || get_opt_string(&f, &dev->device_type) ||
           field_at(kc, DV_UPDATED_AT, &f) || get_opt_long(&f, &dev->updated_at_ms);
}

enum decode_status avro_codec_decode(avro_codec *c, const void *buf, size_t len,
                                     enum record_kind expect_kind, decoded_record *out, errbuf *err)
{
    uint32_t id;
    const unsigned char *body;
    size_t body_len;
    switch (framing_parse(buf, len, &id, &body, &body_len)) {
    case FRAMING_OK:
        break;
    case FRAMING_TOO_SHORT:
        err_set(err, "record of %zu bytes is shorter than the 5-byte framing", len);
        return DECODE_TOO_SHORT;
    case FRAMING_BAD_MAGIC:
        err_set(err, "first byte is 0x%02x, not the framing's magic byte 0",
                *(const unsigned char *)buf);
        return DECODE_BAD_MAGIC;
    }
    kind_codec *kc;
    if (id == RECORD_WEB_EVENT)
        kc = &c->event;
    else if (id == RECORD_DEVICE)
        kc = &c->device;
    else
        kc = NULL;
    if (!kc || (expect_kind != RECORD_NONE && (uint32_t)expect_kind != id)) {
        err_set(err, "schema id %u is not one this topic accepts", id);
        return DECODE_UNKNOWN_SCHEMA;
    }
    avro_reader_memory_set_source(c->reader, (const char *)body, (int64_t)body_len);
    if (avro_value_read(c->reader, &kc->value)) {
        err_set(err, "Avro body does not decode with schema id %u: %s", id, avro_strerror());
        return DECODE_BAD_BODY;
    }
    char extra;
    if (avro_read(c->reader, &extra, 1) == 0) {
        err_set(err, "bytes left after an Avro record of schema id %u", id);
        return DECODE_TRAILING_BYTES;
    }
    out->kind = (enum record_kind)id;
    int rc = id == RECORD_WEB_EVENT ? extract_event(kc, &out->u.event)
                                    : extract_device(kc, &out->u.device);
    if (rc) {
        err_set(err, "decoded record of schema id %u has unexpected types", id);
        return DECODE_BAD_BODY;
    }
    return DECODE_OK;
}
