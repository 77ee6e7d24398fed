/*
 * text_records.c — text (CSV, JSON) forms of our records (see text_records.h).
 *
 * CSV and JSON share one set of value rules; the two front ends only differ
 * in how they find a field and what types a value may arrive as. Messages
 * quote at most the first few dozen bytes of a bad value, enough to find it
 * in the file without flooding the terminal.
 */
#include "consumers/text_records.h"

#include "lib/civil_time.h"
#include "consumers/dim_tables.h"
#include "lib/utf8.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { EV_URL, EV_REFERRER, EV_USER_ID, EV_DEVICE_ID, EV_HOST, EV_EVENT_TIME, EV_NFIELDS };
enum { DV_DEVICE_ID, DV_BROWSER, DV_OS, DV_TYPE, DV_UPDATED_AT, DV_DELETED, DV_NFIELDS };
/* Profile columns: user_id, the PROFILE_NATTRS attributes, updated_at, deleted. */
enum { PF_USER_ID, PF_ATTR0, PF_UPDATED_AT = PF_ATTR0 + PROFILE_NATTRS, PF_DELETED, PF_NFIELDS };

static const char *const event_names[EV_NFIELDS] = {"url",       "referrer", "user_id",
                                                    "device_id", "host",     "event_time"};
static const char *const device_names[DV_NFIELDS] = {"device_id",   "browser_type", "os_type",
                                                     "device_type", "updated_at",   "deleted"};

/* The profile's column names, from dims.h's dim_users columns. */
static void profile_names(const char *names[PF_NFIELDS])
{
    names[PF_USER_ID] = "user_id";
    for (int i = 0; i < PROFILE_NATTRS; i++)
        names[PF_ATTR0 + i] = dim_tables[DIM_USERS].attrs[i];
    names[PF_UPDATED_AT] = "updated_at";
    names[PF_DELETED] = "deleted";
}

/* Shows a value in a message: at most SHOW_MAX bytes, then "...". */
#define SHOW_MAX 40
#define SHOW(s, len)                                                                               \
    (int)((len) > SHOW_MAX ? SHOW_MAX : (len)), (s), ((len) > SHOW_MAX ? "..." : "")

int text_kind_from_name(const char *name, enum record_kind *kind, errbuf *err)
{
    if (strcmp(name, "web_event") == 0) {
        *kind = RECORD_WEB_EVENT;
        return 0;
    }
    if (strcmp(name, "device") == 0) {
        *kind = RECORD_DEVICE;
        return 0;
    }
    if (strcmp(name, "user_profile") == 0) {
        *kind = RECORD_USER_PROFILE;
        return 0;
    }
    err_set(err, "unknown schema '%s' (this build loads web_event, device or user_profile)", name);
    return -1;
}

const char *text_kind_name(enum record_kind kind)
{
    switch (kind) {
    case RECORD_WEB_EVENT:
        return "web_event";
    case RECORD_DEVICE:
        return "device";
    case RECORD_USER_PROFILE:
        return "user_profile";
    case RECORD_NONE:
        break;
    }
    return "unknown";
}

/* ---- values ------------------------------------------------------------ */

enum int_status { INT_OK, INT_SYNTAX, INT_RANGE };

static enum int_status parse_int64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = len > 0 && s[0] == '-';
    if (neg)
        i = 1;
    if (i == len)
        return INT_SYNTAX;
    /* Accumulate the magnitude unsigned so INT64_MIN is representable. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    bool range = false;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return INT_SYNTAX;
        if (v > (limit - d) / 10)
            range = true; /* keep scanning: "99999999999999999999x" is a syntax error */
        else
            v = v * 10 + d;
    }
    if (range)
        return INT_RANGE;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return INT_OK;
}

bool text_parse_int64(const char *s, size_t len, int64_t *out)
{
    return parse_int64(s, len, out) == INT_OK;
}

