/*
 * dirty_marker.h — the members of a key group's dirty and flushing sets
 * (<p>:{g}:dirty, :flushing), and of its waiting set (<p>:{g}:w): their one
 * definition, for the writers (processors/apply.lua, take_dirty.lua,
 * redis_state_mark_all_dirty and redis_state_wait_for_devices) and the
 * reader (processors/flush_plan.c).
 *
 *   h<YYYYMM>:<host>   the (host, month) has new hits or uniques
 *   u<YYYYMM>:<user>   the (user, month) has new day masks
 *   n<device>          the device was described for the first time: users
 *                      waiting on it are re-flushed
 *   c<device>          the device's browser changed: its users are
 *                      re-flushed
 *   D                  the group's dimension buffer was taken (take_dirty.lua)
 *
 * Waiting-set member: "<device>|<YYYYMM>:<user>", the (user, month) waits
 * for the device to be described.
 *
 * The C writers use the tags below; apply.lua and take_dirty.lua spell the
 * same letters and point here. The parsers live in processors/flush_plan.c,
 * the one reader.
 */
#ifndef ACTIVITY_DIRTY_MARKER_H
#define ACTIVITY_DIRTY_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIRTY_TAG_HOST 'h'
#define DIRTY_TAG_USER 'u'
#define DIRTY_TAG_NEW_DEVICE 'n'
#define DIRTY_TAG_DEVICE_CHANGED 'c'
#define DIRTY_TAG_DIMENSIONS 'D'
#define DIRTY_WAITING_SEP '|'

enum dirty_kind {
    DIRTY_HOST_MONTH,     /* 'h': month, name (the host) */
    DIRTY_USER_MONTH,     /* 'u': month, id (the user) */
    DIRTY_NEW_DEVICE,     /* 'n': id */
    DIRTY_DEVICE_CHANGED, /* 'c': id */
    DIRTY_DIMENSIONS,     /* 'D' */
    DIRTY_UNKNOWN,
};

typedef struct {
    enum dirty_kind kind;
    int32_t month; /* month_index */
    int64_t id;
    const char *name; /* points into the member */
    size_t name_len;
} dirty_marker;

/* Parses a dirty-set member; DIRTY_UNKNOWN when it is none of the above. */
dirty_marker dirty_marker_parse(const char *s, size_t len);
/* Parses a waiting-set member; false when malformed. */
bool dirty_waiting_parse(const char *s, size_t len, int64_t *device, int32_t *month, int64_t *user);

#endif
