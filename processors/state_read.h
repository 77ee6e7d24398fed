/*
 * state_read.h — the reads a flush makes of the processor's Redis state,
 * returned as plain C values (implemented in processors/state_read.c).
 */
#ifndef ACTIVITY_STATE_READ_H
#define ACTIVITY_STATE_READ_H

#include "processors/bytes_map.h"
#include "processors/flush_rows.h"
#include "processors/key_groups.h"
#include "processors/redis_conn.h"

/* The dimension changes these groups' flushing hold (HGETALL of each
 * :dimflushing, pipelined): out[i] for groups[i], field/value pairs
 * (field "d<id>"/"u<id>", value the entries: processors/dims.h); freed by
 * the caller with redis_strings_free. At most KEY_GROUPS groups. */
int redis_state_read_dims(redis_state *rs, const uint32_t *groups, size_t n, redis_strings *out,
                          errbuf *err);

/* The per-day values of one (host, month), [d-1] = day d. */
typedef struct {
    int64_t hits[31];
    int64_t uniq[31]; /* round(cardinality) of the day's sketch */
    /* The day's sketch (lib/hll.h) built from the exact set or the
     * HyperLogLog registers; malloc'd, NULL on days without hits. */
    unsigned char *sketch[31];
    size_t sketch_len[31];
} host_days;

/* Reads each rows[i] (host, host_len, month) into days[i] and points
 * rows[i].hits / .uniq / .sketch at it: one read_host.lua call per (host,
 * month). On error nothing is left to release. */
int redis_state_read_host_months(redis_state *rs, host_row *rows, host_days *days, size_t n,
                                 errbuf *err);
/* Frees the sketches of days (after a successful read). */
void host_days_release(host_days *days);

typedef struct {
    int64_t user_id;
    int32_t month;
    char *devices; /* "device=mask,..." or NULL; malloc'd, freed by the caller */
    size_t devices_len;
} user_month_state;

int redis_state_read_user_months(redis_state *rs, user_month_state *um, size_t n, errbuf *err);

/* Device attribute values (encoded, see device_value_encode): vals[i] is a
 * malloc'd copy or NULL for an unknown device, freed by the caller. One
 * HMGET per key group. */
int redis_state_read_devices(redis_state *rs, const int64_t *ids, size_t n, char **vals,
                             size_t *lens, errbuf *err);

/* Registers (month, user) as waiting for an unknown device (in the
 * device's key group), then reads the devices again: closes the race with
 * a device record applied meanwhile. */
int redis_state_wait_for_devices(redis_state *rs, const int64_t *device_ids, const int32_t *months,
                                 const int64_t *user_ids, size_t n, char **vals, size_t *lens,
                                 errbuf *err);

/* Members "device|YYYYMM:user" of a device group's waiting set; freed by
 * the caller with redis_strings_free. */
int redis_state_waiting(redis_state *rs, uint32_t group, redis_strings *members, errbuf *err);
int redis_state_forget_waiting(redis_state *rs, uint32_t group, const char *const *members,
                               const size_t *lens, size_t n, errbuf *err);

/* Every (month, user) whose user hash mentions one of devices (int64 ids
 * as keys); one full scan for all of them, used only when devices' browsers
 * change. Calls fn for each; a non-zero return from fn stops the scan
 * with an error. */
int redis_state_users_of_devices(redis_state *rs, const bytes_map *devices,
                                 int (*fn)(void *ctx, int32_t month, int64_t user), void *ctx,
                                 errbuf *err);

/* A month set of each key group, as month_index values: the months it
 * records evicted (<p>:{g}:evicted; a flush that finds a dirty or waiting
 * entity's state gone reads them: another instance evicted its month
 * after the flush read the marker, so PostgreSQL holds it final), or the
 * months it holds (<p>:{g}:months). */
typedef struct {
    int32_t *months;
    size_t n;
} month_set;
int redis_state_read_evicted(redis_state *rs, month_set out[KEY_GROUPS], errbuf *err);
int redis_state_read_held(redis_state *rs, month_set out[KEY_GROUPS], errbuf *err);
bool month_set_has(const month_set *e, int32_t month);
void month_sets_free(month_set out[KEY_GROUPS]);

#endif
