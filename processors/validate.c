/*
 * validate.c — record validation (see validate.h).
 */
#include "processors/validate.h"

#include "lib/civil_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void validation_defaults(validation_rules *r)
{
    r->min_event_time_ms = days_from_civil(1970, 1, 1) * 86400000LL;
    r->max_event_time_ms = days_from_civil(2100, 1, 1) * 86400000LL;
    r->max_field_bytes = 4096;
    r->max_key_bytes = 2048;
}

int validation_parse_time(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 &&
        (s[n] == '\0' || s[n] == 'T' || s[n] == ' ')) {
        if (s[n] &&
            (sscanf(s + n + 1, "%2d:%2d:%2d", &h, &mi, &sec) != 3 || h > 23 || mi > 59 || sec > 59))
            return -1;
        if (mo < 1 || mo > 12 || d < 1 || d > 31)
            return -1;
        *ms = (days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec) * 1000LL;
        return 0;
    }
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end)
        return -1;
    *ms = v;
    return 0;
}

int validation_rules_check(const validation_rules *r, errbuf *err)
{
    int64_t lo = days_from_civil(1, 1, 1) * 86400000LL,
            hi = days_from_civil(10000, 1, 1) * 86400000LL;
    if (r->min_event_time_ms < lo || r->max_event_time_ms > hi ||
        r->min_event_time_ms >= r->max_event_time_ms) {
        err_set(err, "--min-event-time and --max-event-time must lie within 0001-01-01 .. "
                     "10000-01-01, the minimum before the maximum");
        return -1;
    }
    return 0;
}

static const char *check_text(const validation_rules *r, const char *name, opt_str s,
                              errbuf *detail)
{
    if (!s.present)
        return NULL;
    if (s.len > r->max_field_bytes) {
        err_set(detail, "%s is %zu bytes, more than the limit of %zu", name, s.len,
                r->max_field_bytes);
        return "oversized-field";
    }
    if (!utf8_valid(s.ptr, s.len)) {
        err_set(detail, "%s is not valid UTF-8 text (or contains NUL)", name);
        return "invalid-text";
    }
    return NULL;
}

/* A key string is checked against both limits; the smaller one wins. */
static const char *check_key(const validation_rules *r, const char *name, opt_str s, errbuf *detail)
{
    if (s.present && s.len > r->max_key_bytes && s.len <= r->max_field_bytes) {
        err_set(detail,
                "%s is %zu bytes, more than the limit of %zu for a value that is part of a "
                "table's key (--max-key-bytes)",
                name, s.len, r->max_key_bytes);
        return "oversized-key";
    }
    return check_text(r, name, s, detail);
}

const char *validate_event(const validation_rules *r, const web_event *ev, errbuf *detail)
{
    if (!ev->host.present || ev->host.len == 0) {
        err_set(detail, "host is missing or empty");
        return "missing-host";
    }
    const char *why;
    if ((why = check_key(r, "host", ev->host, detail)) ||
        (why = check_text(r, "url", ev->url, detail)) ||
        (why = check_text(r, "referrer", ev->referrer, detail)))
        return why;
    if (ev->event_time_ms < r->min_event_time_ms || ev->event_time_ms >= r->max_event_time_ms) {
        err_set(detail, "event_time %lld ms is outside the accepted range [%lld, %lld)",
                (long long)ev->event_time_ms, (long long)r->min_event_time_ms,
                (long long)r->max_event_time_ms);
        return "event-time-out-of-range";
    }
    return NULL;
}

/* A dimension change's updated_at (absent: the Kafka timestamp stands in)
 * must lie in the same sane range as event times. */
static const char *check_updated_at(const validation_rules *r, opt_long t, errbuf *detail)
{
    if (t.present && (t.value < r->min_event_time_ms || t.value >= r->max_event_time_ms)) {
        err_set(detail, "updated_at %lld ms is outside the accepted range [%lld, %lld)",
                (long long)t.value, (long long)r->min_event_time_ms,
                (long long)r->max_event_time_ms);
        return "updated-at-out-of-range";
    }
    return NULL;
}

const char *validate_device(const validation_rules *r, const device_record *dev, errbuf *detail)
{
    const char *why;
    if ((why = check_key(r, "browser_type", dev->browser_type, detail)) ||
        (why = check_text(r, "os_type", dev->os_type, detail)) ||
        (why = check_text(r, "device_type", dev->device_type, detail)) ||
        (why = check_updated_at(r, dev->updated_at_ms, detail)))
        return why;
    return NULL;
}

const char *validate_profile(const validation_rules *r, const profile_record *p, errbuf *detail)
{
    static const char *const names[PROFILE_NATTRS] = {
        "name.first",    "name.last",       "name.title",  "address.street", "address.city",
        "address.state", "address.country", "address.zip", "contact.type",   "contact.value"};
    const char *why;
    for (int i = 0; i < PROFILE_NATTRS; i++)
        if ((why = check_text(r, names[i], p->attrs[i], detail)))
            return why;
    return check_updated_at(r, p->updated_at_ms, detail);
}
