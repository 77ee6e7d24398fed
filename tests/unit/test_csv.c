/*
 * test_csv.c — the CSV reader: RFC 4180 quoting, line endings, the line
 * numbers records are reported at, and recovery after malformed records.
 *
 * Most cases read from a buffer; the refill path (records split across
 * input chunks, the raw-record buffer kept for recovery) is exercised by
 * reading a large generated input through a FILE * and comparing it with
 * the buffer reading of the same bytes.
 */
#include "consumers/csv_reader.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One record as the tests compare it: fields joined with '|', and flags. */
typedef struct {
    enum csv_status status;
    long line;
    size_t nfields;
    char text[512];
    char quoted[32]; /* 'q' or '-' per field */
    char err[512];
} got;

static got next(csv_reader *r)
{
    got g;
    memset(&g, 0, sizeof g);
    csv_record rec;
    errbuf err = {{0}};
    g.status = csv_reader_next(r, &rec, &err);
    g.line = rec.line;
    g.nfields = rec.nfields;
    snprintf(g.err, sizeof g.err, "%s", err.msg);
    size_t used = 0;
    for (size_t i = 0; i < rec.nfields && i < sizeof g.quoted - 1; i++) {
        /* Every field is NUL-terminated right after its bytes. */
        ck_assert_int_eq(rec.fields[i].ptr[rec.fields[i].len], '\0');
        used += (size_t)snprintf(g.text + used, sizeof g.text - used, "%s%.*s", i ? "|" : "",
                                 (int)rec.fields[i].len, rec.fields[i].ptr);
        g.quoted[i] = rec.fields[i].quoted ? 'q' : '-';
    }
    return g;
}

static csv_reader *from(const char *s)
{
    csv_reader *r = csv_reader_from_buffer(s, strlen(s));
    ck_assert_ptr_nonnull(r);
    return r;
}

#define EXPECT(r, ln, txt, flags)                                                                  \
    do {                                                                                           \
        got g_ = next(r);                                                                          \
        ck_assert_msg(g_.status == CSV_OK, "status %d (%s)", g_.status, g_.err);                   \
        ck_assert_int_eq(g_.line, ln);                                                             \
        ck_assert_str_eq(g_.text, txt);                                                            \
        ck_assert_str_eq(g_.quoted, flags);                                                        \
    } while (0)

#define EXPECT_EOF(r) ck_assert_int_eq(next(r).status, CSV_EOF)

START_TEST(test_plain_records)
{
    csv_reader *r = from("url,host\n/a,x.com\n/b,y.com\n");
    EXPECT(r, 1, "url|host", "--");
    EXPECT(r, 2, "/a|x.com", "--");
    EXPECT(r, 3, "/b|y.com", "--");
    EXPECT_EOF(r);
    EXPECT_EOF(r); /* stays at EOF */
    csv_reader_free(r);
}
END_TEST

START_TEST(test_quoted_fields_and_escaped_quotes)
{
    csv_reader *r = from("\"a,b\",\"say \"\"hi\"\"\",c\n\"\"\"\",\"x\"\"\"\n");
    EXPECT(r, 1, "a,b|say \"hi\"|c", "qq-");
    EXPECT(r, 2, "\"|x\"", "qq");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_quote_inside_unquoted_field_is_data)
{
    csv_reader *r = from("ab\"c,d\"\n");
    EXPECT(r, 1, "ab\"c|d\"", "--");
    csv_reader_free(r);
}
END_TEST

START_TEST(test_embedded_newline_spans_lines)
{
    csv_reader *r = from("h1,h2\n\"line1\nline2\nline3\",x\nnext,\"a\r\nb\"\nlast,z\n");
    EXPECT(r, 1, "h1|h2", "--");
    EXPECT(r, 2, "line1\nline2\nline3|x", "q-");
    EXPECT(r, 5, "next|a\r\nb", "-q"); /* CR and LF inside quotes are data */
    EXPECT(r, 7, "last|z", "--");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_crlf_line_endings)
{
    csv_reader *r = from("a,b\r\n1,\"2\"\r\n,\r\n");
    EXPECT(r, 1, "a|b", "--");
    EXPECT(r, 2, "1|2", "-q");
    EXPECT(r, 3, "|", "--");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_lone_cr_ends_a_record)
{
    csv_reader *r = from("a\rb,c\r\rd\n");
    EXPECT(r, 1, "a", "-");
    EXPECT(r, 2, "b|c", "--");
    EXPECT(r, 4, "d", "-"); /* the second CR is a blank line */
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_missing_final_newline)
{
    csv_reader *r = from("a,b\n1,2");
    EXPECT(r, 1, "a|b", "--");
    EXPECT(r, 2, "1|2", "--");
    EXPECT_EOF(r);
    csv_reader_free(r);

    r = from("x,\"quoted at end\"");
    EXPECT(r, 1, "x|quoted at end", "-q");
    EXPECT_EOF(r);
    csv_reader_free(r);

    /* A trailing comma at the very end still yields the empty last field. */
    r = from("x,");
    got g = next(r);
    ck_assert_int_eq(g.status, CSV_OK);
    ck_assert_int_eq(g.nfields, 2);
    ck_assert_str_eq(g.text, "x|");
    csv_reader_free(r);
}
END_TEST

