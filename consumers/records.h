/*
 * records.h — the decoded record structs that stages pass to each other.
 *
 * A decoded record borrows its strings from whoever decoded it (the Avro
 * codec's reusable value, or a CSV line buffer); they are valid until that
 * owner decodes the next record. Stages copy what they keep.
 */
#ifndef ACTIVITY_RECORDS_H
#define ACTIVITY_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *ptr;
    size_t len;
    bool present; /* false: the value is null */
} opt_str;

typedef struct {
    int64_t value;
    bool present;
} opt_long;

typedef struct {
    opt_str url;
    opt_str referrer;
    opt_long user_id;   /* absent for anonymous traffic */
    opt_long device_id; /* absent when the client sent none */
    opt_str host;       /* always present in a valid event */
    int64_t event_time_ms;
} web_event;

typedef struct {
    int64_t device_id;
    opt_str browser_type;
    opt_str os_type;
    opt_str device_type;
    opt_long updated_at_ms;
    bool deleted; /* only in `activity load` input: produce a tombstone for device_id */
} device_record;

/* A change of a user's profile (seed 004); attrs[] are in this order, named
 * as dim_users' columns (processors/dims.h has the names and the nested
 * Avro / JSON paths: name.first, ..., contact.value). */
enum {
    PROFILE_FIRST_NAME,
    PROFILE_LAST_NAME,
    PROFILE_TITLE,
    PROFILE_STREET,
    PROFILE_CITY,
    PROFILE_STATE,
    PROFILE_COUNTRY,
    PROFILE_ZIP,
    PROFILE_CONTACT_TYPE,
    PROFILE_CONTACT_VALUE,
    PROFILE_NATTRS
};

typedef struct {
    int64_t user_id;
    opt_str attrs[PROFILE_NATTRS];
    opt_long updated_at_ms;
    bool deleted; /* only in `activity load` input: produce a tombstone for user_id */
} profile_record;

/* Schema ids of the local schema directory, used in the Confluent framing
 * until a schema registry assigns them. */
enum record_kind {
    RECORD_NONE = 0,
    RECORD_WEB_EVENT = 1,
    RECORD_DEVICE = 2,
    RECORD_USER_PROFILE = 3,
};

typedef struct {
    enum record_kind kind;
    union {
        web_event event;
        device_record device;
        profile_record profile;
    } u;
} decoded_record;

#endif
