/*
 * report.c — the queries behind `activity report` (see report.h).
 *
 * Each section reads one sink table or analytics view. Before a section's
 * query runs, the relations it needs are looked up with to_regclass: one
 * that does not exist gives the section a note rather than an error, because
 * the views come with newer schemas (`activity migrate` creates them) and a
 * report against an older database should still show what it can. Any other
 * failure of a query is an error with the section's name.
 *
 * Ties are broken by host in byte order (COLLATE "C"), so the rows a limit
 * keeps do not depend on the database's collation.
 */
#include "cmd/report.h"

#include <stdlib.h>
#include <string.h>

/* Rows of the month: $1 is its first day, $2 the limit. */
#define MONTH_END "($1::date + interval '1 month')::date"
#define BUSIEST_SQL                                                                                \
    "SELECT host, (SELECT sum(h) FROM unnest(hit_array) h)::bigint AS hits, "                      \
    "(SELECT max(u) FROM unnest(unique_visitors_array) u) AS peak_daily_uniques, "                 \
    "(SELECT count(*) FROM unnest(hit_array) h WHERE h > 0) AS active_days "                       \
    "FROM host_activity_reduced WHERE month_start = $1::date "                                     \
    "ORDER BY hits DESC, host COLLATE \"C\" LIMIT $2::int"

static const struct {
    const char *name, *title;
    bool in_text;
    const char *needs[2];
    const char *sql;
} sections[REPORT_NSECTIONS] = {
    [REPORT_BUSIEST_HOSTS] = {"busiest_hosts",
                              "Busiest hosts (hits in the month)",
                              true,
                              {"host_activity_reduced"},
                              BUSIEST_SQL},
    [REPORT_TOP_HOSTS_UNIQUES] =
        {"top_hosts_by_uniques",
         "Top hosts by monthly unique visitors",
         true,
         {"host_uniques_monthly"},
         "SELECT host, round(uniques::numeric)::bigint AS monthly_uniques "
         "FROM host_uniques_monthly WHERE month_start = $1::date AND uniques > 0 "
         "ORDER BY uniques DESC, host COLLATE \"C\" LIMIT $2::int"},
    [REPORT_DAILY_USERS] = {"daily_users",
                            "Active users per day (DAU, WAU, MAU, stickiness)",
                            true,
                            {"activity_daily_users"},
                            "SELECT day, dau, wau, mau, stickiness FROM activity_daily_users "
                            "WHERE day >= $1::date AND day < " MONTH_END " AND $2::int > 0 "
                            "ORDER BY day"},
    [REPORT_GROWTH] = {"growth_accounting",
                       "Growth accounting per day",
                       true,
                       {"growth_accounting_daily"},
                       "SELECT day, \"new\", retained, resurrected, churned, stale "
                       "FROM growth_accounting_daily "
                       "WHERE day >= $1::date AND day < " MONTH_END " AND $2::int > 0 "
                       "ORDER BY day"},
    [REPORT_BROWSERS] = {"browsers",
                         "Browsers with the most active users",
                         true,
                         {"user_devices_cumulated"},
                         "SELECT coalesce(browser_type, '(null)') AS browser_type, "
                         "count(DISTINCT user_id) AS users, "
                         "sum(cardinality(device_activity_datelist))::bigint AS user_days "
                         "FROM user_devices_cumulated WHERE month_start = $1::date "
                         "GROUP BY browser_type ORDER BY users DESC, coalesce(browser_type, "
                         "'(null)') COLLATE \"C\" "
                         "LIMIT $2::int"},
    [REPORT_HOST_DAILY_HITS] = {"busiest_hosts_daily_hits",
                                "Hits per day of the busiest hosts",
                                false,
                                {"host_activity_reduced"},
                                "WITH b AS (" BUSIEST_SQL ") "
                                "SELECT b.host, (r.month_start + d - 1)::date AS day, "
                                "r.hit_array[d] AS hits FROM b "
                                "JOIN host_activity_reduced r "
                                "ON r.host = b.host AND r.month_start = $1::date "
                                "CROSS JOIN generate_subscripts(r.hit_array, 1) d "
                                "ORDER BY b.hits DESC, b.host COLLATE \"C\", d"},
    [REPORT_ROW_COUNTS] = {"row_counts", "Rows per table (all months)", true, {NULL}, NULL},
};

/* Every table the row counts cover, sinks first. */
static const char *const counted[] = {
    "host_activity_reduced",
    "hosts_cumulated",
    "user_devices_cumulated",
    "users_cumulated",
    "host_daily_uniques",
    "dim_devices",
    "dim_users",
};

void report_init(report *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < REPORT_NSECTIONS; i++) {
        r->sec[i].name = sections[i].name;
        r->sec[i].title = sections[i].title;
        r->sec[i].in_text = sections[i].in_text;
    }
}

void report_free(report *r)
{
    for (int i = 0; i < REPORT_NSECTIONS; i++) {
        PQclear(r->sec[i].res);
        r->sec[i].res = NULL;
    }
}

