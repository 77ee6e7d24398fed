/*
 * test_metrics.c — the metrics registry's text format (lib/metrics.h) and
 * the HTTP endpoint serving it (lib/metrics_http.h), over a real socket.
 */
#include "lib/metrics.h"
#include "lib/metrics_http.h"
#include "tests/unit/unit.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

START_TEST(counter_labels_escaped)
{
    metric_family *f =
        metrics_family("t_records_total", METRIC_COUNTER, "Records.", "topic,reason", NULL, 0);
    ck_assert_ptr_nonnull(f);
    metrics_add(f, (const char *[]){"a", "x"}, 2);
    metrics_add(f, (const char *[]){"a", "x"}, 3);
    metrics_add(f, (const char *[]){"q\"b\\\n", "y"}, 1);
    ck_assert_double_eq(metrics_value(f, (const char *[]){"a", "x"}), 5);
    size_t len;
    char *text = metrics_render(&len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE t_records_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text, "t_records_total{topic=\"a\",reason=\"x\"} 5\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "t_records_total{topic=\"q\\\"b\\\\\\n\",reason=\"y\"} 1\n"));
    free(text);
    metrics_clear(f);
    text = metrics_render(&len);
    ck_assert_ptr_null(strstr(text, "t_records_total{"));
    free(text);
    metrics_reset();
}
END_TEST

START_TEST(histogram_cumulative)
{
    static const double b[] = {1, 10};
    metric_family *h = metrics_family("t_seconds", METRIC_HISTOGRAM, "Seconds.", NULL, b, 2);
    metrics_observe(h, NULL, 0.5);
    metrics_observe(h, NULL, 5);
    metrics_observe(h, NULL, 50);
    size_t len;
    char *text = metrics_render(&len);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE t_seconds histogram\n"
                                       "t_seconds_bucket{le=\"1\"} 1\n"
                                       "t_seconds_bucket{le=\"10\"} 2\n"
                                       "t_seconds_bucket{le=\"+Inf\"} 3\n"
                                       "t_seconds_sum 55.5\n"
                                       "t_seconds_count 3\n"));
    free(text);
    metrics_reset();
}
END_TEST

static bool probe_ready;
static bool probe(bool ready, char *why, size_t cap)
{
    if (ready && !probe_ready) {
        snprintf(why, cap, "not yet");
        return false;
    }
    return true;
}

typedef struct {
    char buf[4096];
    size_t len;
} body;

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    body *b = ud;
    size_t k = size * n;
    if (b->len + k >= sizeof b->buf)
        k = sizeof b->buf - b->len - 1;
    memcpy(b->buf + b->len, p, k);
    b->len += k;
    b->buf[b->len] = '\0';
    return size * n;
}

static long get(int port, const char *path, body *b)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    memset(b, 0, sizeof *b);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

START_TEST(http_endpoints)
{
    metric_family *g = metrics_family("t_up", METRIC_GAUGE, "Up.", NULL, NULL, 0);
    metrics_set(g, NULL, 1);
    errbuf err = {{0}};
    metrics_http *h = metrics_http_start("127.0.0.1:0", probe, &err);
    ck_assert_msg(h != NULL, "%s", err.msg);
    int port = metrics_http_port(h);
    ck_assert_int_gt(port, 0);
    body b;
    ck_assert_int_eq(get(port, "/metrics", &b), 200);
    ck_assert_ptr_nonnull(strstr(b.buf, "\nt_up 1\n"));
    ck_assert_int_eq(get(port, "/healthz", &b), 200);
    probe_ready = false;
    ck_assert_int_eq(get(port, "/readyz", &b), 503);
    ck_assert_str_eq(b.buf, "not yet\n");
    probe_ready = true;
    ck_assert_int_eq(get(port, "/readyz", &b), 200);
    ck_assert_int_eq(get(port, "/nope", &b), 404);
    metrics_http_stop(h);
    metrics_reset();
}
END_TEST

START_TEST(bad_addresses)
{
    char host[256];
    int port;
    errbuf err = {{0}};
    ck_assert_int_eq(metrics_parse_addr("[::1]:9464", host, &port, &err), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 9464);
    ck_assert_int_eq(metrics_parse_addr("9464", host, &port, &err), -1);
    ck_assert_int_eq(metrics_parse_addr(":9464", host, &port, &err), -1);
    ck_assert_int_eq(metrics_parse_addr("h:70000", host, &port, &err), -1);
    ck_assert_int_eq(metrics_parse_addr("h:9x", host, &port, &err), -1);
    ck_assert_ptr_null(metrics_http_start("no.such.host.invalid:1", probe, &err));
}
END_TEST

Suite *suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, counter_labels_escaped);
    tcase_add_test(tc, histogram_cumulative);
    tcase_add_test(tc, http_endpoints);
    tcase_add_test(tc, bad_addresses);
    suite_add_tcase(s, tc);
    return s;
}