/* An integer field given as text; empty means null unless required. */
static int int_from_text(const char *name, const char *s, size_t len, bool required, opt_long *out,
                         errbuf *err)
{
    if (len == 0) {
        if (required) {
            err_set(err, "%s is empty, but it is required", name);
            return -1;
        }
        *out = (opt_long){0};
        return 0;
    }
    switch (parse_int64(s, len, &out->value)) {
    case INT_OK:
        out->present = true;
        return 0;
    case INT_SYNTAX:
        err_set(err, "%s '%.*s%s' is not an integer", name, SHOW(s, len));
        return -1;
    case INT_RANGE:
        err_set(err, "%s '%.*s%s' is outside the 64-bit integer range", name, SHOW(s, len));
        return -1;
    }
    return -1;
}

static int time_from_text(const char *name, const char *s, size_t len, int64_t *ms, errbuf *err)
{
    if (len == 0) {
        err_set(err, "%s is empty", name);
        return -1;
    }
    if (!parse_utc_timestamp(s, len, ms)) {
        err_set(err, "%s '%.*s%s' is not a valid UTC timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])",
                name, SHOW(s, len));
        return -1;
    }
    return 0;
}

/* true/false, t/f, yes/no, 1/0 in any case; empty is false. */
static int bool_from_text(const char *name, const char *s, size_t len, bool *out, errbuf *err)
{
    static const char *const yes[] = {"true", "t", "yes", "1"}, *const no[] = {"false", "f", "no",
                                                                               "0"};
    *out = false;
    if (len == 0)
        return 0;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (len == strlen(yes[i]) && strncasecmp(s, yes[i], len) == 0) {
            *out = true;
            return 0;
        }
        if (len == strlen(no[i]) && strncasecmp(s, no[i], len) == 0)
            return 0;
    }
    err_set(err, "%s '%.*s%s' is not a boolean (true/false, yes/no, 1/0)", name, SHOW(s, len));
    return -1;
}

static int check_text(const char *name, opt_str v, errbuf *err)
{
    if (v.present && !utf8_valid(v.ptr, v.len)) {
        err_set(err, "%s is not valid UTF-8 text (or contains a NUL byte)", name);
        return -1;
    }
    return 0;
}

static int check_host(opt_str host, errbuf *err)
{
    if (!host.present || host.len == 0) {
        err_set(err, "host is empty, but it is required");
        return -1;
    }
    return check_text("host", host, err);
}

/* ---- CSV --------------------------------------------------------------- */

/* A header cell without surrounding blanks and byte-order mark. */
static void header_name(const csv_field *f, const char **s, size_t *len)
{
    const char *p = f->ptr;
    size_t n = f->len;
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    *s = p;
    *len = n;
}

static int find_column(const csv_record *header, const char *name)
{
    size_t want = strlen(name);
    for (size_t i = 0; i < header->nfields; i++) {
        const char *s;
        size_t len;
        header_name(&header->fields[i], &s, &len);
        if (len == want && strncasecmp(s, name, len) == 0)
            return (int)i;
    }
    return -1;
}

enum record_kind text_kind_from_csv_header(const csv_record *header)
{
    if (find_column(header, "host") >= 0 && find_column(header, "event_time") >= 0)
        return RECORD_WEB_EVENT;
    if (find_column(header, "device_id") >= 0 && find_column(header, "browser_type") >= 0)
        return RECORD_DEVICE;
    if (find_column(header, "user_id") >= 0 && find_column(header, "first_name") >= 0)
        return RECORD_USER_PROFILE;
    return RECORD_NONE;
}

