/*
 * report_html.c — `activity report` as one self-contained HTML page.
 *
 * The page carries everything it shows: inline SVG charts and a <style>
 * block, no script, no font, no image, nothing fetched. Its
 * Content-Security-Policy (default-src 'none') makes a browser refuse any
 * such load should one ever creep in, and report it as a console error,
 * which the integration test looks for.
 *
 * Four charts, each drawn from one section of the report:
 *   - DAU, WAU and MAU per day: a line and one point per day and series;
 *   - growth accounting per day: new, retained and resurrected stacked
 *     above the axis, churned below it (stale users, the inactive mass,
 *     would flatten the rest; they are in the table);
 *   - a day-by-host heatmap of hits for the busiest hosts: one cell per
 *     host and day of the month;
 *   - the top hosts by monthly unique visitors: one bar per host.
 * Every mark carries a class and data- attributes (series or state, day,
 * host, value), so a test can count and read them, and a <title> a reader
 * sees on hover. Then every section follows as a table.
 *
 * Host names and browser types are user data: every text goes through
 * html_text, which shows control characters as \n or \xHH (report_visible)
 * and escapes & < > " ' for both text and attribute positions.
 */
#include "cmd/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The plot area every chart shares; the heatmap adds a label column. */
enum { CHART_W = 960, PLOT_X = 64, PLOT_W = 860, PLOT_H = 240, LABEL_W = 240 };
#define LABEL_CHARS 32

static void html_text(FILE *f, const char *s)
{
    size_t need = report_visible(s, NULL, 0) + 1;
    char stack[256], *buf = need <= sizeof stack ? stack : malloc(need);
    if (!buf) {
        fputs("(out of memory)", f);
        return;
    }
    report_visible(s, buf, need);
    for (const char *p = buf; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*p, f);
        }
    }
    if (buf != stack)
        free(buf);
}

/* A label of at most LABEL_CHARS characters (the full text is in the
 * mark's <title>). */
static void html_label(FILE *f, const char *s)
{
    size_t chars = 0, i = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80 && ++chars == LABEL_CHARS)
            break;
    if (!s[i]) {
        html_text(f, s);
        return;
    }
    char *cut = strndup(s, i);
    if (!cut)
        return;
    html_text(f, cut);
    free(cut);
    fputs("\xe2\x80\xa6", f);
}

static const char *cell(const PGresult *res, int row, const char *col)
{
    int c = PQfnumber(res, col);
    if (c < 0 || PQgetisnull(res, row, c))
        return NULL;
    return PQgetvalue(res, row, c);
}

static double num(const PGresult *res, int row, const char *col)
{
    const char *v = cell(res, row, col);
    return v ? strtod(v, NULL) : 0;
}

/* Day of the month of a YYYY-MM-DD value. */
static int day_of(const char *v)
{
    return v && strlen(v) >= 10 ? atoi(v + 8) : 0;
}

/* A round axis maximum at or above max, and its tick step (5 ticks or so). */
static double nice_max(double max, double *step)
{
    if (max <= 0)
        max = 1;
    double raw = max / 5, mag = pow(10, floor(log10(raw))), s = mag;
    if (raw > 5 * mag)
        s = 10 * mag;
    else if (raw > 2 * mag)
        s = 5 * mag;
    else if (raw > mag)
        s = 2 * mag;
    *step = s;
    return ceil(max / s) * s;
}

static double day_x(const report *r, double day)
{
    return PLOT_X + (day - 0.5) * PLOT_W / r->days;
}

/* Horizontal grid lines and their values, from lo to hi, top at y0. */
static void y_axis(FILE *f, double lo, double hi, double step, double y0)
{
    for (double v = lo; v <= hi + step / 2; v += step) {
        double y = y0 + (hi - v) / (hi - lo) * PLOT_H;
        fprintf(f,
                "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n",
                PLOT_X, PLOT_X + PLOT_W, y, y, PLOT_X - 6, y + 4, v);
    }
}

/* Day numbers under the plot: every day when they fit, else every 5th. */
static void x_axis(FILE *f, const report *r, double y)
{
    for (int d = 1; d <= r->days; d++)
        if (r->days <= 16 || d == 1 || d % 5 == 0)
            fprintf(f,
                    "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>",
                    day_x(r, d), y + 16, d);
    fputc('\n', f);
}

static bool chart_unavailable(FILE *f, const report_section *s)
{
    if (s->res && PQntuples(s->res) > 0)
        return false;
    fputs("<p class=\"note\">", f);
    html_text(f, s->note[0] ? s->note : "no rows for this month");
    fputs("</p>\n", f);
    return true;
}

