/*
 * pg_sink.h — writes flushed rows to PostgreSQL, one transaction per flush.
 *
 * Rows arrive already encoded in COPY text format (sinks/rows.h); this
 * module stages them with COPY into temporary tables and applies them with
 * one set-based statement per table, so a flush costs a handful of round
 * trips however many rows it carries.
 */
#ifndef ACTIVITY_PG_SINK_H
#define ACTIVITY_PG_SINK_H

#include "processors/flush_plan.h"
#include "sinks/rows.h"
#include "sinks/scd2.h"
#include "lib/log.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct pg_sink pg_sink;

pg_sink *pg_sink_connect(const char *dsn, errbuf *err);
void pg_sink_free(pg_sink *pg);
/* True when the last error was a lost connection or a server going away:
 * worth retrying later, as opposed to e.g. a permission error. */
bool pg_sink_error_is_transient(const pg_sink *pg);
/* lock_timeout and statement_timeout of this session and of every
 * reconnection (0: none). A flush blocked by another session's lock, or a
 * statement running too long, then fails as transient and is retried with
 * backoff, rather than stalling the processor (and its SIGTERM) for as
 * long as the lock is held. */
int pg_sink_set_timeouts(pg_sink *pg, long lock_timeout_ms, long statement_timeout_ms, errbuf *err);
/* A round trip (reconnecting first if the connection is gone): whether
 * PostgreSQL answers, for readiness when a flush had nothing to write. */
int pg_sink_ping(pg_sink *pg, errbuf *err);
/* The server's version (server_version), for the start-up line. */
const char *pg_sink_server_version(const pg_sink *pg);

/* Creates the sink tables (sinks/sql/schema.sql) if missing. */
int pg_sink_migrate(pg_sink *pg, errbuf *err);

/* The attributes the SCD2 dimensions track (default: all); the next write
 * merges both dimensions, rebuilding one whose tracked attributes changed. */
int pg_sink_set_scd2(pg_sink *pg, const scd2_config *cfg, errbuf *err);
/* True until that merge has committed: a flush with nothing else to write
 * should still write, so that a rebuild does not wait for a change. */
bool pg_sink_dims_pending(const pg_sink *pg);

typedef struct {
    strbuf hosts;     /* stage_hosts lines */
    strbuf user_keys; /* stage_user_keys lines: the (user, month)s being replaced */
    strbuf users;     /* stage_users lines */
    strbuf masks;     /* stage_user_masks lines */
    strbuf daily;     /* stage_daily lines: host_daily_uniques' sketches */
    size_t n_hosts, n_user_keys, n_users, n_daily;
    strbuf dims[DIM_COUNT]; /* stage_dim_devices / stage_dim_users lines (sinks/scd2.h) */
    size_t n_dims[DIM_COUNT];
} flush_payload;

void flush_payload_free(flush_payload *p);
/* Encodes a flush's planned rows (processors/flush_plan.h) as the COPY
 * lines of the staging tables. Returns 0, or -1 when out of memory. */
int flush_payload_build(flush_payload *p, const flush_plan *plan);

/* Writes the payload in one transaction, fenced by token: returns 0 when
 * committed, 1 when a flush with a newer token for fence_name has
 * committed already (nothing written), PG_SINK_BEHIND when the fence holds
 * a token (*held) older than at_least, a token known to have committed:
 * PostgreSQL went back in time (nothing written), -1 on error (nothing
 * written). */
#define PG_SINK_BEHIND 2
int pg_sink_write(pg_sink *pg, const flush_payload *p, const char *fence_name, int64_t token,
                  int64_t at_least, int64_t *held, errbuf *err);
/* Empties the sink tables and forgets fence_name's newest token (a full
 * rebuild with `activity backfill --reset`). Refuses (-1, err names them)
 * while other deployments (other fence names, i.e. Redis prefixes) have
 * flushed into the same tables: their rows would go too. */
int pg_sink_reset(pg_sink *pg, const char *fence_name, errbuf *err);
/* The same refusal, checked before anything is deleted elsewhere (the
 * Redis state of a reset goes first). */
int pg_sink_check_sole_owner(pg_sink *pg, const char *fence_name, errbuf *err);
/* The consumer groups other than group registered for prefix in
 * activity_consumer_groups (cmd/deployment.c), as a NULL-terminated array
 * (free with strings_free); returns how many, -1 on error. */
int pg_sink_prefix_groups(pg_sink *pg, const char *prefix, const char *group, char ***groups,
                          errbuf *err);
/* Registers (add) or forgets (!add) that group consumes prefix. */
int pg_sink_register_group(pg_sink *pg, const char *prefix, const char *group, bool add,
                           errbuf *err);
/* The newest token committed for fence_name (0 if none). */
/* Runs one read with text parameters (reconnecting first if the
 * connection was lost) and hands each row to fn: ncols values in text
 * form, NULL for SQL NULL, with their lengths. fn returns 0, or -1 to stop
 * (err set by it). Returns 0, or -1 with err set (what names the read). */
typedef int (*pg_row_fn)(void *ctx, const char *const *values, const size_t *lens, int ncols,
                         errbuf *err);
int pg_sink_read_rows(pg_sink *pg, const char *sql, int n, const char *const *params,
                      const char *what, pg_row_fn fn, void *ctx, errbuf *err);
int pg_sink_fence_token(pg_sink *pg, const char *fence_name, int64_t *token, errbuf *err);

#endif
