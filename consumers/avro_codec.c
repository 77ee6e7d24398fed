/*
 * avro_codec.c — Avro encode/decode of web events and devices (see
 * avro_codec.h).
 *
 * Encoding: field positions are looked up by name once, when the codec is
 * built, so the per-record path is index-based and reordering fields in a
 * schema file cannot silently swap values.
 *
 * Decoding: a table of schema ids, each with its parsed writer schema and,
 * per reader kind, the compiled plan (or why there is none). The decoder
 * rejects bytes left over after a record: a body that decodes but does not
 * end where the record ends was not written with the schema its id names.
 */
#include "consumers/avro_codec.h"

#include "consumers/avro_flatten.h"
#include "consumers/avro_resolve.h"
#include "consumers/framing.h"
#include "consumers/dim_tables.h"
#include "lib/embedded.h"

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

/* User profiles: encoded nested (schemas/user_profile.avsc), read flat
 * (avro_flatten.h): user_id, name_first, ..., contact_value, updated_at. */
enum { PR_USER_ID, PR_ATTR0, PR_UPDATED_AT = PR_ATTR0 + PROFILE_NATTRS, PR_NFIELDS };
static const char *const profile_top_fields[] = {"user_id", "name", "address", "contact",
                                                 "updated_at"};

typedef struct {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    bool has_value;
    size_t index[8];
} kind_codec;

/* One schema id: its writer schema and the plans into each reader kind.
 * An entry without a writer schema is an id known not to exist. */
typedef struct {
    uint32_t id;
    bool local;
    avro_sch *writer;
    avro_plan *plan[4]; /* by record_kind */
    bool tried[4];
    char why[4][160];  /* why a kind has no plan */
    char missing[160]; /* why the id has no schema */
} id_entry;

/* Unknown ids cached at most this many; past it they are forgotten (a
 * flood of random ids must not grow memory or hammer the registry more
 * than once per id per eviction). */
#define MAX_UNKNOWN_IDS 4096

struct avro_codec {
    kind_codec event;
    kind_codec device;
    reader_schema rd_event;
    reader_schema rd_device;
    kind_codec profile;
    reader_schema rd_profile;
    char profile_names[PR_NFIELDS][32];
    id_entry *ids;
    size_t n_ids, cap_ids, n_unknown;
    size_t last; /* index of the last id used (records come in runs) */
    schema_registry *registry;
    unsigned long lookups;
    uint32_t write_id[4];
    avro_writer_t writer;
    char *wbuf;
    size_t wcap;
    char *scratch; /* NUL-terminated copies of strings being encoded */
    size_t scratch_cap;
};

static void drop_ids(avro_codec *c, bool all);

void avro_codec_set_write_id(avro_codec *c, enum record_kind kind, uint32_t id)
{
    if (kind == RECORD_WEB_EVENT || kind == RECORD_DEVICE || kind == RECORD_USER_PROFILE)
        c->write_id[kind] = id;
}

const char *avro_codec_schema_text(enum record_kind kind, size_t *len)
{
    if (kind == RECORD_USER_PROFILE)
        return embedded_file("schemas/user_profile.avsc", len);
    return embedded_file(kind == RECORD_DEVICE ? "schemas/device.avsc" : "schemas/web_event.avsc",
                         len);
}

/* Parses a writer schema, its nested records read as flat fields. */
static avro_sch *parse_writer(const char *json, size_t len, errbuf *err)
{
    size_t flen;
    char *flat = avro_flatten(json, len, &flen, err);
    if (!flat)
        return NULL;
    avro_sch *w = avro_sch_parse(flat, flen, err);
    free(flat);
    return w;
}

