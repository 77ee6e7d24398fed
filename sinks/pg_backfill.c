/*
 * pg_backfill.c — the scratch schema and the range swap of `activity
 * backfill --from/--to` (see pg_backfill.h).
 */
#include "sinks/pg_backfill.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every sink table keyed by a month or a day, with the column that says
 * which: a range backfill replaces exactly these tables' rows of the
 * range. A table that is not (yet) in the schema is skipped; add each new
 * month- or day-keyed table here. The dimensions and bookkeeping tables
 * are not keyed by time and are never touched. */
static const struct {
    const char *table, *column;
} RANGE_TABLES[] = {
    {"host_activity_reduced", "month_start"},
    {"hosts_cumulated", "month_start"},
    {"user_devices_cumulated", "month_start"},
    {"users_cumulated", "month_start"},
    {"activity_user_masks", "month_start"},
    {"host_daily_uniques", "day"},
};
#define N_RANGE_TABLES (sizeof RANGE_TABLES / sizeof RANGE_TABLES[0])

struct pg_backfill {
    PGconn *conn;
};

static void set_pq_error(errbuf *err, const char *what, const PGconn *conn, const PGresult *r)
{
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    err_set(err, "%s: %s", what, msg && *msg ? msg : "unknown error");
    size_t n = strlen(err->msg);
    while (n && err->msg[n - 1] == '\n')
        err->msg[--n] = '\0';
}

/* Runs sql with up to two text parameters; returns the result (caller
 * clears) or NULL with err set. */
static PGresult *query(pg_backfill *b, const char *sql, int n, const char *p1, const char *p2,
                       const char *what, errbuf *err)
{
    const char *params[2] = {p1, p2};
    PGresult *r = PQexecParams(b->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_pq_error(err, what, b->conn, r);
        PQclear(r);
        return NULL;
    }
    return r;
}

static int exec(pg_backfill *b, const char *sql, const char *what, errbuf *err)
{
    PGresult *r = query(b, sql, 0, NULL, NULL, what, err);
    PQclear(r);
    return r ? 0 : -1;
}

pg_backfill *pg_backfill_open(const char *dsn, const char *prefix, errbuf *err)
{
    pg_backfill *b = calloc(1, sizeof *b);
    if (!b) {
        err_set(err, "out of memory");
        return NULL;
    }
    b->conn = PQconnectdb(dsn);
    if (PQstatus(b->conn) != CONNECTION_OK) {
        set_pq_error(err, "cannot connect to postgres", b->conn, NULL);
        pg_backfill_free(b);
        return NULL;
    }
    PGresult *r = query(b,
                        "SELECT pg_try_advisory_lock(hashtext('activity backfill ' || $1)), "
                        "set_config('client_min_messages', 'warning', false)",
                        1, prefix, NULL, "take the backfill lock", err);
    if (!r) {
        pg_backfill_free(b);
        return NULL;
    }
    bool got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got) {
        err_set(err,
                "another activity backfill --from/--to of prefix '%s' is running (it holds "
                "the PostgreSQL advisory lock of the prefix's backfills); wait for it",
                prefix);
        pg_backfill_free(b);
        return NULL;
    }
    return b;
}

void pg_backfill_free(pg_backfill *b)
{
    if (!b)
        return;
    PQfinish(b->conn);
    free(b);
}

int pg_backfill_scratch_drop(pg_backfill *b, const char *schema, errbuf *err)
{
    char *id = PQescapeIdentifier(b->conn, schema, strlen(schema));
    if (!id) {
        set_pq_error(err, "quote the scratch schema's name", b->conn, NULL);
        return -1;
    }
    char sql[512];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", id);
    PQfreemem(id);
    return exec(b, sql, "drop the scratch schema", err);
}

int pg_backfill_scratch_create(pg_backfill *b, const char *schema, errbuf *err)
{
    if (pg_backfill_scratch_drop(b, schema, err))
        return -1;
    char *id = PQescapeIdentifier(b->conn, schema, strlen(schema));
    if (!id) {
        set_pq_error(err, "quote the scratch schema's name", b->conn, NULL);
        return -1;
    }
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", id);
    PQfreemem(id);
    return exec(b, sql, "create the scratch schema", err);
}

int pg_backfill_check_scratch_session(const char *dsn, const char *schema, errbuf *err)
{
    pg_backfill b = {PQconnectdb(dsn)};
    int rc = -1;
    if (PQstatus(b.conn) != CONNECTION_OK) {
        set_pq_error(err, "cannot connect to postgres", b.conn, NULL);
    } else {
        PGresult *r = query(&b, "SELECT current_schema()", 0, NULL, NULL,
                            "read the scratch session's schema", err);
        if (r) {
            const char *got = PQgetisnull(r, 0, 0) ? "(none)" : PQgetvalue(r, 0, 0);
            if (strcmp(got, schema) == 0)
                rc = 0;
            else
                err_set(err,
                        "the scratch run's sessions would use schema %s, not the scratch schema "
                        "%s: the --pg-dsn sets search_path itself (options); remove it from the "
                        "DSN for a range backfill",
                        got, schema);
            PQclear(r);
        }
    }
    PQfinish(b.conn);
    return rc;
}

