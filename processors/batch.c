/*
 * batch.c — per-batch pre-aggregation (see batch.h).
 *
 * Keys are packed into fixed byte layouts for bytes_map; a host-day key is
 * the 8-byte day followed by the host bytes, so any host name — commas,
 * braces, newlines — is just bytes here.
 */
#include "processors/batch.h"

#include "lib/civil_time.h"
#include "lib/grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void batch_init(batch *b)
{
    memset(b, 0, sizeof *b);
    bytes_map_init(&b->host_day_index);
    bytes_map_init(&b->user_seen);
    bytes_map_init(&b->ud_index);
    bytes_map_init(&b->device_index);
    bytes_map_init(&b->dim_index);
    bytes_map_init(&b->dim_seen);
    batch_reset(b);
}

void batch_free(batch *b)
{
    free(b->host_days);
    free(b->users);
    free(b->uds);
    free(b->devices);
    free(b->dim_entities);
    free(b->dim_changes);
    free(b->strings);
    bytes_map_free(&b->host_day_index);
    bytes_map_free(&b->user_seen);
    bytes_map_free(&b->ud_index);
    bytes_map_free(&b->device_index);
    bytes_map_free(&b->dim_index);
    bytes_map_free(&b->dim_seen);
    memset(b, 0, sizeof *b);
}

void batch_reset(batch *b)
{
    for (int g = 0; g < KEY_GROUPS; g++)
        b->host_head[g] = b->ud_head[g] = b->dev_head[g] = b->dim_head[g] = BATCH_NONE;
    b->n_host_days = b->n_users = b->n_uds = b->n_devices = 0;
    b->n_dim_entities = b->n_dim_changes = 0;
    b->strings_len = 0;
    bytes_map_clear(&b->host_day_index);
    bytes_map_clear(&b->user_seen);
    bytes_map_clear(&b->ud_index);
    bytes_map_clear(&b->device_index);
    bytes_map_clear(&b->dim_index);
    bytes_map_clear(&b->dim_seen);
}

size_t batch_bytes(const batch *b)
{
    return b->strings_len + b->n_host_days * sizeof *b->host_days + b->n_users * sizeof *b->users +
           b->n_uds * sizeof *b->uds + b->n_devices * sizeof *b->devices +
           b->n_dim_entities * sizeof *b->dim_entities + b->n_dim_changes * sizeof *b->dim_changes +
           bytes_map_bytes(&b->host_day_index) + bytes_map_bytes(&b->user_seen) +
           bytes_map_bytes(&b->ud_index) + bytes_map_bytes(&b->device_index) +
           bytes_map_bytes(&b->dim_index) + bytes_map_bytes(&b->dim_seen);
}

size_t batch_capacity(const batch *b)
{
    return b->strings_cap + b->cap_host_days * sizeof *b->host_days +
           b->cap_users * sizeof *b->users + b->cap_uds * sizeof *b->uds +
           b->cap_devices * sizeof *b->devices + b->cap_dim_entities * sizeof *b->dim_entities +
           b->cap_dim_changes * sizeof *b->dim_changes + bytes_map_capacity(&b->host_day_index) +
           bytes_map_capacity(&b->user_seen) + bytes_map_capacity(&b->ud_index) +
           bytes_map_capacity(&b->device_index) + bytes_map_capacity(&b->dim_index) +
           bytes_map_capacity(&b->dim_seen);
}

void batch_release(batch *b)
{
    batch_free(b);
    batch_init(b);
}

bool batch_group_empty(const batch *b, uint32_t g)
{
    return b->host_head[g] == BATCH_NONE && b->ud_head[g] == BATCH_NONE &&
           b->dev_head[g] == BATCH_NONE && b->dim_head[g] == BATCH_NONE;
}

/* Offsets into strings are 32-bit (they are most of a delta's size); the
 * run loop ends a batch long before BATCH_MAX_STRING_BYTES (batch_bytes), so
 * refusing here is a guard against a wrap, never a way to drop a record. */
static int store_string(batch *b, const void *s, size_t len, uint32_t *off)
{
    if (b->strings_len + len + 1 > BATCH_MAX_STRING_BYTES)
        return -1;
    if (grow((void **)&b->strings, &b->strings_cap, b->strings_len + len + 1, 1, 65536))
        return -1;
    memcpy(b->strings + b->strings_len, s, len);
    b->strings[b->strings_len + len] = '\0';
    *off = (uint32_t)b->strings_len;
    b->strings_len += len + 1;
    return 0;
}