static void chart_daily_users(FILE *f, const report *r)
{
    static const struct {
        const char *col, *color;
    } series[] = {{"dau", "#1f77b4"}, {"wau", "#ff7f0e"}, {"mau", "#2ca02c"}};
    const report_section *s = &r->sec[REPORT_DAILY_USERS];
    fputs("<h2>Active users per day</h2>\n", f);
    if (chart_unavailable(f, s))
        return;
    const PGresult *res = s->res;
    int n = PQntuples(res);
    double max = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < 3; k++)
            if (num(res, i, series[k].col) > max)
                max = num(res, i, series[k].col);
    double step, top = nice_max(max, &step);
    fprintf(f,
            "<svg id=\"chart-daily-users\" class=\"chart\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"DAU, WAU and MAU per day\">\n",
            CHART_W, PLOT_H + 36, CHART_W, PLOT_H + 36);
    y_axis(f, 0, top, step, 10);
    x_axis(f, r, PLOT_H + 10);
    for (size_t k = 0; k < 3; k++) {
        fprintf(f, "<polyline class=\"line\" data-series=\"%s\" stroke=\"%s\" points=\"",
                series[k].col, series[k].color);
        for (int i = 0; i < n; i++)
            if (cell(res, i, series[k].col))
                fprintf(f, "%.1f,%.1f ", day_x(r, day_of(cell(res, i, "day"))),
                        10 + PLOT_H - num(res, i, series[k].col) / top * PLOT_H);
        fputs("\"/>\n", f);
        for (int i = 0; i < n; i++) {
            const char *day = cell(res, i, "day"), *v = cell(res, i, series[k].col);
            if (!v || !day)
                continue;
            fprintf(f,
                    "<circle class=\"point\" data-series=\"%s\" data-day=\"%s\" "
                    "data-value=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\">"
                    "<title>%s %s: %s</title></circle>\n",
                    series[k].col, day, v, day_x(r, day_of(day)),
                    10 + PLOT_H - num(res, i, series[k].col) / top * PLOT_H, series[k].color,
                    series[k].col, day, v);
        }
    }
    fputs("</svg>\n<p class=\"legend\">", f);
    for (size_t k = 0; k < 3; k++)
        fprintf(f, "<span style=\"color:%s\">&#9679; %s</span> ", series[k].color,
                k == 0   ? "DAU"
                : k == 1 ? "WAU"
                         : "MAU");
    fputs("(as the view activity_daily_users counts them)", f);
    fputs("</p>\n", f);
}

static void chart_growth(FILE *f, const report *r)
{
    static const struct {
        const char *col, *color;
        int sign;
    } states[] = {{"new", "#2ca02c", 1},
                  {"retained", "#1f77b4", 1},
                  {"resurrected", "#ff7f0e", 1},
                  {"churned", "#d62728", -1}};
    const report_section *s = &r->sec[REPORT_GROWTH];
    fputs("<h2>Growth accounting per day</h2>\n", f);
    if (chart_unavailable(f, s))
        return;
    const PGresult *res = s->res;
    int n = PQntuples(res);
    double up = 0, down = 0;
    for (int i = 0; i < n; i++) {
        double u = 0;
        for (size_t k = 0; k < 3; k++)
            u += num(res, i, states[k].col);
        if (u > up)
            up = u;
        if (fabs(num(res, i, "churned")) > down)
            down = fabs(num(res, i, "churned"));
    }
    /* One step for the whole range; each side rounded up to it, at least one
     * step above the axis. */
    double step;
    nice_max(up + down, &step);
    double top = up > 0 ? ceil(up / step) * step : step;
    double bottom = down > 0 ? ceil(down / step) * step : 0;
    double scale = PLOT_H / (top + bottom), zero = 10 + top * scale;
    fprintf(f,
            "<svg id=\"chart-growth\" class=\"chart\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"growth accounting per day\">\n",
            CHART_W, PLOT_H + 36, CHART_W, PLOT_H + 36);
    for (double v = -bottom; v <= top + step / 2; v += step) {
        double y = zero - v * scale;
        fprintf(f,
                "<line class=\"grid%s\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n",
                fabs(v) < step / 2 ? " zero" : "", PLOT_X, PLOT_X + PLOT_W, y, y, PLOT_X - 6, y + 4,
                v);
    }
    x_axis(f, r, PLOT_H + 10);
    double bw = PLOT_W / (double)r->days * 0.8;
    for (int i = 0; i < n; i++) {
        const char *day = cell(res, i, "day");
        if (!day)
            continue;
        double above = 0;
        for (size_t k = 0; k < 4; k++) {
            double v = fabs(num(res, i, states[k].col));
            if (v <= 0)
                continue;
            double y = states[k].sign > 0 ? zero - (above + v) * scale : zero;
            if (states[k].sign > 0)
                above += v;
            fprintf(f,
                    "<rect class=\"bar growth\" data-state=\"%s\" data-day=\"%s\" "
                    "data-value=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                    "fill=\"%s\"><title>%s %s: %s</title></rect>\n",
                    states[k].col, day, cell(res, i, states[k].col), day_x(r, day_of(day)) - bw / 2,
                    y, bw, v * scale, states[k].color, states[k].col, day,
                    cell(res, i, states[k].col));
        }
    }
    fputs("</svg>\n<p class=\"legend\">", f);
    for (size_t k = 0; k < 4; k++)
        fprintf(f, "<span style=\"color:%s\">&#9632; %s</span> ", states[k].color, states[k].col);
    fputs("(churned below the axis: active the day before, not that day; stale users are in "
          "the table)</p>\n",
          f);
}

