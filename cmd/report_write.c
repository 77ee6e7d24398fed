/*
 * report_write.c — `activity report` as text, CSV or JSON (see report.h).
 *
 * Text is for a terminal: each section is a heading and aligned columns,
 * numbers to the right. Widths count characters (UTF-8 code points), not
 * bytes, so non-ASCII host names stay aligned; a cell wider than
 * TEXT_MAX_CELL characters is cut there and ends with "…" (the README says
 * so; CSV and JSON carry every value whole).
 *
 * CSV follows RFC 4180 (CRLF line ends; a field holding a comma, a double
 * quote, CR or LF is quoted, its quotes doubled; null is an empty field).
 * Several tables share one stream: each section starts with a record of
 * its name (plus a second field with its note, when it has one), then its
 * header record and rows, and ends with an empty line. An empty line can
 * never be a record of a section (every header has at least two fields),
 * and a quoted field may hold blank lines, so readers must split on the
 * parsed records, not on the raw text.
 *
 * JSON is one object: the month, then one array of row objects per
 * section (integers and decimals as numbers, null as null), then "notes".
 */
#include "cmd/report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX_CELL 60

/* Characters (UTF-8 code points) in s. */
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/* The cell as a terminal shows it: visible control characters, at most
 * TEXT_MAX_CELL characters. Returned malloc'd; NULL if out of memory. */
static char *text_cell(const PGresult *res, int row, int col)
{
    const char *v = PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
    size_t need = report_visible(v, NULL, 0) + 1;
    char *out = malloc(need + 4);
    if (!out)
        return NULL;
    report_visible(v, out, need);
    if (text_width(out) > TEXT_MAX_CELL) {
        size_t chars = 0, i = 0;
        for (; out[i]; i++) {
            if (((unsigned char)out[i] & 0xc0) != 0x80 && ++chars == TEXT_MAX_CELL)
                break;
        }
        memcpy(out + i, "\xe2\x80\xa6", 4); /* … */
    }
    return out;
}

static void pad(FILE *f, size_t n)
{
    while (n--)
        fputc(' ', f);
}

static int text_table(FILE *f, const PGresult *res)
{
    int rows = PQntuples(res), cols = PQnfields(res);
    size_t *w = calloc((size_t)cols, sizeof *w);
    char **cells = calloc((size_t)rows * (size_t)cols + 1, sizeof *cells);
    int rc = -1;
    if (!w || !cells)
        goto out;
    for (int c = 0; c < cols; c++)
        w[c] = text_width(PQfname(res, c));
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            char *s = text_cell(res, r, c);
            if (!s)
                goto out;
            cells[r * cols + c] = s;
            size_t n = text_width(s);
            if (n > w[c])
                w[c] = n;
        }
    for (int c = 0; c < cols; c++) {
        const char *name = PQfname(res, c);
        bool right = report_column_kind(res, c) != REPORT_TEXT;
        if (right)
            pad(f, w[c] - text_width(name));
        fputs(name, f);
        if (c + 1 < cols)
            pad(f, (right ? 0 : w[c] - text_width(name)) + 2);
    }
    fputc('\n', f);
    for (int c = 0; c < cols; c++) {
        for (size_t i = 0; i < w[c]; i++)
            fputc('-', f);
        if (c + 1 < cols)
            pad(f, 2);
    }
    fputc('\n', f);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const char *s = cells[r * cols + c];
            size_t n = text_width(s);
            bool right = report_column_kind(res, c) != REPORT_TEXT;
            if (right)
                pad(f, w[c] - n);
            fputs(s, f);
            if (c + 1 < cols)
                pad(f, (right ? 0 : w[c] - n) + 2);
        }
        fputc('\n', f);
    }
    rc = 0;
out:
    if (cells)
        for (int i = 0; i < rows * cols; i++)
            free(cells[i]);
    free(cells);
    free(w);
    return rc;
}