/* Whether table exists in schema (NULL: the live one, by search_path). */
static int table_exists(pg_backfill *b, const char *schema, const char *table, errbuf *err)
{
    char name[300];
    if (schema) {
        char *s = PQescapeIdentifier(b->conn, schema, strlen(schema));
        if (!s) {
            set_pq_error(err, "quote a schema name", b->conn, NULL);
            return -1;
        }
        snprintf(name, sizeof name, "%s.%s", s, table);
        PQfreemem(s);
    } else {
        snprintf(name, sizeof name, "%s", table);
    }
    PGresult *r =
        query(b, "SELECT to_regclass($1) IS NOT NULL", 1, name, NULL, "look the table up", err);
    if (!r)
        return -1;
    int yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return yes;
}

/* The scratch table's columns, quoted and comma-separated (the live
 * table may list them in another order after migrations). */
/* The live table's columns, comma-separated (*cols), and the same list with
 * each column cast to its live type (*casts). The scratch run may hold a
 * column in another type than the live table: its search_path is the
 * scratch schema only, so a type of an extension that lives elsewhere (hll)
 * is not visible to it and the scratch column falls back to bytea with the
 * same bytes; the cast turns it back on the way in. */
static int column_lists(pg_backfill *b, const char *table, char **cols, char **casts, errbuf *err)
{
    PGresult *r = query(b,
                        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum), "
                        "string_agg(quote_ident(attname) || '::' || "
                        "format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
                        "FROM pg_attribute WHERE attrelid = to_regclass($1) "
                        "AND attnum > 0 AND NOT attisdropped",
                        1, table, NULL, "list the columns", err);
    if (!r)
        return -1;
    *cols = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    *casts = PQgetisnull(r, 0, 1) ? NULL : strdup(PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!*cols || !*casts) {
        free(*cols);
        free(*casts);
        err_set(err, "no columns found for %s (or out of memory)", table);
        return -1;
    }
    return 0;
}

static long long affected(PGresult *r)
{
    const char *n = PQcmdTuples(r);
    return n && *n ? atoll(n) : 0;
}

int pg_backfill_swap(pg_backfill *b, const char *schema, const char *from, const char *to,
                     pg_backfill_table_count *counts, size_t cap, size_t *n, errbuf *err)
{
    *n = 0;
    if (exec(b, "BEGIN", "begin the swap", err))
        return -1;
    char *sid = PQescapeIdentifier(b->conn, schema, strlen(schema));
    if (!sid) {
        set_pq_error(err, "quote the scratch schema's name", b->conn, NULL);
        goto fail;
    }
    for (size_t i = 0; i < N_RANGE_TABLES; i++) {
        const char *t = RANGE_TABLES[i].table, *c = RANGE_TABLES[i].column;
        int live = table_exists(b, NULL, t, err), scratch = table_exists(b, schema, t, err);
        if (live < 0 || scratch < 0)
            goto fail;
        if (!live && !scratch)
            continue;
        if (live != scratch) {
            err_set(err, "table %s exists %s but not %s", t,
                    live ? "live" : "in the scratch schema",
                    live ? "in the scratch schema" : "live");
            goto fail;
        }
        char *cols, *casts;
        if (column_lists(b, t, &cols, &casts, err))
            goto fail;
        size_t len = strlen(cols) + strlen(casts) + 512;
        char *sql = malloc(len);
        if (!sql) {
            free(cols);
            free(casts);
            err_set(err, "out of memory");
            goto fail;
        }
        /* EXCLUSIVE: readers go on, a live flush waits for the commit. */
        snprintf(sql, len, "LOCK TABLE %s IN EXCLUSIVE MODE", t);
        PGresult *r = query(b, sql, 0, NULL, NULL, "lock a sink table", err);
        if (r) {
            PQclear(r);
            snprintf(sql, len, "DELETE FROM %s WHERE %s >= $1::date AND %s < $2::date", t, c, c);
            r = query(b, sql, 2, from, to, "delete the range's rows", err);
        }
        long long deleted = r ? affected(r) : 0;
        if (r) {
            PQclear(r);
            snprintf(sql, len,
                     "INSERT INTO %s (%s) SELECT %s FROM %s.%s WHERE %s >= $1::date AND %s < "
                     "$2::date",
                     t, cols, casts, sid, t, c, c);
            r = query(b, sql, 2, from, to, "insert the rebuilt rows", err);
        }
        free(sql);
        free(cols);
        free(casts);
        if (!r) {
            errbuf ctx;
            err_set(&ctx, "%s", err->msg);
            err_set(err, "%s: %s", t, ctx.msg);
            goto fail;
        }
        if (*n < cap)
            counts[(*n)++] = (pg_backfill_table_count){t, deleted, affected(r)};
        PQclear(r);
    }
    PQfreemem(sid);
    return exec(b, "COMMIT", "commit the swap", err);
fail:
    PQfreemem(sid);
    PGresult *r = PQexec(b->conn, "ROLLBACK");
    PQclear(r);
    return -1;
}
