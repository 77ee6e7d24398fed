/*
 * test_report.c — the report writers (cmd/report_write.c, cmd/report_html.c)
 * on results built in memory: CSV quoting read back by the project's own
 * RFC 4180 reader, text alignment by characters and the cut of long cells,
 * JSON types, and HTML escaping of host names that hold markup.
 */
#include "cmd/report.h"
#include "consumers/csv_reader.h"
#include "tests/unit/unit.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum { TEXT_OID = 25, INT8_OID = 20, NUMERIC_OID = 1700, DATE_OID = 1082 };

/* A result with the given columns (name, type) and rows (NULL cells are
 * SQL nulls). */
static PGresult *make(int ncols, const char *const *names, const unsigned *types, int nrows,
                      const char *const *cells)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[8];
    memset(att, 0, sizeof att);
    for (int c = 0; c < ncols; c++) {
        att[c].name = (char *)names[c];
        att[c].typid = types[c];
        att[c].typlen = -1;
        att[c].atttypmod = -1;
    }
    ck_assert(PQsetResultAttrs(res, ncols, att));
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            const char *v = cells[r * ncols + c];
            ck_assert(PQsetvalue(res, r, c, (char *)v, v ? (int)strlen(v) : -1));
        }
    return res;
}

static const char *const hosts[] = {
    "plain.example", "1200", "7", "3", "<script>alert(\"x&y\")</script> 'q' é✓", "5", NULL, "1",
    "a,\"b\"\nc",    "80",   "2", "1",
};
static const char *const host_cols[] = {"host", "hits", "peak_daily_uniques", "active_days"};
static const unsigned host_types[] = {TEXT_OID, INT8_OID, INT8_OID, INT8_OID};

static void fill(report *r)
{
    report_init(r);
    snprintf(r->month_start, sizeof r->month_start, "2024-02-01");
    r->days = 29;
    r->limit = 10;
    r->sec[REPORT_BUSIEST_HOSTS].res = make(4, host_cols, host_types, 3, hosts);
    static const char *const users[] = {"2024-02-01", "10", "20", "40", "0.2500",
                                        "2024-02-02", "12", "22", "41", "0.2927"};
    static const char *const ucols[] = {"day", "dau", "wau", "mau", "stickiness"};
    static const unsigned utypes[] = {DATE_OID, INT8_OID, INT8_OID, INT8_OID, NUMERIC_OID};
    r->sec[REPORT_DAILY_USERS].res = make(5, ucols, utypes, 2, users);
    static const char *const hits[] = {"<b>&amp;", "2024-02-01", "4",
                                       "<b>&amp;", "2024-02-02", "0"};
    static const char *const hcols[] = {"host", "day", "hits"};
    static const unsigned htypes[] = {TEXT_OID, DATE_OID, INT8_OID};
    r->sec[REPORT_HOST_DAILY_HITS].res = make(3, hcols, htypes, 2, hits);
    snprintf(r->sec[REPORT_GROWTH].note, sizeof r->sec[REPORT_GROWTH].note,
             "growth_accounting_daily does not exist, \"really\"");
}

static char *capture(int (*write)(FILE *, const report *), const report *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(write(f, r), 0);
    fclose(f);
    return buf;
}

START_TEST(csv_round_trip)
{
    report r;
    fill(&r);
    char *out = capture(report_write_csv, &r);
    ck_assert_ptr_nonnull(strstr(out, "\r\n\r\n"));
    ck_assert_ptr_nonnull(strstr(out, "\"a,\"\"b\"\"\nc\",80,2,1\r\n"));
    csv_reader *rd = csv_reader_from_buffer(out, strlen(out));
    ck_assert_ptr_nonnull(rd);
    csv_record rec;
    errbuf err = {{0}};
    /* busiest_hosts: name, header, three rows (a null as an empty field). */
    ck_assert_int_eq(csv_reader_next(rd, &rec, &err), CSV_OK);
    ck_assert_int_eq(rec.nfields, 1);
    ck_assert_str_eq(rec.fields[0].ptr, "busiest_hosts");
    ck_assert_int_eq(csv_reader_next(rd, &rec, &err), CSV_OK);
    ck_assert_int_eq(rec.nfields, 4);
    ck_assert_str_eq(rec.fields[2].ptr, "peak_daily_uniques");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(csv_reader_next(rd, &rec, &err), CSV_OK);
        ck_assert_int_eq(rec.nfields, 4);
        ck_assert_str_eq(rec.fields[0].ptr, hosts[i * 4]);
        ck_assert_str_eq(rec.fields[2].ptr, hosts[i * 4 + 2] ? hosts[i * 4 + 2] : "");
    }
    /* The growth section carries its note as the name record's second
     * field, and no header. */
    const char *g = strstr(out, "growth_accounting,");
    ck_assert_ptr_nonnull(g);
    ck_assert(strncmp(g,
                      "growth_accounting,\"growth_accounting_daily does not exist, "
                      "\"\"really\"\"\"\r\n\r\n",
                      strlen("growth_accounting,\"growth_accounting_daily does not exist, "
                             "\"\"really\"\"\"\r\n\r\n")) == 0);
    csv_reader_free(rd);
    free(out);
    report_free(&r);
}
END_TEST