int text_csv_header_init(text_csv_header *h, enum record_kind kind, const csv_record *header,
                         errbuf *err)
{
    const char *const *names;
    const char *pnames[PF_NFIELDS];
    int n, required;
    if (kind == RECORD_USER_PROFILE) {
        profile_names(pnames);
        names = pnames;
        n = PF_NFIELDS;
        required = PF_UPDATED_AT; /* updated_at and deleted are optional */
    } else if (kind == RECORD_WEB_EVENT) {
        names = event_names;
        n = required = EV_NFIELDS;
    } else if (kind == RECORD_DEVICE) {
        names = device_names;
        n = DV_NFIELDS;
        required = DV_UPDATED_AT; /* updated_at and deleted are optional */
    } else {
        err_set(err, "no CSV columns are defined for record type %d", (int)kind);
        return -1;
    }
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->ncols = header->nfields;
    for (int i = 0; i < n; i++) {
        h->col[i] = find_column(header, names[i]);
        if (h->col[i] < 0 && i < required) {
            err_set(err, "the header has no %s column (a %s header needs", names[i],
                    text_kind_name(kind));
            for (int k = 0; k < required; k++) {
                size_t used = strlen(err->msg);
                snprintf(err->msg + used, sizeof err->msg - used, "%s%s", k ? "," : " ", names[k]);
            }
            size_t used = strlen(err->msg);
            snprintf(err->msg + used, sizeof err->msg - used, ")");
            return -1;
        }
        if (h->col[i] >= 0) {
            for (size_t j = (size_t)h->col[i] + 1; j < header->nfields; j++) {
                const char *s;
                size_t len;
                header_name(&header->fields[j], &s, &len);
                if (len == strlen(names[i]) && strncasecmp(s, names[i], len) == 0) {
                    err_set(err, "the header has the %s column twice", names[i]);
                    return -1;
                }
            }
        }
    }
    for (int i = n; i < TEXT_MAX_FIELDS; i++)
        h->col[i] = -1;
    return 0;
}

static int check_width(const text_csv_header *h, const csv_record *rec, errbuf *err)
{
    if (rec->nfields != h->ncols) {
        err_set(err, "%zu fields, but the header has %zu columns", rec->nfields, h->ncols);
        return -1;
    }
    return 0;
}

static opt_str csv_str(const csv_field *f, bool empty_is_null)
{
    if (f->len == 0 && (empty_is_null || !f->quoted))
        return (opt_str){0};
    return (opt_str){.ptr = f->ptr, .len = f->len, .present = true};
}

int text_event_from_csv(const text_csv_header *h, const csv_record *rec, web_event *ev, errbuf *err)
{
    if (check_width(h, rec, err))
        return -1;
    const csv_field *f = rec->fields;
    const csv_field *uid = &f[h->col[EV_USER_ID]];
    const csv_field *did = &f[h->col[EV_DEVICE_ID]];
    const csv_field *when = &f[h->col[EV_EVENT_TIME]];
    ev->url = csv_str(&f[h->col[EV_URL]], false);
    ev->referrer = csv_str(&f[h->col[EV_REFERRER]], false);
    ev->host = csv_str(&f[h->col[EV_HOST]], true);
    if (check_host(ev->host, err) || check_text("url", ev->url, err) ||
        check_text("referrer", ev->referrer, err) ||
        int_from_text("user_id", uid->ptr, uid->len, false, &ev->user_id, err) ||
        int_from_text("device_id", did->ptr, did->len, false, &ev->device_id, err) ||
        time_from_text("event_time", when->ptr, when->len, &ev->event_time_ms, err))
        return -1;
    return 0;
}

/* The optional updated_at and deleted columns of a dimension change. */
static int csv_change_time(const text_csv_header *h, const csv_record *rec, int updated_col,
                           int deleted_col, opt_long *updated_at, bool *deleted, errbuf *err)
{
    *updated_at = (opt_long){0};
    *deleted = false;
    if (h->col[updated_col] >= 0) {
        const csv_field *u = &rec->fields[h->col[updated_col]];
        if (u->len > 0) {
            if (time_from_text("updated_at", u->ptr, u->len, &updated_at->value, err))
                return -1;
            updated_at->present = true;
        }
    }
    if (h->col[deleted_col] >= 0) {
        const csv_field *d = &rec->fields[h->col[deleted_col]];
        return bool_from_text("deleted", d->ptr, d->len, deleted, err);
    }
    return 0;
}