static int add_host_part(batch *b, const web_event *ev, int64_t day)
{
    char stack_key[256];
    size_t klen = sizeof day + ev->host.len;
    char *key = klen <= sizeof stack_key ? stack_key : malloc(klen);
    if (!key)
        return -1;
    memcpy(key, &day, sizeof day);
    memcpy(key + sizeof day, ev->host.ptr, ev->host.len);
    bool inserted;
    uint32_t *slot =
        bytes_map_upsert(&b->host_day_index, key, klen, (uint32_t)b->n_host_days, &inserted);
    if (key != stack_key)
        free(key);
    if (!slot)
        return -1;
    uint32_t idx = *slot;
    if (inserted) {
        if (GROW_ONE(b->host_days, b->n_host_days, b->cap_host_days, 1024))
            return -1;
        host_day_delta *hd = &b->host_days[b->n_host_days++];
        memset(hd, 0, sizeof *hd);
        if (store_string(b, ev->host.ptr, ev->host.len, &hd->host_off))
            return -1;
        hd->host_len = (uint32_t)ev->host.len;
        hd->day = day;
        hd->users_head = BATCH_NONE;
        uint32_t g = group_of_host(ev->host.ptr, ev->host.len);
        hd->next = b->host_head[g];
        b->host_head[g] = idx;
    }
    host_day_delta *hd = &b->host_days[idx];
    hd->hits++;
    if (!ev->user_id.present)
        return 0;
    unsigned char ukey[12];
    memcpy(ukey, &idx, 4);
    memcpy(ukey + 4, &ev->user_id.value, 8);
    uint32_t *seen = bytes_map_upsert(&b->user_seen, ukey, sizeof ukey, 1, &inserted);
    if (!seen)
        return -1;
    if (inserted) {
        if (GROW_ONE(b->users, b->n_users, b->cap_users, 1024))
            return -1;
        b->users[b->n_users] = (user_node){ev->user_id.value, hd->users_head};
        hd->users_head = (uint32_t)b->n_users++;
        hd->nusers++;
    }
    return 0;
}

static int add_user_part(batch *b, const web_event *ev, int64_t day)
{
    civil_date d = civil_from_days(day);
    int32_t month = month_index(d.year, d.month);
    bool device_null = !ev->device_id.present;
    int64_t device = device_null ? 0 : ev->device_id.value;
    unsigned char key[21];
    memcpy(key, &ev->user_id.value, 8);
    memcpy(key + 8, &device, 8);
    memcpy(key + 16, &month, 4);
    key[20] = device_null;
    bool inserted;
    uint32_t *slot = bytes_map_upsert(&b->ud_index, key, sizeof key, (uint32_t)b->n_uds, &inserted);
    if (!slot)
        return -1;
    if (inserted) {
        if (GROW_ONE(b->uds, b->n_uds, b->cap_uds, 1024))
            return -1;
        uint32_t g = group_of_user(ev->user_id.value);
        b->uds[b->n_uds] =
            (user_device_delta){ev->user_id.value, device, month, 0, b->ud_head[g], device_null};
        b->ud_head[g] = (uint32_t)b->n_uds++;
    }
    b->uds[*slot].mask |= 1u << (d.day - 1);
    return 0;
}

int batch_add_event(batch *b, const web_event *ev, bool include_host, bool include_user)
{
    int64_t day = day_of_epoch_ms(ev->event_time_ms);
    if (include_host && add_host_part(b, ev, day))
        return -1;
    /* Identified users enter the user state whatever the device: a null
     * device counts for users_cumulated (the device join skips it). */
    if (include_user && ev->user_id.present && add_user_part(b, ev, day))
        return -1;
    return 0;
}

