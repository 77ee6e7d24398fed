/*
 * cmd_report.c — `activity report`: a quick look at what the sink tables
 * hold, for operators who want an answer without writing SQL.
 *
 * Three short sections for one month: the busiest hosts with their monthly
 * hits and peak daily unique visitors, the browsers with the most active
 * users, and row counts of every table.
 */
#include "cmd/commands.h"
#include "lib/config.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] = "usage: activity report [--month YYYY-MM] [--limit N] [--pg-dsn DSN]\n"
                           "\n"
                           "Prints the busiest hosts of a month (default: the month with the most\n"
                           "hosts), the browsers with the most active users,\n"
                           "and the row count of each sink table.\n"
                           "\n" COMMON_OPTIONS_HELP;

enum { OPT_MONTH = OPT_COMMON_LAST, OPT_LIMIT };

static int print_query(PGconn *conn, const char *title, const char *sql, int nparams,
                       const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("%s: %s", title, PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    printf("%s\n", title);
    PQprintOpt opt = {0};
    opt.header = 1;
    opt.align = 1;
    opt.fieldSep = "|";
    PQprint(stdout, res, &opt);
    PQclear(res);
    return 0;
}

typedef struct {
    const char *month;
    char limit[16];
} report_options;

static int report_option(void *ctx, int opt, const char *arg)
{
    report_options *o = ctx;
    if (opt == OPT_MONTH) {
        int y, m;
        if (sscanf(arg, "%4d-%2d", &y, &m) != 2 || m < 1 || m > 12 || strlen(arg) != 7) {
            log_error("--month takes YYYY-MM");
            return -1;
        }
        o->month = arg;
        return 1;
    }
    if (opt == OPT_LIMIT) {
        long long n;
        if (!option_long(arg, 1, 10000, &n)) {
            log_error("--limit takes 1..10000");
            return -1;
        }
        snprintf(o->limit, sizeof o->limit, "%lld", n);
        return 1;
    }
    return 0;
}

int cmd_report(int argc, char **argv)
{
    common_config cfg;
    config_defaults(&cfg);
    static const struct option opts[] = {COMMON_LONG_OPTIONS,
                                         {"month", required_argument, 0, OPT_MONTH},
                                         {"limit", required_argument, 0, OPT_LIMIT},
                                         {0, 0, 0, 0}};
    report_options o = {NULL, "10"};
    int parsed = config_parse(&cfg, "report", opts, &argc, &argv, help, report_option, &o);
    if (parsed) {
        config_free(&cfg);
        return parsed > 0 ? 0 : 2;
    }
    const char *month = o.month;
    const char *limit = o.limit;
    PGconn *conn = PQconnectdb(cfg.pg_dsn);
    int rc = 0;
    if (PQstatus(conn) != CONNECTION_OK) {
        log_error("cannot connect to postgres: %s", PQerrorMessage(conn));
        rc = 1;
        goto out;
    }
    char month_start[16] = "";
    if (month)
        snprintf(month_start, sizeof month_start, "%s-01", month);
    /* Without --month: the month with the most hosts, the latest on a tie. */
    const char *latest = "SELECT month_start::text FROM host_activity_reduced GROUP BY 1 "
                         "ORDER BY count(*) DESC, 1 DESC LIMIT 1";
    PGresult *res = month ? NULL : PQexec(conn, latest);
    if (res) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res))
            snprintf(month_start, sizeof month_start, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (!month_start[0]) {
        printf("no rows yet in host_activity_reduced\n");
        goto counts;
    }
    const char *p2[2] = {month_start, limit};
    char title[128];
    snprintf(title, sizeof title, "busiest hosts of the month starting %s", month_start);
    if (print_query(conn, title,
                    "SELECT host, (SELECT sum(h) FROM unnest(hit_array) h) AS hits, "
                    "(SELECT max(u) FROM unnest(unique_visitors_array) u) AS peak_daily_uniques, "
                    "(SELECT count(*) FROM unnest(hit_array) h WHERE h > 0) AS active_days "
                    "FROM host_activity_reduced WHERE month_start = $1::date "
                    "ORDER BY hits DESC, host LIMIT $2::int",
                    2, p2) ||
        print_query(conn, "browsers with the most active users that month",
                    "SELECT coalesce(browser_type, '(null)') AS browser_type, "
                    "count(DISTINCT user_id) AS users, "
                    "sum(cardinality(device_activity_datelist)) AS user_days "
                    "FROM user_devices_cumulated WHERE month_start = $1::date "
                    "GROUP BY browser_type ORDER BY users DESC, 1 LIMIT $2::int",
                    2, p2)) {
        rc = 1;
        goto out;
    }
counts:
    if (print_query(conn, "rows per table",
                    "SELECT 'host_activity_reduced' AS table_name, count(*) AS rows "
                    "FROM host_activity_reduced UNION ALL "
                    "SELECT 'hosts_cumulated', count(*) FROM hosts_cumulated UNION ALL "
                    "SELECT 'user_devices_cumulated', count(*) FROM user_devices_cumulated "
                    "UNION ALL SELECT 'dim_devices', count(*) FROM dim_devices UNION ALL "
                    "SELECT 'dim_users', count(*) FROM dim_users",
                    0, NULL))
        rc = 1;
out:
    PQfinish(conn);
    config_free(&cfg);
    return rc;
}