int text_device_from_csv(const text_csv_header *h, const csv_record *rec, device_record *dev,
                         errbuf *err)
{
    if (check_width(h, rec, err))
        return -1;
    const csv_field *f = rec->fields;
    const csv_field *id = &f[h->col[DV_DEVICE_ID]];
    opt_long device_id;
    if (int_from_text("device_id", id->ptr, id->len, true, &device_id, err))
        return -1;
    dev->device_id = device_id.value;
    dev->browser_type = csv_str(&f[h->col[DV_BROWSER]], true);
    dev->os_type = csv_str(&f[h->col[DV_OS]], true);
    dev->device_type = csv_str(&f[h->col[DV_TYPE]], true);
    if (check_text("browser_type", dev->browser_type, err) ||
        check_text("os_type", dev->os_type, err) ||
        check_text("device_type", dev->device_type, err))
        return -1;
    return csv_change_time(h, rec, DV_UPDATED_AT, DV_DELETED, &dev->updated_at_ms, &dev->deleted,
                           err);
}

int text_profile_from_csv(const text_csv_header *h, const csv_record *rec, profile_record *p,
                          errbuf *err)
{
    if (check_width(h, rec, err))
        return -1;
    const csv_field *f = rec->fields;
    const csv_field *id = &f[h->col[PF_USER_ID]];
    opt_long user_id;
    if (int_from_text("user_id", id->ptr, id->len, true, &user_id, err))
        return -1;
    p->user_id = user_id.value;
    for (int i = 0; i < PROFILE_NATTRS; i++) {
        p->attrs[i] = csv_str(&f[h->col[PF_ATTR0 + i]], true);
        if (check_text(dim_tables[DIM_USERS].attrs[i], p->attrs[i], err))
            return -1;
    }
    return csv_change_time(h, rec, PF_UPDATED_AT, PF_DELETED, &p->updated_at_ms, &p->deleted, err);
}

/* ---- JSON -------------------------------------------------------------- */

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a fractional number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown type";
}

enum record_kind text_kind_from_json(const json_t *obj)
{
    if (!json_is_object(obj))
        return RECORD_NONE;
    if (json_object_get(obj, "host") && json_object_get(obj, "event_time"))
        return RECORD_WEB_EVENT;
    if (json_object_get(obj, "device_id") && json_object_get(obj, "browser_type"))
        return RECORD_DEVICE;
    if (json_object_get(obj, "user_id") && json_object_get(obj, "name"))
        return RECORD_USER_PROFILE;
    return RECORD_NONE;
}

/* A string or null; a missing key is null. */
static int json_opt_str(const json_t *obj, const char *name, bool empty_is_null, opt_str *out,
                        errbuf *err)
{
    const json_t *v = json_object_get(obj, name);
    *out = (opt_str){0};
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        err_set(err, "%s must be a string or null, not %s", name, json_type_name(v));
        return -1;
    }
    size_t len = json_string_length(v);
    if (len == 0 && empty_is_null)
        return 0;
    *out = (opt_str){.ptr = json_string_value(v), .len = len, .present = true};
    return check_text(name, *out, err);
}

/* An integer, a numeric string or null; a missing key is null. */
static int json_opt_long(const json_t *obj, const char *name, bool required, opt_long *out,
                         errbuf *err)
{
    const json_t *v = json_object_get(obj, name);
    *out = (opt_long){0};
    if (!v || json_is_null(v)) {
        if (required) {
            err_set(err, "%s is %s, but it is required", name, v ? "null" : "missing");
            return -1;
        }
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (opt_long){.value = (int64_t)json_integer_value(v), .present = true};
        return 0;
    }
    if (json_is_string(v))
        return int_from_text(name, json_string_value(v), json_string_length(v), required, out, err);
    err_set(err, "%s must be an integer, a numeric string or null, not %s", name,
            json_type_name(v));
    return -1;
}

/* A timestamp string or epoch milliseconds. */
static int json_time(const json_t *v, const char *name, int64_t *ms, errbuf *err)
{
    if (json_is_integer(v)) {
        *ms = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v))
        return time_from_text(name, json_string_value(v), json_string_length(v), ms, err);
    err_set(err, "%s must be a timestamp string or integer epoch milliseconds, not %s", name,
            json_type_name(v));
    return -1;
}

