/*
 * pg_sink.c — PostgreSQL writes of a flush (see pg_sink.h).
 *
 * user_devices_cumulated is replaced per (user, month): rows of a flushed
 * (user, month) that are no longer produced (a device's browser changed)
 * are deleted, the rest upserted, all in the flush's transaction.
 */
#include "sinks/pg_sink.h"

#include "sinks/scd2.h"
#include "lib/embedded.h"
#include "lib/failpoint.h"
#include "lib/grow.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_sink {
    PGconn *conn;
    char *dsn;
    bool transient;
    bool staged; /* temp tables exist on this connection */
    /* SCD2 merge SQL (sinks/scd2.h), built for the tracked attributes; a
     * dimension is merged when rows came, or once after its SQL was set
     * (which rebuilds it if the tracked attributes changed). */
    bool scd2_ready;
    strbuf scd2_stage;
    strbuf scd2_apply[DIM_COUNT];
    bool scd2_check[DIM_COUNT];
    /* Session lock_timeout / statement_timeout in ms (0: none), once set,
     * set again on every new connection. */
    bool timeouts_set;
    long lock_timeout_ms, statement_timeout_ms;
};

static const char *const stage_sql =
    "CREATE TEMP TABLE IF NOT EXISTS stage_hosts (host text, month_start date, "
    "hit_array bigint[], unique_visitors_array bigint[], datelist date[]) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS stage_user_keys (user_id bigint, month_start date, "
    "dates_active date[], datelist_int integer) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS stage_users (user_id bigint, browser_type text, "
    "month_start date, datelist date[], datelist_int integer) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS stage_user_masks (user_id bigint, month_start date, "
    "entry text, device_id bigint, datelist_int integer) ON COMMIT DELETE ROWS;";

static const char *const apply_sql =
    "INSERT INTO host_activity_reduced AS t (host, month_start, hit_array, "
    "unique_visitors_array, updated_at) "
    "SELECT host, month_start, hit_array, unique_visitors_array, now() FROM stage_hosts "
    "ON CONFLICT (host, month_start) DO UPDATE SET hit_array = EXCLUDED.hit_array, "
    "unique_visitors_array = EXCLUDED.unique_visitors_array, updated_at = now() "
    "WHERE (t.hit_array, t.unique_visitors_array) IS DISTINCT FROM "
    "(EXCLUDED.hit_array, EXCLUDED.unique_visitors_array);"
    "INSERT INTO hosts_cumulated AS t (host, month_start, host_activity_datelist, updated_at) "
    "SELECT host, month_start, datelist, now() FROM stage_hosts "
    "ON CONFLICT (host, month_start) DO UPDATE SET "
    "host_activity_datelist = EXCLUDED.host_activity_datelist, updated_at = now() "
    "WHERE t.host_activity_datelist IS DISTINCT FROM EXCLUDED.host_activity_datelist;"
    "DELETE FROM user_devices_cumulated u USING stage_user_keys k "
    "WHERE u.user_id = k.user_id AND u.month_start = k.month_start AND NOT EXISTS ("
    "SELECT 1 FROM stage_users s WHERE s.user_id = u.user_id AND s.month_start = u.month_start "
    "AND s.browser_type IS NOT DISTINCT FROM u.browser_type);"
    "INSERT INTO user_devices_cumulated AS t (user_id, browser_type, month_start, "
    "device_activity_datelist, datelist_int, updated_at) "
    "SELECT user_id, browser_type, month_start, datelist, datelist_int, now() FROM stage_users "
    "ON CONFLICT ON CONSTRAINT user_devices_cumulated_key DO UPDATE SET "
    "device_activity_datelist = EXCLUDED.device_activity_datelist, "
    "datelist_int = EXCLUDED.datelist_int, updated_at = now() "
    "WHERE t.datelist_int IS DISTINCT FROM EXCLUDED.datelist_int;"
    "DELETE FROM activity_user_masks u USING stage_user_keys k "
    "WHERE u.user_id = k.user_id AND u.month_start = k.month_start AND NOT EXISTS ("
    "SELECT 1 FROM stage_user_masks s WHERE s.user_id = u.user_id "
    "AND s.month_start = u.month_start AND s.entry = u.entry);"
    "INSERT INTO activity_user_masks AS t (user_id, month_start, entry, device_id, datelist_int) "
    "SELECT user_id, month_start, entry, device_id, datelist_int FROM stage_user_masks "
    "ON CONFLICT (user_id, month_start, entry) DO UPDATE SET "
    "datelist_int = EXCLUDED.datelist_int WHERE t.datelist_int IS DISTINCT FROM "
    "EXCLUDED.datelist_int;"
    "INSERT INTO users_cumulated AS t (user_id, month_start, dates_active, datelist_int, "
    "updated_at) "
    "SELECT user_id, month_start, dates_active, datelist_int, now() FROM stage_user_keys "
    "ON CONFLICT (user_id, month_start) DO UPDATE SET dates_active = EXCLUDED.dates_active, "
    "datelist_int = EXCLUDED.datelist_int, updated_at = now() "
    "WHERE t.datelist_int IS DISTINCT FROM EXCLUDED.datelist_int;";