START_TEST(test_empty_fields_quoted_vs_unquoted)
{
    csv_reader *r = from(",\"\",x,\n\"\"\n");
    got g = next(r);
    ck_assert_int_eq(g.status, CSV_OK);
    ck_assert_int_eq(g.nfields, 4);
    ck_assert_str_eq(g.text, "||x|");
    ck_assert_str_eq(g.quoted, "-q--");
    /* A line holding only "" is one empty quoted field, not a blank line. */
    g = next(r);
    ck_assert_int_eq(g.status, CSV_OK);
    ck_assert_int_eq(g.line, 2);
    ck_assert_int_eq(g.nfields, 1);
    ck_assert_str_eq(g.quoted, "q");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_blank_lines_skipped_but_counted)
{
    csv_reader *r = from("\n\na\n\r\n\nb\n\n");
    EXPECT(r, 3, "a", "-");
    EXPECT(r, 6, "b", "-");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_unterminated_quote_then_recovery)
{
    /* The quote opened on line 3 never closes; reading resumes on line 4. */
    csv_reader *r = from("a,b\n1,ok\n2,\"oops\n3,fine\n4,also fine\n");
    EXPECT(r, 1, "a|b", "--");
    EXPECT(r, 2, "1|ok", "--");
    got g = next(r);
    ck_assert_int_eq(g.status, CSV_BAD_RECORD);
    ck_assert_int_eq(g.line, 3);
    ck_assert_int_eq(g.nfields, 0);
    ck_assert_msg(strstr(g.err, "unterminated quoted field") != NULL, "err: %s", g.err);
    EXPECT(r, 4, "3|fine", "--");
    EXPECT(r, 5, "4|also fine", "--");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_unterminated_quote_after_multiline_field)
{
    /* The record starts on line 1 with a valid two-line field; the stray
     * quote opens on line 2, so recovery starts on line 3 (not inside the
     * valid field), and the message names the quote's line. */
    csv_reader *r = from("\"one\ntwo\",\"bad\nnext,1\n");
    got g = next(r);
    ck_assert_int_eq(g.status, CSV_BAD_RECORD);
    ck_assert_int_eq(g.line, 1);
    ck_assert_msg(strstr(g.err, "opened on line 2") != NULL, "err: %s", g.err);
    EXPECT(r, 3, "next|1", "--");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_garbage_after_closing_quote)
{
    csv_reader *r = from("\"ab\"x,1,2\nc,d\ne,\"multi\nline\"\"\" ,f\ng,h\n");
    got g = next(r);
    ck_assert_int_eq(g.status, CSV_BAD_RECORD);
    ck_assert_int_eq(g.line, 1);
    ck_assert_str_eq(g.err, "unexpected 'x' after the closing quote of field 1");
    EXPECT(r, 2, "c|d", "--");
    /* A quoted field that spans lines and then meets garbage: the reader
     * cannot know which quote was wrong, reports the record and goes on
     * after the line where the quote opened. */
    g = next(r);
    ck_assert_int_eq(g.status, CSV_BAD_RECORD);
    ck_assert_int_eq(g.line, 3);
    ck_assert_msg(strstr(g.err, "opened on line 3 closes on line 4 followed by ' '") != NULL,
                  "err: %s", g.err);
    EXPECT(r, 4, "line\"\"\" |f", "--");
    EXPECT(r, 5, "g|h", "--");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

START_TEST(test_stray_quote_costs_one_record)
{
    /* The stray quote on line 1 pairs with the opening quote on line 3;
     * the garbage after it shows the mistake, and lines 2 and 3 are still
     * read as records. */
    csv_reader *r = from("1,\"stray\n2,ok\n3,\"x\"\n4,z\n");
    got g = next(r);
    ck_assert_int_eq(g.status, CSV_BAD_RECORD);
    ck_assert_int_eq(g.line, 1);
    ck_assert_msg(strstr(g.err, "stray quote") != NULL, "err: %s", g.err);
    EXPECT(r, 2, "2|ok", "--");
    EXPECT(r, 3, "3|x", "-q");
    EXPECT(r, 4, "4|z", "--");
    EXPECT_EOF(r);
    csv_reader_free(r);
}
END_TEST

/* Same bytes through a FILE * (in 256 KiB refills) and from one buffer
 * must give the same records; fields cross refill boundaries. */
START_TEST(test_file_refills_match_buffer)
{
    size_t cap = 3u << 20, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    for (int i = 0; len + 400 < cap; i++) {
        if (i % 7 == 0)
            len += (size_t)sprintf(text + len, "\"q\"\"%d\nx, y\",%d,,\"\"\r\n", i, i);
        else if (i % 11 == 0)
            len += (size_t)sprintf(text + len, "\n");
        else
            len += (size_t)sprintf(text + len, "/page/%d,ref%d,%d,%d,host%d.com,2023-01-%02d\n", i,
                                   i, i * 31, i % 97, i % 13, i % 28 + 1);
    }
    FILE *f = fmemopen(text, len, "r");
    ck_assert_ptr_nonnull(f);
    csv_reader *a = csv_reader_from_file(f);
    csv_reader *b = csv_reader_from_buffer(text, len);
    long records = 0;
    for (;;) {
        got ga = next(a), gb = next(b);
        ck_assert_int_eq(ga.status, gb.status);
        if (ga.status != CSV_OK)
            break;
        ck_assert_int_eq(ga.line, gb.line);
        ck_assert_str_eq(ga.text, gb.text);
        ck_assert_str_eq(ga.quoted, gb.quoted);
        records++;
    }
    ck_assert_int_gt(records, 50000);
    csv_reader_free(a);
    csv_reader_free(b);
    fclose(f);
    free(text);
}
END_TEST

/* In a stream the reader cannot wait for the end of input to call a quote
 * unterminated: past max_record bytes it gives up on the record and goes
 * on after the line where the quote opened. */
START_TEST(test_record_size_limit_in_a_stream)
{
    size_t cap = 1u << 20, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    len += (size_t)sprintf(text + len, "a,\"never closed\n");
    for (int i = 0; i < 20000; i++)
        len += (size_t)sprintf(text + len, "%d,v\n", i);
    FILE *f = fmemopen(text, len, "r");
    csv_reader *r = csv_reader_from_file(f);
    csv_reader_set_max_record(r, 4096);
    got g = next(r);
    ck_assert_int_eq(g.status, CSV_BAD_RECORD);
    ck_assert_int_eq(g.line, 1);
    ck_assert_msg(strstr(g.err, "record size limit") != NULL, "err: %s", g.err);
    EXPECT(r, 2, "0|v", "--");
    EXPECT(r, 3, "1|v", "--");
    long n = 2;
    while (next(r).status == CSV_OK)
        n++;
    ck_assert_int_eq(n, 20000);
    csv_reader_free(r);
    fclose(f);

    /* An unquoted line over the limit is skipped as a whole. */
    memset(text, 'x', 10000);
    len = 10000 + (size_t)sprintf(text + 10000, "\nshort,1\n");
    r = csv_reader_from_buffer(text, len);
    csv_reader_set_max_record(r, 4096);
    g = next(r);
    ck_assert_int_eq(g.status, CSV_BAD_RECORD);
    ck_assert_msg(strstr(g.err, "longer than 4096 bytes") != NULL, "err: %s", g.err);
    EXPECT(r, 2, "short|1", "--");
    csv_reader_free(r);
    free(text);
}
END_TEST

Suite *suite_csv(void)
{
    Suite *s = suite_create("csv");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, test_plain_records);
    tcase_add_test(tc, test_quoted_fields_and_escaped_quotes);
    tcase_add_test(tc, test_quote_inside_unquoted_field_is_data);
    tcase_add_test(tc, test_embedded_newline_spans_lines);
    tcase_add_test(tc, test_crlf_line_endings);
    tcase_add_test(tc, test_lone_cr_ends_a_record);
    tcase_add_test(tc, test_missing_final_newline);
    tcase_add_test(tc, test_empty_fields_quoted_vs_unquoted);
    tcase_add_test(tc, test_blank_lines_skipped_but_counted);
    tcase_add_test(tc, test_unterminated_quote_then_recovery);
    tcase_add_test(tc, test_unterminated_quote_after_multiline_field);
    tcase_add_test(tc, test_garbage_after_closing_quote);
    tcase_add_test(tc, test_stray_quote_costs_one_record);
    tcase_add_test(tc, test_file_refills_match_buffer);
    tcase_add_test(tc, test_record_size_limit_in_a_stream);
    suite_add_tcase(s, tc);
    return s;
}