/* 1 if the relation exists, 0 if not, -1 on error. */
static int relation_exists(PGconn *conn, const char *name, errbuf *err)
{
    const char *p[1] = {name};
    PGresult *res =
        PQexecParams(conn, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        err_set(err, "looking up %s: %s", name, PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    int yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return yes;
}

static PGresult *query(PGconn *conn, const char *what, const char *sql, int n,
                       const char *const *params, errbuf *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        err_set(err, "%s: %s", what, PQerrorMessage(conn));
        PQclear(res);
        return NULL;
    }
    return res;
}

/* The row counts: one UNION ALL over the tables that exist; a missing one
 * has a null count and is named in the note. */
static int collect_counts(PGconn *conn, report_section *s, errbuf *err)
{
    char sql[2048] = "";
    size_t len = 0;
    for (size_t i = 0; i < sizeof counted / sizeof *counted; i++) {
        int ex = relation_exists(conn, counted[i], err);
        if (ex < 0)
            return -1;
        const char *sep = i ? " UNION ALL " : "";
        if (ex)
            len += (size_t)snprintf(sql + len, sizeof sql - len,
                                    "%sSELECT %zu AS ord, '%s' AS table_name, "
                                    "(SELECT count(*) FROM %s) AS rows",
                                    sep, i, counted[i], counted[i]);
        else
            len += (size_t)snprintf(sql + len, sizeof sql - len,
                                    "%sSELECT %zu AS ord, '%s' AS table_name, "
                                    "NULL::bigint AS rows",
                                    sep, i, counted[i]);
        if (!ex) {
            size_t nl = strlen(s->note);
            snprintf(s->note + nl, sizeof s->note - nl, "%s%s",
                     nl ? ", " : "not in this database: ", counted[i]);
        }
    }
    char full[2200];
    snprintf(full, sizeof full, "SELECT table_name, rows FROM (%s) t ORDER BY ord", sql);
    s->res = query(conn, "row_counts", full, 0, NULL, err);
    return s->res ? 0 : -1;
}

int report_collect(PGconn *conn, const char *month_start, long limit, report *r, errbuf *err)
{
    report_init(r);
    r->limit = limit;
    int hosts = relation_exists(conn, "host_activity_reduced", err);
    if (hosts < 0)
        return -1;
    /* Without --month: the latest month in host_activity_reduced, which
     * every event reaches (anonymous ones too). A database never migrated
     * has no month; only the row counts say anything then. */
    PGresult *m = NULL;
    if (month_start) {
        const char *p1[1] = {month_start};
        m = query(conn, "month", "SELECT $1::date::text, extract(day FROM " MONTH_END " - 1)::int",
                  1, p1, err);
    } else if (hosts) {
        m = query(conn, "latest month",
                  "SELECT max(month_start)::text, extract(day FROM "
                  "(max(month_start) + interval '1 month')::date - 1)::int "
                  "FROM host_activity_reduced",
                  0, NULL, err);
    }
    if ((month_start || hosts) && !m)
        return -1;
    if (m && !PQgetisnull(m, 0, 0)) {
        snprintf(r->month_start, sizeof r->month_start, "%s", PQgetvalue(m, 0, 0));
        r->days = atoi(PQgetvalue(m, 0, 1));
    }
    PQclear(m);
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[2] = {r->month_start, lim};
    for (int i = 0; i < REPORT_NSECTIONS; i++) {
        report_section *s = &r->sec[i];
        if (i == REPORT_ROW_COUNTS) {
            if (collect_counts(conn, s, err))
                return -1;
            continue;
        }
        if (!r->month_start[0]) {
            snprintf(s->note, sizeof s->note, "no month holds data yet");
            continue;
        }
        int ex = relation_exists(conn, sections[i].needs[0], err);
        if (ex < 0)
            return -1;
        if (!ex) {
            snprintf(s->note, sizeof s->note,
                     "%s does not exist in this database; `activity migrate` of a version "
                     "that has it creates it",
                     sections[i].needs[0]);
            continue;
        }
        s->res = query(conn, s->name, sections[i].sql, 2, params, err);
        if (!s->res)
            return -1;
    }
    return 0;
}

enum report_kind report_column_kind(const PGresult *res, int col)
{
    switch (PQftype(res, col)) {
    case 20: /* int8 */
    case 21: /* int2 */
    case 23: /* int4 */
        return REPORT_INT;
    case 700:  /* float4 */
    case 701:  /* float8 */
    case 1700: /* numeric */
        return REPORT_NUM;
    default:
        return REPORT_TEXT;
    }
}

size_t report_visible(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[5] = "";
        if (*p == '\n')
            strcpy(esc, "\\n");
        else if (*p == '\t')
            strcpy(esc, "\\t");
        else if (*p == '\r')
            strcpy(esc, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", *p);
        if (esc[0]) {
            for (char *e = esc; *e; e++, n++)
                if (n + 1 < cap)
                    out[n] = *e;
        } else {
            if (n + 1 < cap)
                out[n] = (char)*p;
            n++;
        }
    }
    if (cap)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}