int text_event_from_json(const json_t *obj, web_event *ev, errbuf *err)
{
    if (!json_is_object(obj)) {
        err_set(err, "expected a JSON object, got %s", json_type_name(obj));
        return -1;
    }
    if (json_opt_str(obj, "url", false, &ev->url, err) ||
        json_opt_str(obj, "referrer", false, &ev->referrer, err) ||
        json_opt_long(obj, "user_id", false, &ev->user_id, err) ||
        json_opt_long(obj, "device_id", false, &ev->device_id, err))
        return -1;
    const json_t *host = json_object_get(obj, "host");
    if (!host || json_is_null(host)) {
        err_set(err, "host is %s, but it is required", host ? "null" : "missing");
        return -1;
    }
    if (!json_is_string(host)) {
        err_set(err, "host must be a string, not %s", json_type_name(host));
        return -1;
    }
    ev->host =
        (opt_str){.ptr = json_string_value(host), .len = json_string_length(host), .present = true};
    if (check_host(ev->host, err))
        return -1;
    const json_t *when = json_object_get(obj, "event_time");
    if (!when || json_is_null(when)) {
        err_set(err, "event_time is %s, but it is required", when ? "null" : "missing");
        return -1;
    }
    return json_time(when, "event_time", &ev->event_time_ms, err);
}

/* The optional updated_at and deleted keys of a dimension change. */
static int json_change_time(const json_t *obj, opt_long *updated_at, bool *deleted, errbuf *err)
{
    *updated_at = (opt_long){0};
    *deleted = false;
    const json_t *u = json_object_get(obj, "updated_at");
    if (u && !json_is_null(u) && !(json_is_string(u) && json_string_length(u) == 0)) {
        if (json_time(u, "updated_at", &updated_at->value, err))
            return -1;
        updated_at->present = true;
    }
    const json_t *d = json_object_get(obj, "deleted");
    if (!d || json_is_null(d))
        return 0;
    if (json_is_boolean(d)) {
        *deleted = json_is_true(d);
        return 0;
    }
    if (json_is_integer(d) && (json_integer_value(d) == 0 || json_integer_value(d) == 1)) {
        *deleted = json_integer_value(d) == 1;
        return 0;
    }
    if (json_is_string(d))
        return bool_from_text("deleted", json_string_value(d), json_string_length(d), deleted, err);
    err_set(err, "deleted must be a boolean, not %s", json_type_name(d));
    return -1;
}

int text_device_from_json(const json_t *obj, device_record *dev, errbuf *err)
{
    if (!json_is_object(obj)) {
        err_set(err, "expected a JSON object, got %s", json_type_name(obj));
        return -1;
    }
    opt_long id;
    if (json_opt_long(obj, "device_id", true, &id, err) ||
        json_opt_str(obj, "browser_type", true, &dev->browser_type, err) ||
        json_opt_str(obj, "os_type", true, &dev->os_type, err) ||
        json_opt_str(obj, "device_type", true, &dev->device_type, err))
        return -1;
    dev->device_id = id.value;
    return json_change_time(obj, &dev->updated_at_ms, &dev->deleted, err);
}

int text_profile_from_json(const json_t *obj, profile_record *p, errbuf *err)
{
    if (!json_is_object(obj)) {
        err_set(err, "expected a JSON object, got %s", json_type_name(obj));
        return -1;
    }
    opt_long id;
    if (json_opt_long(obj, "user_id", true, &id, err))
        return -1;
    p->user_id = id.value;
    for (int i = 0; i < PROFILE_NATTRS; i++) {
        const char *parent = profile_paths[i][0];
        const json_t *o = json_object_get(obj, parent);
        p->attrs[i] = (opt_str){0};
        if (!o || json_is_null(o))
            continue;
        if (!json_is_object(o)) {
            err_set(err, "%s must be an object or null, not %s", parent, json_type_name(o));
            return -1;
        }
        char name[32];
        snprintf(name, sizeof name, "%s.%s", parent, profile_paths[i][1]);
        if (json_opt_str(o, profile_paths[i][1], true, &p->attrs[i], err)) {
            /* Name the field by its path, not its last key alone. */
            errbuf detail = *err;
            const char *rest = strchr(detail.msg, ' ');
            err_set(err, "%s%s", name, rest ? rest : "");
            return -1;
        }
    }
    return json_change_time(obj, &p->updated_at_ms, &p->deleted, err);
}
