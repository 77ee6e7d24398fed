/*
 * pg_backfill.h — PostgreSQL's side of `activity backfill --from/--to`: the
 * scratch schema a range is rebuilt into, and the one transaction that
 * replaces the range's rows of the live sink tables with it.
 *
 * The rebuild runs the ordinary flush against a scratch schema (the sink
 * tables created there by the same schema.sql; the scratch run's session
 * reaches them through search_path), so the live tables see nothing until
 * the swap. The list of month-keyed tables the swap replaces lives here,
 * once (pg_backfill.c: RANGE_TABLES).
 */
#ifndef ACTIVITY_PG_BACKFILL_H
#define ACTIVITY_PG_BACKFILL_H

#include "lib/log.h"

#include <stddef.h>

typedef struct pg_backfill pg_backfill;

/* Connects with dsn (the live tables) and takes the advisory lock of
 * prefix's backfills for the session: one range backfill per prefix at a
 * time (refused, NULL with err set, while another holds it). */
pg_backfill *pg_backfill_open(const char *dsn, const char *prefix, errbuf *err);
void pg_backfill_free(pg_backfill *b);

/* Drops and creates the scratch schema (a leftover of an interrupted
 * backfill goes first). */
int pg_backfill_scratch_create(pg_backfill *b, const char *schema, errbuf *err);
int pg_backfill_scratch_drop(pg_backfill *b, const char *schema, errbuf *err);

/* Connects with dsn as the scratch run will (PGOPTIONS set) and checks
 * that its session's current schema is the scratch one: a DSN whose own
 * options set search_path would make the scratch run write the live
 * tables. Returns 0, or -1 with err set. */
int pg_backfill_check_scratch_session(const char *dsn, const char *schema, errbuf *err);

typedef struct {
    const char *table;
    long long deleted, inserted;
} pg_backfill_table_count;

/* One transaction: for every month-keyed sink table present, locks it
 * against writers (a live flush waits), deletes its rows whose month or
 * day column is in [from, to) (ISO dates) and inserts the scratch
 * schema's rows of that range. counts gets one entry per table replaced
 * (at most cap); *n how many. */
int pg_backfill_swap(pg_backfill *b, const char *schema, const char *from, const char *to,
                     pg_backfill_table_count *counts, size_t cap, size_t *n, errbuf *err);

#endif