/* host_daily_uniques' staging table takes the column's type as it is now
 * (hll, or bytea where the extension is missing; both read the same hex
 * input), so it is created per flush: a column cast to hll later (README
 * "Daily sketches") needs no restart. */
static const char *const stage_daily_sql =
    "CREATE TEMP TABLE stage_daily ON COMMIT DROP AS "
    "SELECT host, day, users FROM host_daily_uniques WITH NO DATA";
static const char *const apply_daily_sql =
    "INSERT INTO host_daily_uniques AS t (host, day, users, updated_at) "
    "SELECT host, day, users, now() FROM stage_daily "
    "ON CONFLICT (host, day) DO UPDATE SET users = EXCLUDED.users, updated_at = now() "
    "WHERE t.users IS DISTINCT FROM EXCLUDED.users";

static void note_error(pg_sink *pg, errbuf *err, const char *what, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* Class 08 is connection failure, 57P0x the server shutting down, 53
     * insufficient resources: all may pass. Anything else (syntax,
     * permission, constraint) will not fix itself. */
    pg->transient = PQstatus(pg->conn) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
                    strncmp(state, "57P0", 4) == 0 || strncmp(state, "53", 2) == 0 ||
                    strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                    /* lock_timeout (someone holds a lock on a sink table)
                     * and statement_timeout: retried with backoff. */
                    strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0;
    err_set(err, "postgres: %s: %s", what, PQerrorMessage(pg->conn));
    size_t n = strlen(err->msg);
    while (n && (err->msg[n - 1] == '\n' || err->msg[n - 1] == ' '))
        err->msg[--n] = '\0';
}