/* The profile's reader: the flattened user_profile.avsc. */
static int profile_reader_init(avro_codec *c, errbuf *err)
{
    const char *fields[PR_NFIELDS];
    snprintf(c->profile_names[PR_USER_ID], sizeof c->profile_names[0], "user_id");
    for (int i = 0; i < PROFILE_NATTRS; i++)
        snprintf(c->profile_names[PR_ATTR0 + i], sizeof c->profile_names[0], "%s_%s",
                 profile_paths[i][0], profile_paths[i][1]);
    snprintf(c->profile_names[PR_UPDATED_AT], sizeof c->profile_names[0], "updated_at");
    for (int k = 0; k < PR_NFIELDS; k++)
        fields[k] = c->profile_names[k];
    size_t len, flen;
    const char *text = avro_codec_schema_text(RECORD_USER_PROFILE, &len);
    char *flat = text ? avro_flatten(text, len, &flen, err) : NULL;
    if (!flat) {
        if (!text)
            err_set(err, "schema user_profile is not embedded in this build");
        return -1;
    }
    int rc = reader_schema_init(&c->rd_profile, RECORD_USER_PROFILE, flat, flen, fields, PR_NFIELDS,
                                err);
    free(flat);
    return rc;
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
    case DECODE_INCOMPATIBLE_SCHEMA:
        return "incompatible-schema";
    case DECODE_SCHEMA_MISMATCH:
        return "schema-mismatch";
    case DECODE_REGISTRY_UNAVAILABLE:
        return "registry-unavailable";
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
        kind_init(&c->device, "device", device_fields, DV_NFIELDS, err) ||
        kind_init(&c->profile, "user_profile", profile_top_fields,
                  (int)(sizeof profile_top_fields / sizeof profile_top_fields[0]), err)) {
        avro_codec_free(c);
        return NULL;
    }
    size_t elen, dlen;
    const char *etext = avro_codec_schema_text(RECORD_WEB_EVENT, &elen);
    const char *dtext = avro_codec_schema_text(RECORD_DEVICE, &dlen);
    if (reader_schema_init(&c->rd_event, RECORD_WEB_EVENT, etext, elen, event_fields, EV_NFIELDS,
                           err) ||
        reader_schema_init(&c->rd_device, RECORD_DEVICE, dtext, dlen, device_fields, DV_NFIELDS,
                           err) ||
        avro_codec_add_schema(c, RECORD_WEB_EVENT, etext, elen, err) ||
        avro_codec_add_schema(c, RECORD_DEVICE, dtext, dlen, err)) {
        avro_codec_free(c);
        return NULL;
    }
    size_t plen;
    const char *ptext = avro_codec_schema_text(RECORD_USER_PROFILE, &plen);
    if (profile_reader_init(c, err) ||
        avro_codec_add_schema(c, RECORD_USER_PROFILE, ptext, plen, err)) {
        avro_codec_free(c);
        return NULL;
    }
    c->write_id[RECORD_WEB_EVENT] = RECORD_WEB_EVENT;
    c->write_id[RECORD_DEVICE] = RECORD_DEVICE;
    c->write_id[RECORD_USER_PROFILE] = RECORD_USER_PROFILE;
    c->wcap = 4096;
    c->wbuf = malloc(c->wcap);
    c->writer = avro_writer_memory(c->wbuf, (int64_t)c->wcap);
    if (!c->wbuf || !c->writer) {
        err_set(err, "out of memory");
        avro_codec_free(c);
        return NULL;
    }
    return c;
}

static void entry_free(id_entry *e)
{
    for (int k = 0; k < 4; k++)
        avro_plan_free(e->plan[k]);
    avro_sch_free(e->writer);
}

/* Drops cached ids: all of them, or only the unknown ones. */
static void drop_ids(avro_codec *c, bool all)
{
    size_t keep = 0;
    for (size_t i = 0; i < c->n_ids; i++) {
        if (all || !c->ids[i].writer)
            entry_free(&c->ids[i]);
        else
            c->ids[keep++] = c->ids[i];
    }
    c->n_ids = keep;
    c->n_unknown = 0;
    c->last = 0;
}