int batch_add_device(batch *b, const device_record *dev)
{
    char buf[1024];
    size_t need = device_value_encode(dev, buf, sizeof buf);
    char *value = need < sizeof buf ? buf : malloc(need + 1);
    if (!value)
        return -1;
    if (value != buf)
        device_value_encode(dev, value, need + 1);
    uint32_t off;
    int rc = store_string(b, value, need, &off);
    if (value != buf)
        free(value);
    if (rc)
        return -1;
    bool inserted;
    uint32_t *slot = bytes_map_upsert(&b->device_index, &dev->device_id, sizeof dev->device_id,
                                      (uint32_t)b->n_devices, &inserted);
    if (!slot)
        return -1;
    if (inserted) {
        if (GROW_ONE(b->devices, b->n_devices, b->cap_devices, 1024))
            return -1;
        uint32_t g = group_of_device(dev->device_id);
        b->devices[b->n_devices] = (device_delta){dev->device_id, 0, 0, b->dev_head[g], {0}};
        b->dev_head[g] = (uint32_t)b->n_devices++;
    } else {
        /* A later record of the same device in one batch replaces the
         * earlier, unless it is older by updated_at. */
        opt_long kept = b->devices[*slot].updated_at_ms;
        if (kept.present && dev->updated_at_ms.present && dev->updated_at_ms.value < kept.value)
            return 0;
    }
    b->devices[*slot].value_off = off;
    b->devices[*slot].value_len = (uint32_t)need;
    b->devices[*slot].updated_at_ms = dev->updated_at_ms;
    return 0;
}

static size_t put_field(char *buf, size_t size, size_t pos, opt_str s)
{
    if (!s.present) {
        if (pos + 1 < size)
            buf[pos] = '-';
        return pos + 1;
    }
    int n = snprintf(pos < size ? buf + pos : NULL, pos < size ? size - pos : 0, "%zu:", s.len);
    pos += (size_t)n;
    if (pos + s.len < size)
        memcpy(buf + pos, s.ptr, s.len);
    return pos + s.len;
}

size_t device_value_encode(const device_record *dev, char *buf, size_t size)
{
    char ts[32];
    opt_str updated = {0};
    if (dev->updated_at_ms.present) {
        int n = snprintf(ts, sizeof ts, "%lld", (long long)dev->updated_at_ms.value);
        updated = (opt_str){ts, (size_t)n, true};
    }
    size_t pos = 0;
    pos = put_field(buf, size, pos, dev->browser_type);
    pos = put_field(buf, size, pos, dev->os_type);
    pos = put_field(buf, size, pos, dev->device_type);
    pos = put_field(buf, size, pos, updated);
    if (size)
        buf[pos < size ? pos : size - 1] = '\0';
    return pos;
}

static bool take_field(const char *v, size_t len, size_t *pos, opt_str *out)
{
    if (*pos >= len)
        return false;
    if (v[*pos] == '-') {
        (*pos)++;
        *out = (opt_str){0};
        return true;
    }
    size_t n = 0, p = *pos;
    while (p < len && v[p] >= '0' && v[p] <= '9')
        n = n * 10 + (size_t)(v[p++] - '0');
    if (p == *pos || p >= len || v[p] != ':' || len - (p + 1) < n)
        return false;
    *out = (opt_str){v + p + 1, n, true};
    *pos = p + 1 + n;
    return true;
}

bool device_value_decode(const char *value, size_t len, device_record *out)
{
    size_t pos = 0;
    opt_str updated;
    memset(out, 0, sizeof *out);
    if (!take_field(value, len, &pos, &out->browser_type) ||
        !take_field(value, len, &pos, &out->os_type) ||
        !take_field(value, len, &pos, &out->device_type) ||
        !take_field(value, len, &pos, &updated) || pos != len)
        return false;
    if (updated.present) {
        char tmp[32];
        if (updated.len == 0 || updated.len >= sizeof tmp)
            return false;
        memcpy(tmp, updated.ptr, updated.len);
        tmp[updated.len] = '\0';
        char *end;
        out->updated_at_ms.value = strtoll(tmp, &end, 10);
        out->updated_at_ms.present = *end == '\0';
        if (!out->updated_at_ms.present)
            return false;
    }
    return true;
}

/* ---- dimension changes ------------------------------------------------- */

static uint32_t group_of_dim(enum dim_kind kind, int64_t id)
{
    return kind == DIM_DEVICES ? group_of_device(id) : group_of_user(id);
}