int report_write_text(FILE *f, const report *r)
{
    if (r->month_start[0])
        fprintf(f, "activity report for %.7s (%d days)\n", r->month_start, r->days);
    else
        fprintf(f, "activity report: no month holds data yet\n");
    for (int i = 0; i < REPORT_NSECTIONS; i++) {
        const report_section *s = &r->sec[i];
        if (!s->in_text)
            continue;
        fprintf(f, "\n%s\n", s->title);
        if (s->note[0])
            fprintf(f, "(%s)\n", s->note);
        if (!s->res)
            continue;
        if (text_table(f, s->res))
            return -1;
        int n = PQntuples(s->res);
        fprintf(f, "(%d row%s)\n", n, n == 1 ? "" : "s");
    }
    return ferror(f) ? -1 : 0;
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int report_write_csv(FILE *f, const report *r)
{
    for (int i = 0; i < REPORT_NSECTIONS; i++) {
        const report_section *s = &r->sec[i];
        if (i)
            fputs("\r\n", f);
        csv_field(f, s->name);
        if (s->note[0]) {
            fputc(',', f);
            csv_field(f, s->note);
        }
        fputs("\r\n", f);
        if (!s->res)
            continue;
        int rows = PQntuples(s->res), cols = PQnfields(s->res);
        for (int c = 0; c < cols; c++) {
            if (c)
                fputc(',', f);
            csv_field(f, PQfname(s->res, c));
        }
        fputs("\r\n", f);
        for (int row = 0; row < rows; row++) {
            for (int c = 0; c < cols; c++) {
                if (c)
                    fputc(',', f);
                csv_field(f, PQgetisnull(s->res, row, c) ? "" : PQgetvalue(s->res, row, c));
            }
            fputs("\r\n", f);
        }
    }
    return ferror(f) ? -1 : 0;
}

/* A new reference to the cell as a JSON value; NULL if out of memory or
 * not UTF-8. */
static json_t *json_cell(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    const char *v = PQgetvalue(res, row, col);
    char *end;
    switch (report_column_kind(res, col)) {
    case REPORT_INT: {
        long long n = strtoll(v, &end, 10);
        if (!*end)
            return json_integer(n);
        break;
    }
    case REPORT_NUM: {
        double d = strtod(v, &end);
        if (!*end && strcmp(v, "NaN") != 0)
            return json_real(d);
        break;
    }
    case REPORT_TEXT:
        break;
    }
    return json_stringn(v, (size_t)PQgetlength(res, row, col));
}

static json_t *json_section(const PGresult *res, errbuf *err)
{
    json_t *rows = json_array();
    if (!rows)
        goto oom;
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(rows, o))
            goto oom;
        for (int c = 0; c < PQnfields(res); c++) {
            json_t *v = json_cell(res, r, c);
            if (!v) {
                err_set(err, "column %s, row %d: not UTF-8 text", PQfname(res, c), r + 1);
                json_decref(rows);
                return NULL;
            }
            if (json_object_set_new(o, PQfname(res, c), v))
                goto oom;
        }
    }
    return rows;
oom:
    json_decref(rows);
    err_set(err, "out of memory building the JSON report");
    return NULL;
}

int report_write_json(FILE *f, const report *r, errbuf *err)
{
    json_t *top = json_object(), *notes = json_object();
    int rc = -1;
    if (!top || !notes) {
        err_set(err, "out of memory building the JSON report");
        goto out;
    }
    char month[8];
    snprintf(month, sizeof month, "%.7s", r->month_start);
    json_object_set_new(top, "month", r->month_start[0] ? json_string(month) : json_null());
    json_object_set_new(top, "days_in_month", json_integer(r->days));
    json_object_set_new(top, "limit", json_integer(r->limit));
    for (int i = 0; i < REPORT_NSECTIONS; i++) {
        const report_section *s = &r->sec[i];
        json_t *rows = s->res ? json_section(s->res, err) : json_array();
        if (!rows) {
            if (!s->res)
                err_set(err, "out of memory building the JSON report");
            goto out;
        }
        json_object_set_new(top, s->name, rows);
        if (s->note[0])
            json_object_set_new(notes, s->name, json_string(s->note));
    }
    json_object_set_new(top, "notes", notes);
    notes = NULL;
    if (json_dumpf(top, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER) || fputc('\n', f) == EOF) {
        err_set(err, "writing the JSON report failed");
        goto out;
    }
    rc = 0;
out:
    json_decref(notes);
    json_decref(top);
    return rc;
}