void avro_codec_free(avro_codec *c)
{
    if (!c)
        return;
    kind_free(&c->event);
    kind_free(&c->device);
    kind_free(&c->profile);
    drop_ids(c, true);
    free(c->ids);
    reader_schema_free(&c->rd_event);
    reader_schema_free(&c->rd_device);
    reader_schema_free(&c->rd_profile);
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
    framing_write_header((unsigned char *)c->wbuf, c->write_id[kind]);
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

int avro_codec_encode_profile(avro_codec *c, const profile_record *p, const void **out, size_t *len,
                              errbuf *err)
{
    kind_codec *kc = &c->profile;
    avro_value_t f, sub;
    int rc = field_at(kc, 0, &f) || avro_value_set_long(&f, p->user_id);
    for (int i = 0; !rc && i < PROFILE_NATTRS; i++)
        rc = avro_value_get_by_name(&kc->value, profile_paths[i][0], &f, NULL) ||
             avro_value_get_by_name(&f, profile_paths[i][1], &sub, NULL) ||
             set_opt_string(c, &sub, p->attrs[i]);
    rc = rc || avro_value_get_by_name(&kc->value, "updated_at", &f, NULL) ||
         set_opt_long(&f, p->updated_at_ms);
    if (rc) {
        err_set(err, "cannot set user profile fields: %s", avro_strerror());
        return -1;
    }
    return write_framed(c, kc, RECORD_USER_PROFILE, out, len, err);
}

/* ---- schema ids -------------------------------------------------------- */

static id_entry *find_id(avro_codec *c, uint32_t id)
{
    if (c->last < c->n_ids && c->ids[c->last].id == id)
        return &c->ids[c->last];
    for (size_t i = 0; i < c->n_ids; i++)
        if (c->ids[i].id == id) {
            c->last = i;
            return &c->ids[i];
        }
    return NULL;
}

static id_entry *new_id(avro_codec *c, uint32_t id)
{
    if (c->n_ids == c->cap_ids) {
        size_t nc = c->cap_ids ? c->cap_ids * 2 : 16;
        id_entry *ni = realloc(c->ids, nc * sizeof *ni);
        if (!ni)
            return NULL;
        c->ids = ni;
        c->cap_ids = nc;
    }
    id_entry *e = &c->ids[c->n_ids++];
    memset(e, 0, sizeof *e);
    e->id = id;
    return e;
}

int avro_codec_add_schema(avro_codec *c, uint32_t id, const char *json, size_t len, errbuf *err)
{
    avro_sch *w = parse_writer(json, len, err);
    if (!w)
        return -1;
    id_entry *e = find_id(c, id);
    if (e)
        entry_free(e);
    else if (!(e = new_id(c, id))) {
        avro_sch_free(w);
        err_set(err, "out of memory");
        return -1;
    }
    memset(e, 0, sizeof *e);
    e->id = id;
    e->local = true;
    e->writer = w;
    return 0;
}

void avro_codec_set_registry(avro_codec *c, schema_registry *registry)
{
    c->registry = registry;
    drop_ids(c, true);
}

unsigned long avro_codec_registry_lookups(const avro_codec *c)
{
    return c->lookups;
}

/* Finds or fetches an id. Returns the entry (whose writer may be NULL: an
 * unknown id), or NULL when the registry could not be asked (err set). */
static id_entry *resolve_id(avro_codec *c, uint32_t id, errbuf *err)
{
    id_entry *e = find_id(c, id);
    if (e || !c->registry)
        return e;
    char *text = NULL;
    errbuf why = {{0}};
    c->lookups++;
    enum registry_status st = schema_registry_get(c->registry, id, &text, &why);
    /* Only a 404 or a schema we cannot use is a property of the id (its
     * records are dead letters). A registry that refuses us (credentials,
     * permissions) or answers garbage is not: the caller stops rather than
     * dead-letter every record. */
    if (st == REGISTRY_UNAVAILABLE || st == REGISTRY_REFUSED || st == REGISTRY_BAD_REPLY) {
        err_set(err, "%s", why.msg);
        return NULL;
    }
    avro_sch *w = NULL;
    if (st == REGISTRY_OK) {
        w = parse_writer(text, strlen(text), &why);
        free(text);
    }
    if (!w && c->n_unknown >= MAX_UNKNOWN_IDS)
        drop_ids(c, false);
    if (!(e = new_id(c, id))) {
        avro_sch_free(w);
        err_set(err, "out of memory");
        return NULL;
    }
    e->writer = w;
    if (!w) {
        c->n_unknown++;
        snprintf(e->missing, sizeof e->missing, "%.150s", why.msg);
    }
    c->last = (size_t)(e - c->ids);
    return e;
}

static const char *short_name(const char *full)
{
    const char *dot = full ? strrchr(full, '.') : NULL;
    return dot ? dot + 1 : full;
}

static avro_plan *plan_for(avro_codec *c, id_entry *e, enum record_kind kind)
{
    if (!e->tried[kind]) {
        e->tried[kind] = true;
        errbuf why = {{0}};
        const reader_schema *r = kind == RECORD_DEVICE         ? &c->rd_device
                                 : kind == RECORD_USER_PROFILE ? &c->rd_profile
                                                               : &c->rd_event;
        e->plan[kind] = avro_plan_new(r, e->writer, false, &why);
        if (!e->plan[kind])
            snprintf(e->why[kind], sizeof e->why[kind], "%.150s", why.msg);
    }
    return e->plan[kind];
}

/* ---- decoding ---------------------------------------------------------- */

static void to_event(const decoded_slots *s, web_event *ev)
{
    ev->url = s->s[EV_URL];
    ev->referrer = s->s[EV_REFERRER];
    ev->user_id = s->l[EV_USER_ID];
    ev->device_id = s->l[EV_DEVICE_ID];
    ev->host = s->s[EV_HOST];
    ev->event_time_ms = s->l[EV_EVENT_TIME].value;
}

static void to_device(const decoded_slots *s, device_record *dev)
{
    dev->device_id = s->l[DV_DEVICE_ID].value;
    dev->browser_type = s->s[DV_BROWSER];
    dev->os_type = s->s[DV_OS];
    dev->device_type = s->s[DV_TYPE];
    dev->updated_at_ms = s->l[DV_UPDATED_AT];
}

static void to_profile(const decoded_slots *s, profile_record *p)
{
    p->user_id = s->l[PR_USER_ID].value;
    for (int i = 0; i < PROFILE_NATTRS; i++)
        p->attrs[i] = s->s[PR_ATTR0 + i];
    p->updated_at_ms = s->l[PR_UPDATED_AT];
    p->deleted = false;
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
    id_entry *e = resolve_id(c, id, err);
    if (!e) {
        if (c->registry)
            return DECODE_REGISTRY_UNAVAILABLE;
        err_set(err, "schema id %u is not a local schema (no schema registry configured)", id);
        return DECODE_UNKNOWN_SCHEMA;
    }
    if (!e->writer) {
        err_set(err, "schema id %u: %s", id, e->missing);
        return DECODE_UNKNOWN_SCHEMA;
    }
    enum record_kind kind = expect_kind;
    if (kind != RECORD_NONE && kind != RECORD_WEB_EVENT && kind != RECORD_DEVICE &&
        kind != RECORD_USER_PROFILE) {
        err_set(err, "this codec decodes web events, devices and user profiles only");
        return DECODE_INCOMPATIBLE_SCHEMA;
    }
    if (kind == RECORD_NONE) {
        const char *name = short_name(avro_sch_record_name(e->writer));
        kind = name && strcmp(name, "Device") == 0        ? RECORD_DEVICE
               : name && strcmp(name, "UserProfile") == 0 ? RECORD_USER_PROFILE
                                                          : RECORD_WEB_EVENT;
    }
    avro_plan *plan = plan_for(c, e, kind);
    if (!plan) {
        err_set(err, "schema id %u cannot be read as %s: %s", id,
                kind == RECORD_DEVICE         ? "activity.Device"
                : kind == RECORD_USER_PROFILE ? "activity.UserProfile"
                                              : "activity.WebEvent",
                e->why[kind]);
        return DECODE_INCOMPATIBLE_SCHEMA;
    }
    decoded_slots slots;
    switch (avro_plan_decode(plan, body, body_len, &slots, err)) {
    case AVRO_RES_OK:
        break;
    case AVRO_RES_BAD_BODY:
        return DECODE_BAD_BODY;
    case AVRO_RES_TRAILING:
        return DECODE_TRAILING_BYTES;
    case AVRO_RES_MISMATCH:
        return DECODE_SCHEMA_MISMATCH;
    }
    out->kind = kind;
    if (kind == RECORD_WEB_EVENT)
        to_event(&slots, &out->u.event);
    else if (kind == RECORD_USER_PROFILE)
        to_profile(&slots, &out->u.profile);
    else
        to_device(&slots, &out->u.device);
    return DECODE_OK;
}