/* A blue ramp: white-ish at 0, dark at the maximum, on a square-root scale
 * so that small hosts still show their pattern beside the largest one. */
static void heat_color(double frac, char out[8])
{
    static const int lo[3] = {0xf1, 0xf5, 0xfb}, hi[3] = {0x08, 0x30, 0x6b};
    double t = sqrt(frac < 0 ? 0 : frac > 1 ? 1 : frac);
    snprintf(out, 8, "#%02x%02x%02x", (int)(lo[0] + (hi[0] - lo[0]) * t),
             (int)(lo[1] + (hi[1] - lo[1]) * t), (int)(lo[2] + (hi[2] - lo[2]) * t));
}

static void chart_heatmap(FILE *f, const report *r)
{
    const report_section *s = &r->sec[REPORT_HOST_DAILY_HITS];
    fputs("<h2>Hits per day of the busiest hosts</h2>\n", f);
    if (chart_unavailable(f, s))
        return;
    const PGresult *res = s->res;
    int n = PQntuples(res), hosts = 0;
    double max = 0;
    for (int i = 0; i < n; i++) {
        if (num(res, i, "hits") > max)
            max = num(res, i, "hits");
        if (i == 0 || strcmp(cell(res, i, "host"), cell(res, i - 1, "host")) != 0)
            hosts++;
    }
    const int row_h = 18, x0 = LABEL_W, top = 24;
    double cw = (CHART_W - x0 - 10) / (double)r->days;
    fprintf(f,
            "<svg id=\"chart-heatmap\" class=\"chart\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"hits per host and day\">\n",
            CHART_W, top + hosts * row_h + 10, CHART_W, top + hosts * row_h + 10);
    for (int d = 1; d <= r->days; d++)
        if (r->days <= 16 || d == 1 || d % 5 == 0)
            fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>",
                    x0 + (d - 0.5) * cw, top - 8, d);
    fputc('\n', f);
    int row = -1;
    for (int i = 0; i < n; i++) {
        const char *host = cell(res, i, "host"), *day = cell(res, i, "day");
        const char *hits = cell(res, i, "hits");
        if (i == 0 || strcmp(host, cell(res, i - 1, "host")) != 0) {
            row++;
            fprintf(f, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"end\"><title>",
                    x0 - 8, top + row * row_h + 13);
            html_text(f, host);
            fputs("</title>", f);
            html_label(f, host);
            fputs("</text>\n", f);
        }
        char color[8];
        heat_color(max > 0 ? num(res, i, "hits") / max : 0, color);
        fprintf(f, "<rect class=\"cell\" data-host=\"");
        html_text(f, host);
        fprintf(f,
                "\" data-day=\"%s\" data-hits=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
                "height=\"%d\" fill=\"%s\"><title>",
                day ? day : "", hits ? hits : "0", x0 + (day_of(day) - 1) * cw, top + row * row_h,
                cw - 1, row_h - 2, color);
        html_text(f, host);
        fprintf(f, " %s: %s hits</title></rect>\n", day ? day : "", hits ? hits : "0");
    }
    fprintf(f,
            "</svg>\n<p class=\"legend\">darker is more hits (square-root scale; the darkest "
            "cell has %.0f)</p>\n",
            max);
}

