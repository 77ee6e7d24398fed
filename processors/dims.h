/*
 * dims.h — changes of the SCD2 dimensions (dim_devices, dim_users) on their
 * way from a Kafka record to the flush.
 *
 * A dimension is fed by a keyed, compacted topic: activity.devices (key
 * device_id) and activity.user_profiles (key user_id). Each record is one
 * change: the entity's attribute values as of its updated_at (the Kafka
 * timestamp when the record has none), or a tombstone — a null value for
 * the key — that deletes the entity as of the record's time. A change is
 * turned into a dim_change here and buffered in Redis per entity until the
 * next flush merges it into PostgreSQL (sinks/scd2.h).
 *
 * Text forms (all length-prefixed, so any byte may appear in a value):
 *
 *   payload   "T" for a tombstone; else "V" followed by each attribute as
 *             "-" (null) or "<len>:<bytes>", in dim_table.attrs order.
 *   entry     "<updated_at ms>:<payload len>:<payload>".
 *   entries   zero or more entries back to back, sorted by updated_at, no
 *             two equal: the per-entity value of the Redis buffer hash,
 *             field "<tag><id>" ("d42", "u7"). apply.lua merges a batch's
 *             entries into it; two different payloads with the same
 *             updated_at are both kept (the flush's SQL picks one, by a rule
 *             that does not depend on arrival order).
 */
#ifndef ACTIVITY_DIMS_H
#define ACTIVITY_DIMS_H

#include "consumers/dim_tables.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    enum dim_kind kind;
    int64_t id;
    int64_t updated_at_ms;
    bool tombstone;
    opt_str attrs[DIM_MAX_ATTRS]; /* borrowed; unused for a tombstone */
} dim_change;

/* From a decoded record; fallback_ms (the Kafka timestamp) stands in for a
 * missing updated_at. */
void dim_change_from_device(const device_record *dev, int64_t fallback_ms, dim_change *out);
void dim_change_from_profile(const profile_record *p, int64_t fallback_ms, dim_change *out);
void dim_change_tombstone(enum dim_kind kind, int64_t id, int64_t at_ms, dim_change *out);

/* Writes the payload; returns the bytes written or needed (like snprintf,
 * without a terminating NUL). */
size_t dim_payload_encode(const dim_change *c, char *buf, size_t size);
/* Parses a payload of kind into out (attrs point into p); false if
 * malformed. Sets tombstone, attrs; leaves kind, id, updated_at_ms. */
bool dim_payload_decode(enum dim_kind kind, const char *p, size_t len, dim_change *out);

typedef struct {
    int64_t updated_at_ms;
    const char *payload;
    size_t payload_len;
} dim_entry;

/* Appends one entry to buf (at most size bytes); returns bytes written or
 * needed. */
size_t dim_entry_encode(int64_t updated_at_ms, const char *payload, size_t len, char *buf,
                        size_t size);
/* Reads the entry at *pos and advances it. Returns 1 with *e set, 0 at the
 * end, -1 when the text is malformed. */
int dim_entries_next(const char *s, size_t len, size_t *pos, dim_entry *e);

/* "d42" / "u7": the buffer field of an entity; returns its length. */
size_t dim_field(enum dim_kind kind, int64_t id, char *buf, size_t size);
/* A decimal int64 and nothing else (a record key, a header value). */
bool dim_parse_id(const char *s, size_t len, int64_t *id);
/* Parses a buffer field back; false if it is not one. */
bool dim_field_parse(const char *s, size_t len, enum dim_kind *kind, int64_t *id);

#endif
