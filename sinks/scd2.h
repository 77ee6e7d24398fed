/*
 * scd2.h — the SCD2 dimensions at flush time: which attributes are tracked,
 * the buffered changes as staging rows, and the set-based merge SQL.
 *
 * A flush takes each key group's buffer of dimension changes (per entity,
 * sorted, deduplicated: processors/dims.h), parses them into dim_changes
 * (processors/flush_plan.h), and this file turns those into COPY rows of
 * stage_dim_devices / stage_dim_users. In the flush's transaction, the
 * merge (sinks/sql/scd2.sql) adds them to the dimension's change history and
 * re-derives the versions of the entities they touch from that history:
 * one INSERT ... SELECT with window functions, a DELETE, an UPDATE and an
 * INSERT per dimension, however many rows. Because the versions are a
 * function of the history, and the history is a set (one change per key
 * and instant, ties settled by a fixed rule), the result depends neither
 * on arrival order nor on repeats: a late change lands in its place, and a
 * replay changes nothing.
 *
 * Tracked (type 2) attributes start a new version when they change; the
 * others (type 1) are overwritten in every version of the entity with its
 * latest value. By default every attribute is tracked.
 */
#ifndef ACTIVITY_SCD2_H
#define ACTIVITY_SCD2_H

#include "processors/dims.h"
#include "sinks/rows.h"
#include "lib/log.h"

#include <stdbool.h>

typedef struct {
    bool tracked[DIM_COUNT][DIM_MAX_ATTRS];
} scd2_config;

/* Every attribute tracked. */
void scd2_config_defaults(scd2_config *c);
/* Sets kind's tracked attributes from "a,b,c" (attribute column names, or
 * "all"). Returns 0, or -1 with err naming the unknown one. */
int scd2_config_parse(scd2_config *c, enum dim_kind kind, const char *list, errbuf *err);
/* "a,b,c": the tracked attributes of kind, into buf. */
void scd2_config_format(const scd2_config *c, enum dim_kind kind, char *buf, size_t size);

/* The SQL that creates the staging tables (once per connection), and the
 * merge of one dimension (per flush). Returns 0, or -1 with err set. */
int scd2_stage_sql(strbuf *out, errbuf *err);
int scd2_apply_sql(const scd2_config *c, enum dim_kind kind, strbuf *out, errbuf *err);

/* One COPY line of stage_<dim>: key, updated_at_ms, is_tombstone, attrs. */
int scd2_encode_row(strbuf *sb, const dim_change *c);

#endif
