/*
 * report.h — the content of `activity report` and the writers that print it.
 *
 * A report is one month's worth of fixed sections (busiest hosts, top hosts by
 * monthly uniques, DAU/WAU/MAU, growth accounting, browsers, the busiest
 * hosts' hits per day, rows per table). report_collect runs one query per
 * section and keeps its PGresult as the section's table, so every writer
 * reads the same rows, column names and column types (which decide
 * alignment in text and the JSON type of a value). A section whose view or
 * table does not exist in the database (an older schema, or a sink that has
 * not been migrated yet) has no rows and a note saying why; the report is
 * still printed and the command still succeeds.
 *
 * The writers (report_write.c: text, CSV, JSON; report_html.c: one HTML page
 * with inline SVG charts) only format: they take no connection and can be
 * tested on results built in memory.
 */
#ifndef ACTIVITY_REPORT_H
#define ACTIVITY_REPORT_H

#include "lib/log.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

enum report_section_id {
    REPORT_BUSIEST_HOSTS,
    REPORT_TOP_HOSTS_UNIQUES,
    REPORT_DAILY_USERS,
    REPORT_GROWTH,
    REPORT_BROWSERS,
    REPORT_HOST_DAILY_HITS,
    REPORT_ROW_COUNTS,
    REPORT_NSECTIONS
};

typedef struct {
    const char *name;  /* key in CSV and JSON, e.g. "busiest_hosts" */
    const char *title; /* heading in text and HTML */
    bool in_text;      /* the text output prints it (not the per-day hits) */
    PGresult *res;     /* NULL when note says why there are no rows */
    char note[256];    /* empty, or why the section is empty or partial */
} report_section;

typedef struct {
    char month_start[11]; /* YYYY-MM-01; empty when no month holds data */
    int days;             /* days in that month */
    long limit;           /* rows of the host and browser sections */
    report_section sec[REPORT_NSECTIONS];
} report;

/* Fills r for month_start ("YYYY-MM-01", or NULL for the latest month that
 * holds data). 0 on success (sections may carry notes); -1 with err set on
 * a query that failed for another reason than a missing relation. */
int report_collect(PGconn *conn, const char *month_start, long limit, report *r, errbuf *err);
void report_free(report *r);
/* A section with the given names and no rows yet (for writers' tests). */
void report_init(report *r);

/* How a column is written: right-aligned and unquoted in JSON (integers and
 * decimals), or text. */
enum report_kind { REPORT_TEXT, REPORT_INT, REPORT_NUM };
enum report_kind report_column_kind(const PGresult *res, int col);

/* Text for people: each cell's control characters shown as \n, \t or \xHH so
 * that one cell stays on one line (also used for names in HTML). Writes at
 * most cap-1 bytes and NUL-terminates; returns the length it would need. */
size_t report_visible(const char *s, char *out, size_t cap);

int report_write_text(FILE *f, const report *r);
int report_write_csv(FILE *f, const report *r);
int report_write_json(FILE *f, const report *r, errbuf *err);
int report_write_html(FILE *f, const report *r);

#endif