int batch_add_dim(batch *b, const dim_change *c)
{
    char stack_payload[1024];
    size_t need = dim_payload_encode(c, stack_payload, sizeof stack_payload);
    char *payload = need <= sizeof stack_payload ? stack_payload : malloc(need);
    if (!payload)
        return -1;
    if (payload != stack_payload)
        dim_payload_encode(c, payload, need);
    int rc = -1;
    char *seen_key = NULL;

    unsigned char ekey[9];
    ekey[0] = (unsigned char)c->kind;
    memcpy(ekey + 1, &c->id, 8);
    bool inserted;
    uint32_t *slot =
        bytes_map_upsert(&b->dim_index, ekey, sizeof ekey, (uint32_t)b->n_dim_entities, &inserted);
    if (!slot)
        goto out;
    uint32_t e = *slot;
    if (inserted) {
        if (GROW_ONE(b->dim_entities, b->n_dim_entities, b->cap_dim_entities, 1024))
            goto out;
        uint32_t g = group_of_dim(c->kind, c->id);
        b->dim_entities[b->n_dim_entities++] =
            (dim_entity){c->id, (uint8_t)c->kind, BATCH_NONE, 0, b->dim_head[g]};
        b->dim_head[g] = e;
    }
    /* An exact repeat of a change already in this batch adds nothing. */
    size_t klen = 4 + 8 + need;
    if (!(seen_key = malloc(klen)))
        goto out;
    memcpy(seen_key, &e, 4);
    memcpy(seen_key + 4, &c->updated_at_ms, 8);
    memcpy(seen_key + 12, payload, need);
    if (!bytes_map_upsert(&b->dim_seen, seen_key, klen, 1, &inserted))
        goto out;
    if (inserted) {
        uint32_t off;
        if (GROW_ONE(b->dim_changes, b->n_dim_changes, b->cap_dim_changes, 1024) ||
            store_string(b, payload, need, &off))
            goto out;
        dim_entity *ent = &b->dim_entities[e];
        b->dim_changes[b->n_dim_changes] =
            (dim_change_node){c->updated_at_ms, off, (uint32_t)need, ent->changes_head};
        ent->changes_head = (uint32_t)b->n_dim_changes++;
        ent->nchanges++;
    }
    rc = 0;
out:
    free(seen_key);
    if (payload != stack_payload)
        free(payload);
    return rc;
}

size_t batch_dim_entity_count(const batch *b, uint32_t g)
{
    size_t n = 0;
    for (uint32_t e = b ? b->dim_head[g] : BATCH_NONE; e != BATCH_NONE; e = b->dim_entities[e].next)
        n++;
    return n;
}

typedef struct {
    const batch *b;
    const dim_change_node *node;
} dim_sort_item;

static int cmp_dim_item(const void *x, const void *y)
{
    const dim_change_node *a = ((const dim_sort_item *)x)->node;
    const dim_change_node *c = ((const dim_sort_item *)y)->node;
    if (a->updated_at_ms != c->updated_at_ms)
        return a->updated_at_ms < c->updated_at_ms ? -1 : 1;
    const batch *b = ((const dim_sort_item *)x)->b;
    size_t n = a->payload_len < c->payload_len ? a->payload_len : c->payload_len;
    int r = memcmp(batch_str(b, a->payload_off), batch_str(b, c->payload_off), n);
    if (r)
        return r;
    return a->payload_len < c->payload_len ? -1 : a->payload_len > c->payload_len;
}

int batch_dim_fields(const batch *b, uint32_t g,
                     int (*fn)(void *ctx, const char *field, size_t field_len, const char *entries,
                               size_t entries_len),
                     void *ctx)
{
    dim_sort_item *items = NULL;
    size_t cap_items = 0;
    char *buf = NULL;
    size_t cap_buf = 0;
    int rc = 0;
    for (uint32_t e = b ? b->dim_head[g] : BATCH_NONE; e != BATCH_NONE && rc == 0;
         e = b->dim_entities[e].next) {
        const dim_entity *ent = &b->dim_entities[e];
        if (ent->nchanges > cap_items) {
            void *p = realloc(items, ent->nchanges * sizeof *items);
            if (!p) {
                rc = -1;
                break;
            }
            items = p;
            cap_items = ent->nchanges;
        }
        size_t n = 0, need = 0;
        for (uint32_t c = ent->changes_head; c != BATCH_NONE; c = b->dim_changes[c].next) {
            items[n++] = (dim_sort_item){b, &b->dim_changes[c]};
            need += 48 + b->dim_changes[c].payload_len;
        }
        qsort(items, n, sizeof *items, cmp_dim_item);
        if (need > cap_buf) {
            void *p = realloc(buf, need);
            if (!p) {
                rc = -1;
                break;
            }
            buf = p;
            cap_buf = need;
        }
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
            len += dim_entry_encode(items[i].node->updated_at_ms,
                                    batch_str(b, items[i].node->payload_off),
                                    items[i].node->payload_len, buf + len, cap_buf - len);
        char field[32];
        size_t flen = dim_field((enum dim_kind)ent->kind, ent->id, field, sizeof field);
        rc = fn(ctx, field, flen, buf, len);
    }
    free(items);
    free(buf);
    return rc;
}
