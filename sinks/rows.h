/*
 * rows.h — the sink rows a flush writes, and their COPY text encoding.
 *
 * A flush turns Redis state into whole-row values (processors/flush_rows.h): the full hit and
 * unique arrays of a (host, month), its datelist, and per (user, month) the full set of
 * (browser_type, day mask) rows. Rows are absolute values, never increments, so writing the same
 * rows twice leaves the tables unchanged. The encoders write PostgreSQL's COPY text format,
 * escaping every byte COPY treats specially, so no host name can break a row.
 */
#ifndef ACTIVITY_ROWS_H
#define ACTIVITY_ROWS_H

#include "consumers/records.h"
#include "processors/flush_rows.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len, cap;
} strbuf;

void strbuf_free(strbuf *sb);
int strbuf_append(strbuf *sb, const void *data, size_t len);
int strbuf_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a value escaped for COPY text format. */
int strbuf_copy_text(strbuf *sb, const char *s, size_t len);

/* One line of stage_hosts: host, month_start, hit_array,
 * unique_visitors_array, host_activity_datelist. */
int rows_encode_host(strbuf *sb, const host_row *row);
/* One line of stage_daily: host, day (d of month), users (the sketch bytes,
 * as bytea hex input, which both hll and bytea columns read). */
int rows_encode_daily(strbuf *sb, const char *host, size_t host_len, int32_t month, int day,
                      const unsigned char *sketch, size_t len);
/* One line of stage_users: user_id, browser_type, month_start,
 * device_activity_datelist, datelist_int. */
int rows_encode_user(strbuf *sb, const user_row *row);
/* One line of stage_user_masks: user_id, month_start, entry, device_id,
 * datelist_int (activity_user_masks). */
int rows_encode_user_mask(strbuf *sb, const user_mask_row *row);
/* One line of stage_user_keys: user_id, month_start, dates_active,
 * datelist_int: a (user, month) whose rows are replaced, and its
 * users_cumulated row (mask: the user's days on every device). */
int rows_encode_user_key(strbuf *sb, int64_t user_id, int32_t month, uint32_t mask);

/* "{2023-01-31,2023-01-05}": active days of the mask, most recent first. */
int rows_datelist(strbuf *sb, int32_t month, uint32_t mask);

#endif
