/*
 * cmd_report.c — `activity report`: what the sink tables and analytics views
 * say about one month, for people who want an answer without writing SQL.
 *
 * Parses the options, connects, and hands the month to report_collect
 * (cmd/report.c, the queries) and to one writer (cmd/report_write.c for text,
 * CSV and JSON; cmd/report_html.c for the HTML page).
 */
#include "cmd/commands.h"
#include "cmd/report.h"
#include "lib/config.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: activity report [--month YYYY-MM] [--format text|csv|json|html] [--html FILE]\n"
    "                       [--limit N] [--pg-dsn DSN]\n"
    "\n"
    "What the sink tables and analytics views hold for one month (default: the latest\n"
    "month that holds data): the busiest hosts (hits, peak daily uniques, active days),\n"
    "the top hosts by monthly unique visitors, DAU/WAU/MAU and stickiness per day,\n"
    "growth accounting per day, the browsers with the most active users, the busiest\n"
    "hosts' hits per day (csv, json and html only) and the rows of every table.\n"
    "A view or table the database does not have yet leaves its section empty, with a\n"
    "note saying so.\n"
    "\n"
    "  --month YYYY-MM    the month to report (default: the latest one)\n"
    "  --format F         text (default): aligned columns, cells cut at 60 characters\n"
    "                     with a trailing ...;\n"
    "                     csv: RFC 4180 (CRLF), one section after another: a record with\n"
    "                     the section's name (and a second field with its note, if any),\n"
    "                     the header record, the rows, then an empty line between\n"
    "                     sections;\n"
    "                     json: one object, \"month\", one array of row objects per\n"
    "                     section, and \"notes\" (section -> note);\n"
    "                     html: one self-contained page (inline SVG charts, no script)\n"
    "  --html FILE        write the HTML page to FILE (written whole or not at all);\n"
    "                     stdout then gets the --format output only if --format is\n"
    "                     given; --html - is --format html\n"
    "  --limit N          hosts and browsers per section (default: 10; 1..10000)\n"
    "\n" COMMON_OPTIONS_HELP;

enum { OPT_MONTH = OPT_COMMON_LAST, OPT_LIMIT, OPT_FORMAT, OPT_HTML };
enum format { FMT_TEXT, FMT_CSV, FMT_JSON, FMT_HTML };

static int write_format(FILE *f, enum format fmt, const report *r, errbuf *err)
{
    int rc;
    switch (fmt) {
    case FMT_CSV:
        rc = report_write_csv(f, r);
        break;
    case FMT_JSON:
        return report_write_json(f, r, err);
    case FMT_HTML:
        rc = report_write_html(f, r);
        break;
    default:
        rc = report_write_text(f, r);
    }
    if (rc)
        err_set(err, "writing the report failed: %s", strerror(errno));
    return rc;
}

/* Writes the HTML page to a temporary file beside path, then renames it, so
 * that a reader never sees half a page. */
static int write_html_file(const char *path, const report *r, errbuf *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        err_set(err, "--html %s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        err_set(err, "--html %s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = report_write_html(f, r);
    if (fclose(f) || bad) {
        err_set(err, "--html: writing %s failed: %s", tmp, strerror(errno));
        remove(tmp);
        return -1;
    }
    if (rename(tmp, path)) {
        err_set(err, "--html: renaming %s to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

typedef struct {
    char month_start[16]; /* YYYY-MM-01, or empty for the latest month */
    long limit;
    enum format fmt;
    bool fmt_given;
    const char *html;
} report_options;

/* The report's own options, for config_parse: 1 taken, 0 not ours, -1 bad. */
static int report_option(void *ctx, int opt, const char *arg)
{
    report_options *o = ctx;
    const char *bad = NULL;
    if (opt == OPT_MONTH) {
        int y, m;
        if (strlen(arg) != 7 || sscanf(arg, "%4d-%2d", &y, &m) != 2 || m < 1 || m > 12 ||
            arg[4] != '-')
            bad = "--month takes YYYY-MM";
        else
            snprintf(o->month_start, sizeof o->month_start, "%s-01", arg);
    } else if (opt == OPT_LIMIT) {
        long long n;
        if (!option_long(arg, 1, 10000, &n))
            bad = "--limit takes 1..10000";
        else
            o->limit = (long)n;
    } else if (opt == OPT_FORMAT) {
        static const char *const names[] = {"text", "csv", "json", "html"};
        bad = "--format takes text, csv, json or html";
        for (int i = 0; i < 4; i++)
            if (strcmp(arg, names[i]) == 0) {
                o->fmt = (enum format)i;
                o->fmt_given = true;
                bad = NULL;
            }
    } else if (opt == OPT_HTML) {
        if (!arg[0])
            bad = "--html takes a file name (or - for stdout)";
        o->html = arg;
    } else {
        return 0;
    }
    if (bad) {
        log_error("%s", bad);
        return -1;
    }
    return 1;
}

int cmd_report(int argc, char **argv)
{
    common_config cfg;
    config_defaults(&cfg);
    static const struct option opts[] = {COMMON_LONG_OPTIONS,
                                         {"month", required_argument, 0, OPT_MONTH},
                                         {"limit", required_argument, 0, OPT_LIMIT},
                                         {"format", required_argument, 0, OPT_FORMAT},
                                         {"html", required_argument, 0, OPT_HTML},
                                         {0, 0, 0, 0}};
    report_options o = {.limit = 10, .fmt = FMT_TEXT};
    int parsed = config_parse(&cfg, "report", opts, &argc, &argv, help, report_option, &o);
    if (parsed) {
        config_free(&cfg);
        return parsed > 0 ? 0 : 2;
    }
    if (optind < argc) {
        log_error("unexpected argument '%s' (see activity report --help)", argv[optind]);
        config_free(&cfg);
        return 2;
    }
    errbuf err = {{0}};
    const char *html = o.html;
    enum format fmt = o.fmt;
    bool html_stdout = html && strcmp(html, "-") == 0;
    if (html_stdout)
        fmt = FMT_HTML;
    PGconn *conn = PQconnectdb(cfg.pg_dsn);
    report r;
    report_init(&r);
    int rc = 0;
    if (PQstatus(conn) != CONNECTION_OK) {
        log_error("cannot connect to postgres: %s", PQerrorMessage(conn));
        rc = 1;
        goto out;
    }
    if (report_collect(conn, o.month_start[0] ? o.month_start : NULL, o.limit, &r, &err) ||
        (html && !html_stdout && write_html_file(html, &r, &err)) ||
        ((!html || html_stdout || o.fmt_given) && write_format(stdout, fmt, &r, &err)) ||
        fflush(stdout)) {
        log_error("%s", err.msg[0] ? err.msg : "writing the report failed");
        rc = 1;
    }
    if (!rc && html && !html_stdout)
        log_info("wrote the HTML report of %.7s to %s", r.month_start[0] ? r.month_start : "-",
                 html);
out:
    report_free(&r);
    PQfinish(conn);
    config_free(&cfg);
    return rc;
}
