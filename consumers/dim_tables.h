/*
 * dim_tables.h — the shape of the two SCD2 dimensions (dim_devices,
 * dim_users): their columns, and where each profile attribute sits in a
 * decoded record.
 *
 * The decoders (consumers/avro_codec.h, consumers/text_records.h) need the
 * shape to read a record; the change text forms that carry a record to the
 * flush are processors/dims.h's, the tables themselves sinks/sql/schema.sql.
 */
#ifndef ACTIVITY_DIM_TABLES_H
#define ACTIVITY_DIM_TABLES_H

#include "consumers/records.h"

#include <stddef.h>

enum dim_kind { DIM_DEVICES = 0, DIM_USERS = 1, DIM_COUNT };

/* A tombstone has no body: its time is this header's value (decimal epoch
 * milliseconds) when present, else the Kafka record's timestamp. */
#define DIM_TOMBSTONE_TIME_HEADER "activity.updated_at"

#define DIM_MAX_ATTRS PROFILE_NATTRS

/* What a dimension table looks like; column names double as the CSV
 * column names of `activity load`. */
typedef struct {
    const char *table;   /* "dim_devices" */
    const char *key;     /* natural key column, "device_id" */
    const char *sk;      /* surrogate key column, "device_sk" */
    const char *changes; /* the change history table, "dim_devices_changes" */
    char tag;            /* field prefix in the Redis buffer: 'd' or 'u' */
    size_t nattrs;
    const char *attrs[DIM_MAX_ATTRS];
} dim_table;

extern const dim_table dim_tables[DIM_COUNT];

/* Where profile attribute i sits in the nested Avro record and JSON object:
 * {"name", "first"}, ..., {"contact", "value"}. */
extern const char *const profile_paths[PROFILE_NATTRS][2];

#endif
