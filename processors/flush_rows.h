/*
 * flush_rows.h — the rows a flush writes, as plain C values.
 *
 * Built in processors/ from Redis state (processors/flush_plan.h), encoded
 * for COPY in sinks/rows.h: defined once here so that the read of a (host,
 * month) fills the very struct the sink encodes. Rows are absolute values,
 * never increments, so writing the same rows twice leaves the tables
 * unchanged.
 */
#ifndef ACTIVITY_FLUSH_ROWS_H
#define ACTIVITY_FLUSH_ROWS_H

#include "consumers/records.h"

#include <stddef.h>
#include <stdint.h>

/* One (host, month): the full hit and unique-visitor arrays, and the
 * day's sketches of host_daily_uniques (lib/hll.h). */
typedef struct {
    const char *host;
    size_t host_len;
    int32_t month;                /* month_index */
    const int64_t *hits;          /* [days_in_month], [d-1] = day d */
    const int64_t *uniq;          /* round(cardinality) of the day's sketch */
    unsigned char *const *sketch; /* [d-1]: the sketch's bytes, NULL on days without hits */
    const size_t *sketch_len;
} host_row;

/* One entry of a user month's value, as activity_user_masks keeps it: a
 * device (kind 'd', device), events without one ('n'), or a browser entry
 * of a month brought back per browser ('b', browser). */
typedef struct {
    int64_t user_id;
    int32_t month;
    char kind;
    int64_t device;
    opt_str browser;
    uint32_t mask;
} user_mask_row;

/* One (user, month, browser_type): the days the user was active on it. */
typedef struct {
    int64_t user_id;
    int32_t month;
    opt_str browser_type;
    uint32_t mask; /* bit d-1 = active on day d */
} user_row;

#endif