static void chart_top_hosts(FILE *f, const report *r)
{
    const report_section *s = &r->sec[REPORT_TOP_HOSTS_UNIQUES];
    fputs("<h2>Top hosts by monthly unique visitors</h2>\n", f);
    if (chart_unavailable(f, s))
        return;
    const PGresult *res = s->res;
    int n = PQntuples(res);
    const int row_h = 22, x0 = LABEL_W, w = CHART_W - x0 - 90;
    double max = 0;
    for (int i = 0; i < n; i++)
        if (num(res, i, "monthly_uniques") > max)
            max = num(res, i, "monthly_uniques");
    fprintf(f,
            "<svg id=\"chart-top-hosts\" class=\"chart\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"top hosts by monthly uniques\">\n",
            CHART_W, n * row_h + 10, CHART_W, n * row_h + 10);
    for (int i = 0; i < n; i++) {
        const char *host = cell(res, i, "host"), *v = cell(res, i, "monthly_uniques");
        double val = num(res, i, "monthly_uniques"), bw = max > 0 ? val / max * w : 0;
        fprintf(f, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"end\"><title>", x0 - 8,
                5 + i * row_h + 14);
        html_text(f, host ? host : "");
        fputs("</title>", f);
        html_label(f, host ? host : "");
        fputs("</text><rect class=\"bar top-host\" data-host=\"", f);
        html_text(f, host ? host : "");
        fprintf(f,
                "\" data-value=\"%s\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                "fill=\"#1f77b4\"><title>",
                v ? v : "", x0, 5 + i * row_h, bw, row_h - 6);
        html_text(f, host ? host : "");
        fprintf(f,
                ": %.0f unique visitors</title></rect>"
                "<text class=\"value\" x=\"%.1f\" y=\"%d\">%.0f</text>\n",
                val, x0 + bw + 6, 5 + i * row_h + 14, val);
    }
    fputs("</svg>\n", f);
}

static void html_table(FILE *f, const report_section *s)
{
    fputs("<h2>", f);
    html_text(f, s->title);
    fputs("</h2>\n", f);
    if (s->note[0]) {
        fputs("<p class=\"note\">", f);
        html_text(f, s->note);
        fputs("</p>\n", f);
    }
    if (!s->res)
        return;
    fprintf(f, "<table data-section=\"%s\"><thead><tr>", s->name);
    for (int c = 0; c < PQnfields(s->res); c++) {
        fprintf(f, "<th%s>", report_column_kind(s->res, c) != REPORT_TEXT ? " class=\"n\"" : "");
        html_text(f, PQfname(s->res, c));
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int row = 0; row < PQntuples(s->res); row++) {
        fputs("<tr>", f);
        for (int c = 0; c < PQnfields(s->res); c++) {
            fprintf(f, "<td%s>",
                    report_column_kind(s->res, c) != REPORT_TEXT ? " class=\"n\"" : "");
            if (!PQgetisnull(s->res, row, c))
                html_text(f, PQgetvalue(s->res, row, c));
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

int report_write_html(FILE *f, const report *r)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" "
          "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n<title>",
          f);
    if (r->month_start[0])
        fprintf(f, "activity report %.7s", r->month_start);
    else
        fputs("activity report", f);
    fputs("</title>\n<style>\n"
          "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}\n"
          "h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
          ".chart text{font-size:11px;fill:#444}.chart .label{font-size:12px;fill:#222}\n"
          ".grid{stroke:#e3e3e3}.grid.zero{stroke:#888}\n"
          "polyline.line{fill:none;stroke-width:2}\n"
          ".legend{font-size:13px;color:#444}.note{color:#a33}\n"
          "table{border-collapse:collapse;font-size:13px;margin-bottom:8px}\n"
          "th,td{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}\n"
          "th.n,td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
          "</style></head>\n<body>\n",
          f);
    if (r->month_start[0])
        fprintf(f, "<h1>activity report for %.7s <small>(%d days)</small></h1>\n", r->month_start,
                r->days);
    else
        fputs("<h1>activity report</h1>\n<p class=\"note\">no month holds data yet</p>\n", f);
    if (r->month_start[0]) {
        chart_daily_users(f, r);
        chart_growth(f, r);
        chart_heatmap(f, r);
        chart_top_hosts(f, r);
    }
    for (int i = 0; i < REPORT_NSECTIONS; i++)
        if (r->sec[i].in_text)
            html_table(f, &r->sec[i]);
    fputs("</body></html>\n", f);
    return ferror(f) ? -1 : 0;
}