static int exec_ok(pg_sink *pg, const char *sql, const char *what, errbuf *err)
{
    PGresult *res = PQexec(pg->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        note_error(pg, err, what, res);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* A statement with text parameters: its result if it succeeded, else NULL
 * with err set (what names it). The caller clears the result. */
static PGresult *exec_params(pg_sink *pg, const char *sql, int n, const char *const *params,
                             const char *what, errbuf *err)
{
    PGresult *res = PQexecParams(pg->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        note_error(pg, err, what, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

static int apply_timeouts(pg_sink *pg, errbuf *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SET lock_timeout = %ld; SET statement_timeout = %ld",
             pg->lock_timeout_ms, pg->statement_timeout_ms);
    return exec_ok(pg, sql, "session timeouts", err);
}

static int open_conn(pg_sink *pg, errbuf *err)
{
    if (pg->conn)
        PQfinish(pg->conn);
    pg->staged = false;
    pg->conn = PQconnectdb(pg->dsn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(pg->conn);
        /* Authentication and missing databases will not fix themselves. */
        pg->transient = !strstr(msg, "authentication") && !strstr(msg, "does not exist") &&
                        !strstr(msg, "permission denied");
        err_set(err, "cannot connect to postgres: %s", msg);
        size_t n = strlen(err->msg);
        while (n && err->msg[n - 1] == '\n')
            err->msg[--n] = '\0';
        return -1;
    }
    if (exec_ok(pg, "SET client_min_messages = warning", "session setup", err))
        return -1;
    return pg->timeouts_set ? apply_timeouts(pg, err) : 0;
}

pg_sink *pg_sink_connect(const char *dsn, errbuf *err)
{
    pg_sink *pg = calloc(1, sizeof *pg);
    if (!pg || !(pg->dsn = strdup(dsn))) {
        free(pg);
        err_set(err, "out of memory");
        return NULL;
    }
    if (open_conn(pg, err)) {
        pg_sink_free(pg);
        return NULL;
    }
    return pg;
}

int pg_sink_set_timeouts(pg_sink *pg, long lock_timeout_ms, long statement_timeout_ms, errbuf *err)
{
    pg->timeouts_set = true;
    pg->lock_timeout_ms = lock_timeout_ms;
    pg->statement_timeout_ms = statement_timeout_ms;
    return apply_timeouts(pg, err);
}

int pg_sink_ping(pg_sink *pg, errbuf *err)
{
    if (PQstatus(pg->conn) != CONNECTION_OK && open_conn(pg, err))
        return -1;
    return exec_ok(pg, "SELECT 1", "ping", err);
}

const char *pg_sink_server_version(const pg_sink *pg)
{
    const char *v = PQparameterStatus(pg->conn, "server_version");
    return v ? v : "?";
}

void pg_sink_free(pg_sink *pg)
{
    if (!pg)
        return;
    if (pg->conn)
        PQfinish(pg->conn);
    strbuf_free(&pg->scd2_stage);
    for (int k = 0; k < DIM_COUNT; k++)
        strbuf_free(&pg->scd2_apply[k]);
    free(pg->dsn);
    free(pg);
}

int pg_sink_set_scd2(pg_sink *pg, const scd2_config *cfg, errbuf *err)
{
    strbuf_free(&pg->scd2_stage);
    pg->scd2_ready = false;
    if (scd2_stage_sql(&pg->scd2_stage, err))
        return -1;
    for (int k = 0; k < DIM_COUNT; k++) {
        strbuf_free(&pg->scd2_apply[k]);
        if (scd2_apply_sql(cfg, (enum dim_kind)k, &pg->scd2_apply[k], err))
            return -1;
        pg->scd2_check[k] = true;
    }
    pg->scd2_ready = true;
    pg->staged = false; /* the dimension staging tables too */
    return 0;
}

bool pg_sink_error_is_transient(const pg_sink *pg)
{
    return pg->transient;
}

/* schema.sql makes host_daily_uniques.users bytea where the postgresql-hll
 * extension is missing (or may not be created by this role): the bytes are
 * the same, but SQL cannot union them until the column is cast. Said at
 * every migrate, so that nobody runs on the fallback unaware. */
static int warn_sketch_fallback(pg_sink *pg, errbuf *err)
{
    PGresult *res = exec_params(pg,
                                "SELECT format_type(atttypid, NULL) FROM pg_attribute "
                                "WHERE attrelid = 'host_daily_uniques'::regclass "
                                "AND attname = 'users'",
                                0, NULL, "host_daily_uniques column type", err);
    if (!res)
        return -1;
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "bytea") == 0)
        log_warn("the postgresql-hll extension is not available in this database (not installed "
                 "on the server, or this role may not CREATE EXTENSION): host_daily_uniques.users "
                 "is bytea, holding the same bytes as the extension's hll. Install it (Debian: "
                 "postgresql-15-hll), CREATE EXTENSION hll, then ALTER TABLE host_daily_uniques "
                 "ALTER COLUMN users TYPE hll USING users::hll (README \"Daily sketches\")");
    PQclear(res);
    return 0;
}

/* Runs one of the embedded SQL files (sinks/sql/), inside the open
 * transaction. With once, a file is skipped when activity_sql_applied
 * holds the md5 of this very text and every view it creates exists (one
 * dropped by hand is made again); otherwise it runs and its md5 is
 * recorded. */
static int exec_embedded(pg_sink *pg, const char *path, bool once, errbuf *err)
{
    size_t len;
    const char *sql = embedded_file(path, &len);
    if (!sql) {
        err_set(err, "%s is not embedded in this build", path);
        return -1;
    }
    const char *params[2] = {path, sql};
    if (once) {
        PGresult *res = exec_params(
            pg,
            "SELECT EXISTS (SELECT 1 FROM activity_sql_applied WHERE file = $1 AND md5 = md5($2)) "
            "AND (SELECT bool_and(to_regclass(m[1]) IS NOT NULL) "
            "     FROM regexp_matches($2, 'CREATE OR REPLACE VIEW (\\w+)', 'g') AS m)",
            2, params, path, err);
        if (!res)
            return -1;
        bool unchanged = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (unchanged)
            return 0;
    }
    if (exec_ok(pg, sql, path, err))
        return -1;
    if (once) {
        PGresult *res = exec_params(pg,
                                    "INSERT INTO activity_sql_applied (file, md5) "
                                    "VALUES ($1, md5($2)) ON CONFLICT (file) DO UPDATE "
                                    "SET md5 = EXCLUDED.md5, updated_at = now()",
                                    2, params, path, err);
        if (!res)
            return -1;
        PQclear(res);
    }
    return 0;
}

/* Whether the sketch views can be built: the hll extension is installed
 * and host_daily_uniques.users is an hll (a bytea where the extension was
 * missing when the table was made). Sets *why when they cannot. */
static int sketches_usable(pg_sink *pg, bool *usable, const char **why, errbuf *err)
{
    PGresult *res =
        exec_params(pg,
                    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hll'), "
                    "to_regclass('host_daily_uniques') IS NOT NULL, "
                    "(SELECT format_type(atttypid, NULL) FROM pg_attribute "
                    "  WHERE attrelid = to_regclass('host_daily_uniques') AND attname = 'users' "
                    "    AND NOT attisdropped)",
                    0, NULL, "migrate: sketch table check", err);
    if (!res)
        return -1;
    bool ext = PQgetvalue(res, 0, 0)[0] == 't', table = PQgetvalue(res, 0, 1)[0] == 't';
    bool is_hll = strcmp(PQgetvalue(res, 0, 2), "hll") == 0;
    PQclear(res);
    *usable = ext && table && is_hll;
    *why = !ext      ? "the hll extension (postgresql-hll) is not installed in this database"
           : !table  ? "the table host_daily_uniques does not exist"
           : !is_hll ? "host_daily_uniques.users is not of type hll"
                     : NULL;
    return 0;
}

int pg_sink_migrate(pg_sink *pg, errbuf *err)
{
    /* The advisory lock serialises processes that start together; CREATE
     * TABLE IF NOT EXISTS alone can race on the catalog. The views go in
     * the same transaction: a migrate leaves all or nothing. */
    bool usable = false;
    const char *why = NULL;
    if (exec_ok(pg, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('activity.migrate'))", "migrate",
                err) ||
        exec_embedded(pg, "sinks/sql/schema.sql", false, err) ||
        exec_embedded(pg, "sinks/sql/views.sql", true, err) ||
        sketches_usable(pg, &usable, &why, err) ||
        (usable && exec_embedded(pg, "sinks/sql/views_hll.sql", true, err)) ||
        exec_ok(pg, "COMMIT", "migrate", err)) {
        exec_ok(pg, "ROLLBACK", "rollback", &(errbuf){{0}});
        return -1;
    }
    if (!usable)
        log_warn("the per-host uniques views (host_uniques_daily, _weekly, _monthly) "
                 "are not created: %s (README, \"Querying\")",
                 why);
    return warn_sketch_fallback(pg, err);
}

/* The other deployments (Redis prefixes) that have flushed into this
 * database, comma-separated into *names ("" if none). */
static int other_deployments(pg_sink *pg, const char *fence_name, char *names, size_t size,
                             errbuf *err)
{
    PGresult *res = exec_params(pg,
                                "SELECT coalesce(string_agg(quote_literal(name), ', ' ORDER BY "
                                "name), '') FROM activity_flush_fence WHERE name <> $1",
                                1, &fence_name, "deployments sharing the database", err);
    if (!res)
        return -1;
    snprintf(names, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static void refuse_shared(const char *fence_name, const char *others, errbuf *err)
{
    err_set(err,
            "refusing to reset: the sink tables also hold the rows of other deployments "
            "(--redis-prefix %s, in activity_flush_fence), and a reset would delete them. "
            "Give each deployment its own database; or, if those deployments are gone for "
            "good, delete their rows of activity_flush_fence and retry (this reset, of '%s', "
            "deletes every row of the sink tables)",
            others, fence_name);
}

int pg_sink_check_sole_owner(pg_sink *pg, const char *fence_name, errbuf *err)
{
    char others[768];
    if (other_deployments(pg, fence_name, others, sizeof others, err))
        return -1;
    if (others[0]) {
        refuse_shared(fence_name, others, err);
        return -1;
    }
    return 0;
}

int pg_sink_reset(pg_sink *pg, const char *fence_name, errbuf *err)
{
    const char *params[1] = {fence_name};
    /* The check and the TRUNCATE in one transaction, with the fence table
     * locked: no other deployment can make its first flush in between. */
    char others[768];
    if (exec_ok(pg, "BEGIN; LOCK TABLE activity_flush_fence IN EXCLUSIVE MODE", "reset", err))
        return -1;
    if (other_deployments(pg, fence_name, others, sizeof others, err) || others[0]) {
        if (others[0])
            refuse_shared(fence_name, others, err);
        exec_ok(pg, "ROLLBACK", "rollback", &(errbuf){{0}});
        return -1;
    }
    if (exec_ok(pg,
                "TRUNCATE host_activity_reduced, hosts_cumulated, user_devices_cumulated, "
                "users_cumulated, host_daily_uniques, activity_user_masks, "
                "dim_devices, dim_users, dim_devices_changes, dim_users_changes",
                "reset", err)) {
        exec_ok(pg, "ROLLBACK", "rollback", &(errbuf){{0}});
        return -1;
    }
    PGresult *res = exec_params(pg, "DELETE FROM activity_flush_fence WHERE name = $1", 1, params,
                                "reset", err);
    if (!res) {
        exec_ok(pg, "ROLLBACK", "rollback", &(errbuf){{0}});
        return -1;
    }
    PQclear(res);
    return exec_ok(pg, "COMMIT", "reset", err);
}

int pg_sink_prefix_groups(pg_sink *pg, const char *prefix, const char *group, char ***groups,
                          errbuf *err)
{
    const char *params[2] = {prefix, group};
    *groups = NULL;
    PGresult *res = exec_params(pg,
                                "SELECT group_id FROM activity_consumer_groups "
                                "WHERE prefix = $1 AND group_id <> $2 ORDER BY group_id",
                                2, params, "consumer groups of the prefix", err);
    if (!res)
        return -1;
    int n = PQntuples(res);
    char **out = calloc((size_t)n + 1, sizeof *out);
    for (int i = 0; out && i < n; i++)
        if (!(out[i] = strdup(PQgetvalue(res, i, 0)))) {
            strings_free(out);
            out = NULL;
        }
    PQclear(res);
    if (!out) {
        err_set(err, "out of memory");
        return -1;
    }
    *groups = out;
    return n;
}

int pg_sink_register_group(pg_sink *pg, const char *prefix, const char *group, bool add,
                           errbuf *err)
{
    const char *params[2] = {prefix, group};
    PGresult *res = exec_params(
        pg,
        add ? "INSERT INTO activity_consumer_groups (prefix, group_id) VALUES ($1, $2) "
              "ON CONFLICT (prefix, group_id) DO UPDATE SET updated_at = now()"
            : "DELETE FROM activity_consumer_groups WHERE prefix = $1 AND group_id = $2",
        2, params, "registering the consumer group", err);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

void flush_payload_free(flush_payload *p)
{
    strbuf_free(&p->hosts);
    strbuf_free(&p->user_keys);
    strbuf_free(&p->users);
    strbuf_free(&p->masks);
    strbuf_free(&p->daily);
    for (int k = 0; k < DIM_COUNT; k++)
        strbuf_free(&p->dims[k]);
}

int flush_payload_build(flush_payload *p, const flush_plan *plan)
{
    for (size_t i = 0; i < plan->n_hosts; i++) {
        const host_row *h = &plan->hosts[i];
        if (rows_encode_host(&p->hosts, h))
            return -1;
        /* host_daily_uniques: one sketch per day with hits, absolute bytes. */
        for (int d = 0; h->sketch && d < 31; d++) {
            if (!h->sketch[d])
                continue;
            if (rows_encode_daily(&p->daily, h->host, h->host_len, h->month, d + 1, h->sketch[d],
                                  h->sketch_len[d]))
                return -1;
            p->n_daily++;
        }
    }
    for (size_t i = 0; i < plan->n_user_keys; i++)
        if (rows_encode_user_key(&p->user_keys, plan->user_keys[i].user_id,
                                 plan->user_keys[i].month, plan->user_keys[i].mask))
            return -1;
    for (size_t i = 0; i < plan->n_users; i++)
        if (rows_encode_user(&p->users, &plan->users[i]))
            return -1;
    for (size_t i = 0; i < plan->n_masks; i++)
        if (rows_encode_user_mask(&p->masks, &plan->masks[i]))
            return -1;
    for (size_t i = 0; i < plan->n_dims; i++)
        if (scd2_encode_row(&p->dims[plan->dims[i].kind], &plan->dims[i]))
            return -1;
    p->n_hosts = plan->n_hosts;
    p->n_user_keys = plan->n_user_keys;
    p->n_users = plan->n_users;
    for (int k = 0; k < DIM_COUNT; k++)
        p->n_dims[k] = plan->n_dims_by_kind[k];
    return 0;
}

static int copy_in(pg_sink *pg, const char *table, const strbuf *data, errbuf *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN", table);
    PGresult *res = PQexec(pg->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        note_error(pg, err, "COPY", res);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    const size_t chunk = 1 << 20;
    for (size_t off = 0; off < data->len; off += chunk) {
        size_t n = data->len - off < chunk ? data->len - off : chunk;
        if (PQputCopyData(pg->conn, data->data + off, (int)n) != 1) {
            note_error(pg, err, "COPY data", NULL);
            return -1;
        }
    }
    if (PQputCopyEnd(pg->conn, NULL) != 1) {
        note_error(pg, err, "COPY end", NULL);
        return -1;
    }
    res = PQgetResult(pg->conn);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        note_error(pg, err, table, res);
        rc = -1;
    }
    PQclear(res);
    while ((res = PQgetResult(pg->conn)))
        PQclear(res);
    return rc;
}

bool pg_sink_dims_pending(const pg_sink *pg)
{
    for (int k = 0; k < DIM_COUNT; k++)
        if (pg->scd2_check[k])
            return true;
    return false;
}

/* Stages and merges the dimension changes, inside the open transaction. */
static int write_dims(pg_sink *pg, const flush_payload *p, errbuf *err)
{
    for (int k = 0; k < DIM_COUNT; k++) {
        if (!p->dims[k].len && !pg->scd2_check[k])
            continue;
        char stage[64];
        snprintf(stage, sizeof stage, "stage_%s", dim_tables[k].table);
        if ((p->dims[k].len && copy_in(pg, stage, &p->dims[k], err)) ||
            exec_ok(pg, pg->scd2_apply[k].data, dim_tables[k].table, err))
            return -1;
    }
    return 0;
}

/* The fence's token (0 when the row is missing); FOR UPDATE inside the
 * flush's transaction, so that nothing commits between the check and the
 * write. */
static int read_fence(pg_sink *pg, const char *name, bool for_update, int64_t *token, errbuf *err)
{
    const char *params[1] = {name};
    PGresult *res =
        PQexecParams(pg->conn,
                     for_update ? "SELECT token FROM activity_flush_fence WHERE name "
                                  "= $1 FOR UPDATE"
                                : "SELECT token FROM activity_flush_fence WHERE name = $1",
                     1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        note_error(pg, err, "flush fence", res);
        PQclear(res);
        return -1;
    }
    *token = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return 0;
}

/* Claims the fence for this flush's token inside the open transaction:
 * 1 if a flush with a newer token has committed already, PG_SINK_BEHIND
 * if the fence holds less than at_least (*held). */
static int claim_fence(pg_sink *pg, const char *name, int64_t token, int64_t at_least,
                       int64_t *held, errbuf *err)
{
    if (read_fence(pg, name, true, held, err))
        return -1;
    if (*held < at_least) {
        err_set(err,
                "activity_flush_fence holds token %lld for '%s', older than %lld, which "
                "committed before",
                (long long)*held, name, (long long)at_least);
        return PG_SINK_BEHIND;
    }
    char tok[32];
    snprintf(tok, sizeof tok, "%lld", (long long)token);
    const char *params[2] = {name, tok};
    PGresult *res =
        PQexecParams(pg->conn,
                     "INSERT INTO activity_flush_fence AS f (name, token) VALUES ($1, $2::bigint) "
                     "ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, updated_at = now() "
                     "WHERE f.token < EXCLUDED.token RETURNING token",
                     2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        note_error(pg, err, "flush fence", res);
        PQclear(res);
        return -1;
    }
    int stale = PQntuples(res) == 0;
    PQclear(res);
    if (stale)
        err_set(err, "flush token %lld is older than one already committed for '%s'",
                (long long)token, name);
    return stale;
}

/* A connection lost earlier is opened again before use. */
static int ensure_conn(pg_sink *pg, errbuf *err)
{
    return PQstatus(pg->conn) != CONNECTION_OK ? open_conn(pg, err) : 0;
}

int pg_sink_read_rows(pg_sink *pg, const char *sql, int n, const char *const *params,
                      const char *what, pg_row_fn fn, void *ctx, errbuf *err)
{
    if (ensure_conn(pg, err))
        return -1;
    PGresult *res = exec_params(pg, sql, n, params, what, err);
    if (!res)
        return -1;
    int ncols = PQnfields(res), rc = 0;
    const char *values[16];
    size_t lens[16];
    if (ncols > 16) {
        err_set(err, "postgres: %s: %d columns, at most 16 are read", what, ncols);
        rc = -1;
    }
    for (int row = 0; rc == 0 && row < PQntuples(res); row++) {
        for (int c = 0; c < ncols; c++) {
            values[c] = PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
            lens[c] = (size_t)PQgetlength(res, row, c);
        }
        rc = fn(ctx, values, lens, ncols, err);
    }
    PQclear(res);
    return rc;
}

int pg_sink_fence_token(pg_sink *pg, const char *name, int64_t *token, errbuf *err)
{
    if (ensure_conn(pg, err))
        return -1;
    return read_fence(pg, name, false, token, err);
}

int pg_sink_write(pg_sink *pg, const flush_payload *p, const char *fence_name, int64_t token,
                  int64_t at_least, int64_t *held, errbuf *err)
{
    if (ensure_conn(pg, err))
        return -1;
    if (!pg->scd2_ready) {
        scd2_config defaults;
        scd2_config_defaults(&defaults);
        if (pg_sink_set_scd2(pg, &defaults, err))
            return -1;
    }
    if (!pg->staged) {
        if (exec_ok(pg, stage_sql, "staging tables", err) ||
            exec_ok(pg, pg->scd2_stage.data, "dimension staging tables", err))
            return -1;
        pg->staged = true;
    }
    if (exec_ok(pg, "BEGIN", "begin", err))
        return -1;
    int claimed = claim_fence(pg, fence_name, token, at_least, held, err);
    if (claimed != 0) {
        if (PQstatus(pg->conn) == CONNECTION_OK)
            exec_ok(pg, "ROLLBACK", "rollback", &(errbuf){{0}});
        /* -1: note_error classified it (a lock timeout on the fence row, held
         * by another instance's flush, is worth retrying). */
        if (claimed > 0)
            pg->transient = true;
        return claimed > 0 ? claimed : -1;
    }
    if ((p->hosts.len && copy_in(pg, "stage_hosts", &p->hosts, err)) ||
        (p->user_keys.len && copy_in(pg, "stage_user_keys", &p->user_keys, err)) ||
        (p->users.len && copy_in(pg, "stage_users", &p->users, err)) ||
        (p->masks.len && copy_in(pg, "stage_user_masks", &p->masks, err)) ||
        (p->daily.len && (exec_ok(pg, stage_daily_sql, "daily sketches staging", err) ||
                          copy_in(pg, "stage_daily", &p->daily, err) ||
                          exec_ok(pg, apply_daily_sql, "daily sketches", err))) ||
        exec_ok(pg, apply_sql, "apply flush", err) || write_dims(pg, p, err) ||
        (failpoint("flush-before-commit"), exec_ok(pg, "COMMIT", "commit", err))) {
        if (PQstatus(pg->conn) == CONNECTION_OK)
            exec_ok(pg, "ROLLBACK", "rollback", &(errbuf){{0}});
        return -1;
    }
    for (int k = 0; k < DIM_COUNT; k++)
        pg->scd2_check[k] = false;
    return 0;
}
