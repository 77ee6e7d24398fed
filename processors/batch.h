/*
 * batch.h — in-memory pre-aggregation of one partition's batch of records.
 *
 * The processor never sends Redis one command per event. Events of a batch
 * are folded here into one delta per key — hits per (host, day), the
 * distinct users per (host, day), an OR-ed day mask per (user, device,
 * month), the last state per device — and each delta is threaded onto its
 * key group's list, so the Redis stage can apply one group at a time.
 */
#ifndef ACTIVITY_BATCH_H
#define ACTIVITY_BATCH_H

#include "consumers/records.h"
#include "processors/bytes_map.h"
#include "processors/dims.h"
#include "processors/key_groups.h"

#include <stdbool.h>
#include <stdint.h>

#define BATCH_NONE UINT32_MAX
/* Strings of one batch are addressed by 32-bit offsets. */
#define BATCH_MAX_STRING_BYTES ((size_t)UINT32_MAX)
/* The run loop ends a batch once its partitions' batches hold this many
 * bytes, whatever --batch-size says: far below BATCH_MAX_STRING_BYTES. */
#define BATCH_SOFT_BYTES ((size_t)256 << 20)

typedef struct {
    uint32_t host_off, host_len; /* in batch.strings */
    int64_t day;                 /* days since 1970-01-01 (UTC) */
    uint64_t hits;
    uint32_t users_head; /* list in batch.users, BATCH_NONE-terminated */
    uint32_t nusers;
    uint32_t next; /* next host-day delta of the same group */
} host_day_delta;

typedef struct {
    int64_t user_id;
    uint32_t next;
} user_node;

/* A user's days on one device in one month. device_null: the events had
 * no device_id (device_id is then 0 and means nothing): they count for
 * users_cumulated, never for the device join of user_devices_cumulated. */
typedef struct {
    int64_t user_id;
    int64_t device_id;
    int32_t month; /* month_index() */
    uint32_t mask; /* bit d-1 = active on day d */
    uint32_t next;
    bool device_null;
} user_device_delta;

typedef struct {
    int64_t device_id;
    uint32_t value_off, value_len; /* encoded attributes, see device_value_encode */
    uint32_t next;
    opt_long updated_at_ms; /* of the record kept: the latest */
} device_delta;

/* One dimension change (dims.h) of an entity; exact duplicates (same
 * updated_at, same payload) are folded. */
typedef struct {
    int64_t updated_at_ms;
    uint32_t payload_off, payload_len; /* in batch.strings */
    uint32_t next;                     /* next change of the same entity */
} dim_change_node;

typedef struct {
    int64_t id;
    uint8_t kind; /* enum dim_kind */
    uint32_t changes_head;
    uint32_t nchanges;
    uint32_t next; /* next entity of the same group */
} dim_entity;

typedef struct {
    uint32_t host_head[KEY_GROUPS];
    uint32_t ud_head[KEY_GROUPS];
    uint32_t dev_head[KEY_GROUPS];
    uint32_t dim_head[KEY_GROUPS];

    host_day_delta *host_days;
    size_t n_host_days, cap_host_days;
    user_node *users;
    size_t n_users, cap_users;
    user_device_delta *uds;
    size_t n_uds, cap_uds;
    device_delta *devices;
    size_t n_devices, cap_devices;
    dim_entity *dim_entities;
    size_t n_dim_entities, cap_dim_entities;
    dim_change_node *dim_changes;
    size_t n_dim_changes, cap_dim_changes;

    char *strings;
    size_t strings_len, strings_cap;

    bytes_map host_day_index; /* (day, host) -> host_days index */
    bytes_map user_seen;      /* (host_day index, user) -> 1 */
    bytes_map ud_index;       /* (user, device, month) -> uds index */
    bytes_map device_index;   /* device_id -> devices index */
    bytes_map dim_index;      /* (kind, id) -> dim_entities index */
    bytes_map dim_seen;       /* (entity, updated_at, payload) -> 1 */
} batch;

void batch_init(batch *b);
void batch_free(batch *b);
void batch_reset(batch *b);

/* Folds an event in. include_host / include_user let the caller skip the
 * parts whose key group has already applied this offset (fences). Returns 0,
 * or -1 on out-of-memory. */
int batch_add_event(batch *b, const web_event *ev, bool include_host, bool include_user);
/* Keeps one state per device: the latest record by updated_at (records
 * without one count as latest, as do equal times), so the device join does
 * not depend on the order the topic delivers a device's history in. */
int batch_add_device(batch *b, const device_record *dev);
/* Folds a dimension change in (kept per entity until the apply). */
int batch_add_dim(batch *b, const dim_change *c);

/* Group g's dimension changes for apply.lua: the number of entities, and
 * per entity its buffer field ("d42") with its changes as a dims.h entry
 * list, sorted by updated_at (then payload bytes). fn's return value
 * stops the walk when non-zero; returns that, or -1 when out of memory. */
size_t batch_dim_entity_count(const batch *b, uint32_t g);
int batch_dim_fields(const batch *b, uint32_t g,
                     int (*fn)(void *ctx, const char *field, size_t field_len, const char *entries,
                               size_t entries_len),
                     void *ctx);

static inline const char *batch_str(const batch *b, uint32_t off)
{
    return b->strings + off;
}

bool batch_group_empty(const batch *b, uint32_t group);
/* The memory the batch's folded state needs: its deltas, strings and
 * maps, counted by entries (so it grows with the distinct keys folded,
 * not with the records: a record whose keys are in already adds nothing).
 * The arrays' and maps' capacities are at most about twice that. */
size_t batch_bytes(const batch *b);

/* The memory the batch has allocated: a reset keeps it, so that the next
 * batch does not grow its arrays and maps again. */
size_t batch_capacity(const batch *b);
/* Gives that memory back (the batch must be empty: just reset). */
void batch_release(batch *b);

/* Device attributes as one string: each field is "-" (null) or
 * "<len>:<bytes>", in the order browser_type, os_type, device_type,
 * updated_at. Length-prefixed so any byte may appear in a value; the
 * browser_type comes first so Lua can compare it cheaply. This is the
 * format's one definition: apply.lua stores the value as given and reads
 * only fields 1 and 4 of it (browser(), updated_at()), following this
 * comment; the flush decodes it with device_value_decode. Returns bytes
 * written or needed (like snprintf). */
size_t device_value_encode(const device_record *dev, char *buf, size_t size);
/* Parses it back; strings point into value. Returns false if malformed. */
bool device_value_decode(const char *value, size_t len, device_record *out);

#endif
