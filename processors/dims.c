/*
 * dims.c — dimension changes and their text forms (see dims.h).
 */
#include "processors/dims.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void dim_change_from_device(const device_record *dev, int64_t fallback_ms, dim_change *out)
{
    memset(out, 0, sizeof *out);
    out->kind = DIM_DEVICES;
    out->id = dev->device_id;
    out->updated_at_ms = dev->updated_at_ms.present ? dev->updated_at_ms.value : fallback_ms;
    out->attrs[0] = dev->browser_type;
    out->attrs[1] = dev->os_type;
    out->attrs[2] = dev->device_type;
}

void dim_change_from_profile(const profile_record *p, int64_t fallback_ms, dim_change *out)
{
    memset(out, 0, sizeof *out);
    out->kind = DIM_USERS;
    out->id = p->user_id;
    out->updated_at_ms = p->updated_at_ms.present ? p->updated_at_ms.value : fallback_ms;
    memcpy(out->attrs, p->attrs, sizeof p->attrs);
}

void dim_change_tombstone(enum dim_kind kind, int64_t id, int64_t at_ms, dim_change *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->id = id;
    out->updated_at_ms = at_ms;
    out->tombstone = true;
}

/* Appends n bytes at *pos if they fit; always advances *pos. */
static void put(char *buf, size_t size, size_t *pos, const void *data, size_t n)
{
    if (*pos < size && n <= size - *pos)
        memcpy(buf + *pos, data, n);
    *pos += n;
}

size_t dim_payload_encode(const dim_change *c, char *buf, size_t size)
{
    size_t pos = 0;
    if (c->tombstone) {
        put(buf, size, &pos, "T", 1);
        return pos;
    }
    put(buf, size, &pos, "V", 1);
    for (size_t i = 0; i < dim_tables[c->kind].nattrs; i++) {
        const opt_str *a = &c->attrs[i];
        if (!a->present) {
            put(buf, size, &pos, "-", 1);
            continue;
        }
        char head[24];
        int n = snprintf(head, sizeof head, "%zu:", a->len);
        put(buf, size, &pos, head, (size_t)n);
        put(buf, size, &pos, a->ptr, a->len);
    }
    return pos;
}

/* Reads a decimal number of at most 19 digits (optional '-' if allowed) at
 * *pos, followed by ':'. */
static bool take_number(const char *s, size_t len, size_t *pos, bool allow_minus, int64_t *out)
{
    size_t p = *pos;
    bool neg = allow_minus && p < len && s[p] == '-';
    if (neg)
        p++;
    size_t start = p;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (p < len && s[p] >= '0' && s[p] <= '9') {
        unsigned d = (unsigned)(s[p++] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (p == start || p >= len || s[p] != ':')
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    *pos = p + 1;
    return true;
}

bool dim_payload_decode(enum dim_kind kind, const char *p, size_t len, dim_change *out)
{
    memset(out->attrs, 0, sizeof out->attrs);
    if (len == 1 && p[0] == 'T') {
        out->tombstone = true;
        return true;
    }
    if (len < 1 || p[0] != 'V')
        return false;
    out->tombstone = false;
    size_t pos = 1;
    for (size_t i = 0; i < dim_tables[kind].nattrs; i++) {
        if (pos < len && p[pos] == '-') {
            pos++;
            continue;
        }
        int64_t n;
        if (!take_number(p, len, &pos, false, &n) || (uint64_t)n > len - pos)
            return false;
        out->attrs[i] = (opt_str){p + pos, (size_t)n, true};
        pos += (size_t)n;
    }
    return pos == len;
}

size_t dim_entry_encode(int64_t updated_at_ms, const char *payload, size_t len, char *buf,
                        size_t size)
{
    char head[48];
    int n = snprintf(head, sizeof head, "%" PRId64 ":%zu:", updated_at_ms, len);
    size_t pos = 0;
    put(buf, size, &pos, head, (size_t)n);
    put(buf, size, &pos, payload, len);
    return pos;
}

int dim_entries_next(const char *s, size_t len, size_t *pos, dim_entry *e)
{
    if (*pos >= len)
        return 0;
    size_t p = *pos;
    int64_t n;
    if (!take_number(s, len, &p, true, &e->updated_at_ms) || !take_number(s, len, &p, false, &n) ||
        (uint64_t)n > len - p)
        return -1;
    e->payload = s + p;
    e->payload_len = (size_t)n;
    *pos = p + (size_t)n;
    return 1;
}

size_t dim_field(enum dim_kind kind, int64_t id, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%c%" PRId64, dim_tables[kind].tag, id);
    return n < 0 ? 0 : (size_t)n;
}

bool dim_parse_id(const char *s, size_t len, int64_t *id)
{
    char tmp[24];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = ':';
    size_t pos = 0;
    return take_number(tmp, len + 1, &pos, true, id) && pos == len + 1;
}

bool dim_field_parse(const char *s, size_t len, enum dim_kind *kind, int64_t *id)
{
    if (len < 2)
        return false;
    int k = 0;
    while (k < DIM_COUNT && dim_tables[k].tag != s[0])
        k++;
    if (k == DIM_COUNT || !dim_parse_id(s + 1, len - 1, id))
        return false;
    *kind = (enum dim_kind)k;
    return true;
}