START_TEST(text_aligned_by_characters)
{
    report r;
    fill(&r);
    char *out = capture(report_write_text, &r);
    ck_assert_ptr_nonnull(strstr(out, "activity report for 2024-02 (29 days)\n"));
    /* Each line of the hosts table is as wide in characters as its header;
     * the newline inside a host shows as \n, the null as blanks. */
    const char *head = strstr(out, "host ");
    ck_assert_ptr_nonnull(head);
    size_t width = 0;
    int lines = 0;
    for (const char *p = head; *p && lines < 5; p++) {
        size_t w = 0;
        for (; *p != '\n'; p++)
            if (((unsigned char)*p & 0xc0) != 0x80)
                w++;
        if (lines == 0)
            width = w;
        ck_assert_uint_eq(w, width);
        lines++;
    }
    ck_assert_ptr_nonnull(strstr(out, "a,\"b\"\\nc "));
    ck_assert_ptr_nonnull(strstr(out, "(3 rows)\n"));
    ck_assert_ptr_nonnull(strstr(out, "(growth_accounting_daily does not exist, \"really\")\n"));
    /* The per-day hits are not part of the text. */
    ck_assert_ptr_null(strstr(out, "<b>&amp;"));
    free(out);
    report_free(&r);
}
END_TEST

START_TEST(text_cuts_long_cells)
{
    report r;
    report_init(&r);
    snprintf(r.month_start, sizeof r.month_start, "2024-02-01");
    char longhost[200];
    memset(longhost, 'h', 100);
    strcpy(longhost + 100, ".example");
    const char *cells[] = {longhost, "1", "1", "1"};
    r.sec[REPORT_BUSIEST_HOSTS].res = make(4, host_cols, host_types, 1, cells);
    char *out = capture(report_write_text, &r);
    char want[80];
    memset(want, 'h', 59);
    strcpy(want + 59, "\xe2\x80\xa6  ");
    ck_assert_ptr_nonnull(strstr(out, want));
    want[59] = 'h';
    want[60] = '\0';
    ck_assert_ptr_null(strstr(out, want));
    free(out);
    report_free(&r);
}
END_TEST

START_TEST(json_types)
{
    report r;
    fill(&r);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    errbuf err = {{0}};
    ck_assert_int_eq(report_write_json(f, &r, &err), 0);
    fclose(f);
    json_error_t jerr;
    json_t *j = json_loads(buf, 0, &jerr);
    ck_assert_msg(j != NULL, "%s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(j, "month")), "2024-02");
    json_t *h = json_array_get(json_object_get(j, "busiest_hosts"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(h, "host")), hosts[4]);
    ck_assert(json_is_integer(json_object_get(h, "hits")));
    ck_assert_int_eq(json_integer_value(json_object_get(h, "hits")), 5);
    ck_assert(json_is_null(json_object_get(h, "peak_daily_uniques")));
    json_t *u = json_array_get(json_object_get(j, "daily_users"), 0);
    ck_assert(json_is_real(json_object_get(u, "stickiness")));
    ck_assert_str_eq(json_string_value(json_object_get(u, "day")), "2024-02-01");
    ck_assert_int_eq(json_array_size(json_object_get(j, "growth_accounting")), 0);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(j, "notes"), "growth_accounting"));
    json_decref(j);
    free(buf);
    report_free(&r);
}
END_TEST

START_TEST(html_escapes_user_text)
{
    report r;
    fill(&r);
    char *out = capture(report_write_html, &r);
    ck_assert_ptr_null(strstr(out, "<script"));
    ck_assert_ptr_null(strstr(out, "<b>"));
    ck_assert_ptr_nonnull(
        strstr(out, "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39; é✓"));
    ck_assert_ptr_nonnull(strstr(out, "data-host=\"&lt;b&gt;&amp;amp;\""));
    ck_assert_ptr_nonnull(strstr(out, "a,&quot;b&quot;\\nc"));
    /* Two heatmap cells, two points per series, the growth chart's note. */
    size_t cells = 0, points = 0;
    for (const char *p = out; (p = strstr(p, "class=\"cell\"")); p++)
        cells++;
    for (const char *p = out; (p = strstr(p, "class=\"point\"")); p++)
        points++;
    ck_assert_uint_eq(cells, 2);
    ck_assert_uint_eq(points, 6);
    ck_assert_ptr_nonnull(strstr(out, "<p class=\"note\">growth_accounting_daily does not exist"));
    ck_assert_ptr_nonnull(strstr(out, "default-src 'none'"));
    free(out);
    report_free(&r);
}
END_TEST

Suite *suite_report(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("writers");
    tcase_add_test(tc, csv_round_trip);
    tcase_add_test(tc, text_aligned_by_characters);
    tcase_add_test(tc, text_cuts_long_cells);
    tcase_add_test(tc, json_types);
    tcase_add_test(tc, html_escapes_user_text);
    suite_add_tcase(s, tc);
    return s;
}
