/*
 * test_schema_registry.c — the schema registry client against a tiny
 * in-process HTTP server (libmicrohttpd on 127.0.0.1, ephemeral port)
 * serving canned Confluent-API replies: basic auth, 404 versus
 * unreachable, retries with backoff, timeouts, registration, and the
 * Avro codec's cache of looked-up ids. The real-registry counterpart is
 * tests/integration/test_registry.sh (Apicurio, which cannot do basic auth).
 */
#include "consumers/avro_codec.h"
#include "consumers/framing.h"
#include "consumers/schema_registry.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* base64("alice:s3cr:et"): the password has a colon of its own. */
#define ALICE_AUTH "Basic YWxpY2U6czNjcjpldA=="

#define MAX_SCRIPT 8

/* The canned registry. Ids 7 and 11 have `schema`, id 9 is a Protobuf
 * schema, id 10 answers 200 with a body that is not JSON, any other id is
 * 404. POST .../subjects/{s}/versions answers {"id":42} (or {} for the
 * subject "noid"). Before routing: a missing or wrong Authorization (when
 * `auth` is set) is 401, and the first requests take their status from
 * `script` (e.g. 503, 503). With hang_ms every answer waits that long (or
 * until the server stops). */
typedef struct {
    struct MHD_Daemon *d;
    unsigned port;
    char base[128];
    pthread_mutex_t mu;
    const char *auth;
    const char *schema;
    int script[MAX_SCRIPT];
    int nscript;
    int hang_ms;
    atomic_int stopping;
    /* what the last request looked like */
    int requests;
    char method[16], url[512], auth_seen[256], ctype[256], accept[256];
    char *body;
    size_t body_len;
} server;

typedef struct {
    char *body;
    size_t len;
    int n; /* this request's number, from 1 */
} request_state;

static void copy_header(struct MHD_Connection *conn, const char *name, char *dst, size_t cap)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/vnd.schemaregistry.v1+json");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"registry\"");
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

static enum MHD_Result route(server *s, struct MHD_Connection *conn, const char *url,
                             const char *method)
{
    const char *ids = strstr(url, "/schemas/ids/");
    if (strcmp(method, "GET") == 0 && ids) {
        unsigned long id = strtoul(ids + strlen("/schemas/ids/"), NULL, 10);
        if ((id == 7 || id == 11) && s->schema) {
            json_t *j = json_pack("{s:s}", "schema", s->schema);
            char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
            json_decref(j);
            enum MHD_Result r = text ? respond(conn, MHD_HTTP_OK, text) : MHD_NO;
            free(text);
            return r;
        }
        if (id == 9)
            return respond(conn, MHD_HTTP_OK,
                           "{\"schema\":\"syntax = \\\"proto3\\\";\",\"schemaType\":\"PROTOBUF\"}");
        if (id == 10)
            return respond(conn, MHD_HTTP_OK, "<html>captive portal</html>");
        char msg[128];
        snprintf(msg, sizeof msg, "{\"error_code\":40403,\"message\":\"Schema %lu not found\"}",
                 id);
        return respond(conn, MHD_HTTP_NOT_FOUND, msg);
    }
    if (strcmp(method, "POST") == 0 && strstr(url, "/subjects/") && ends_with(url, "/versions"))
        return respond(conn, MHD_HTTP_OK,
                       strstr(url, "/subjects/noid/") ? "{}" : "{\"id\":42,\"version\":1}");
    return respond(conn, MHD_HTTP_NOT_FOUND, "{\"error_code\":404,\"message\":\"HTTP 404\"}");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **ctx)
{
    (void)version;
    server *s = cls;
    request_state *rq = *ctx;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *ctx = rq;
        pthread_mutex_lock(&s->mu);
        rq->n = ++s->requests;
        snprintf(s->method, sizeof s->method, "%s", method);
        snprintf(s->url, sizeof s->url, "%s", url);
        copy_header(conn, MHD_HTTP_HEADER_AUTHORIZATION, s->auth_seen, sizeof s->auth_seen);
        copy_header(conn, MHD_HTTP_HEADER_CONTENT_TYPE, s->ctype, sizeof s->ctype);
        copy_header(conn, MHD_HTTP_HEADER_ACCEPT, s->accept, sizeof s->accept);
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (*upload_size) {
        char *b = realloc(rq->body, rq->len + *upload_size + 1);
        if (!b)
            return MHD_NO;
        memcpy(b + rq->len, upload, *upload_size);
        rq->body = b;
        rq->len += *upload_size;
        b[rq->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    free(s->body);
    s->body = rq->body ? strdup(rq->body) : NULL;
    s->body_len = rq->len;
    int status = rq->n <= s->nscript ? s->script[rq->n - 1] : 0;
    const char *need = s->auth;
    int hang = s->hang_ms;
    pthread_mutex_unlock(&s->mu);

    for (int waited = 0; waited < hang && !atomic_load(&s->stopping); waited += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    const char *got = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (need && (!got || strcmp(got, need) != 0))
        return respond(conn, MHD_HTTP_UNAUTHORIZED,
                       "{\"error_code\":401,\"message\":\"Unauthorized\"}");
    if (status)
        return respond(conn, (unsigned)status, "{\"error_code\":50301,\"message\":\"busy\"}");
    return route(s, conn, url, method);
}

static void done(void *cls, struct MHD_Connection *conn, void **ctx,
                 enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    request_state *rq = *ctx;
    if (rq) {
        free(rq->body);
        free(rq);
        *ctx = NULL;
    }
}

/* Keeps the request path as sent (MHD would percent-decode it). */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static server *server_start(void)
{
    server *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A thread per connection: a hanging answer holds up only its own. */
    s->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, handle, s, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_NOTIFY_COMPLETED,
                         done, s, MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL, MHD_OPTION_END);
    ck_assert_msg(s->d != NULL, "cannot start the test HTTP server");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert(info && info->port);
    s->port = info->port;
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%u", s->port);
    return s;
}

static void server_stop(server *s)
{
    atomic_store(&s->stopping, 1);
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    free(s->body);
    free(s);
}

static int server_requests(server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Statuses for the next requests (counted from now), then routing. */
static void server_script(server *s, int n, const int *statuses)
{
    pthread_mutex_lock(&s->mu);
    ck_assert_int_le(s->requests + n, MAX_SCRIPT);
    for (int i = 0; i < n; i++)
        s->script[s->requests + i] = statuses[i];
    s->nscript = s->requests + n;
    pthread_mutex_unlock(&s->mu);
}

static schema_registry *client(const char *url, const char *user_info, long timeout_ms, int retries)
{
    registry_options o = {
        .url = url, .user_info = user_info, .timeout_ms = timeout_ms, .retries = retries};
    errbuf err = {{0}};
    schema_registry *r = schema_registry_new(&o, &err);
    ck_assert_msg(r != NULL, "%s", err.msg);
    return r;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A pretty-printed schema (raw newlines and tabs between tokens) whose
 * doc has JSON escapes of its own and non-ASCII UTF-8. */
static const char tricky_schema[] =
    "{\n\t\"type\": \"record\",\n\t\"name\": \"T\",\n"
    "\t\"doc\": \"a \\\"quoted\\\" back\\\\slash \xc3\xa9t\xc3\xa9 \xf0\x9f\x92\xa1 </script>\",\n"
    "\t\"fields\": [{\"name\": \"x\", \"type\": \"long\"}]\n}\n";

START_TEST(get_returns_the_schema)
{
    server *s = server_start();
    s->schema = tricky_schema;
    /* A base URL with a path prefix and a trailing slash (Apicurio's ccompat). */
    char base[200];
    snprintf(base, sizeof base, "%s/apis/ccompat/v7/", s->base);
    schema_registry *r = client(base, NULL, 2000, 4);
    errbuf err = {{0}};
    char *text = NULL;
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_OK);
    ck_assert_str_eq(text, tricky_schema);
    free(text);
    ck_assert_str_eq(s->method, "GET");
    ck_assert_str_eq(s->url, "/apis/ccompat/v7/schemas/ids/7");
    ck_assert_ptr_nonnull(strstr(s->accept, "application/vnd.schemaregistry.v1+json"));
    ck_assert_str_eq(s->auth_seen, ""); /* no credentials configured, none sent */
    ck_assert_int_eq(server_requests(s), 1);
    ck_assert_uint_eq(schema_registry_requests(r), 1);

    /* A non-Avro schema is not ours to read; a 2xx that is not JSON is a bad reply.
     * Neither is retried. */
    text = NULL;
    ck_assert_int_eq(schema_registry_get(r, 9, &text, &err), REGISTRY_NOT_AVRO);
    ck_assert_ptr_null(text);
    ck_assert_ptr_nonnull(strstr(err.msg, "PROTOBUF"));
    ck_assert_int_eq(schema_registry_get(r, 10, &text, &err), REGISTRY_BAD_REPLY);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(server_requests(s), 3);
    schema_registry_free(r);
    server_stop(s);
}
END_TEST

START_TEST(basic_auth)
{
    server *s = server_start();
    s->schema = tricky_schema;
    s->auth = ALICE_AUTH;
    errbuf err = {{0}};
    char *text = NULL;

    /* user_info: the header is sent on the first request (no challenge round). */
    schema_registry *r = client(s->base, "alice:s3cr:et", 2000, 4);
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_OK);
    ck_assert_str_eq(text, tricky_schema);
    free(text);
    ck_assert_str_eq(s->auth_seen, ALICE_AUTH);
    ck_assert_int_eq(server_requests(s), 1);
    schema_registry_free(r);

    /* The same credentials in the URL (the password's colon percent-encoded). */
    char url[256];
    snprintf(url, sizeof url, "http://alice:s3cr%%3Aet@127.0.0.1:%u", s->port);
    r = client(url, NULL, 2000, 4);
    text = NULL;
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_OK);
    free(text);
    ck_assert_str_eq(s->auth_seen, ALICE_AUTH);
    ck_assert_int_eq(server_requests(s), 2);
    schema_registry_free(r);

    /* No credentials: 401 is refused at once, not retried. */
    r = client(s->base, NULL, 2000, 4);
    text = NULL;
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_REFUSED);
    ck_assert_ptr_null(text);
    ck_assert_str_eq(s->auth_seen, "");
    ck_assert_msg(strstr(err.msg, "refused (401)") && strstr(err.msg, "Unauthorized"), "%s",
                  err.msg);
    ck_assert_int_eq(server_requests(s), 3);
    ck_assert_uint_eq(schema_registry_requests(r), 1);
    schema_registry_free(r);

    /* Wrong password: refused too, once. */
    r = client(s->base, "alice:wr0ng", 2000, 4);
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_REFUSED);
    ck_assert_ptr_nonnull(strstr(err.msg, "refused (401)"));
    ck_assert_str_ne(s->auth_seen, ALICE_AUTH);
    ck_assert_int_eq(server_requests(s), 4);
    schema_registry_free(r);

    /* Wrong password in the URL: the error (which ends up in logs) names the
     * registry without the credentials. */
    snprintf(url, sizeof url, "http://alice:wr0ng@127.0.0.1:%u/", s->port);
    r = client(url, NULL, 2000, 4);
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_REFUSED);
    ck_assert_msg(strstr(err.msg, "refused (401)") && !strstr(err.msg, "wr0ng") &&
                      !strstr(err.msg, "alice") && strstr(err.msg, "127.0.0.1"),
                  "%s", err.msg);
    ck_assert_int_eq(server_requests(s), 5);
    schema_registry_free(r);
    server_stop(s);
}
END_TEST

START_TEST(not_found_is_not_unreachable)
{
    server *s = server_start();
    schema_registry *r = client(s->base, NULL, 2000, 4);
    errbuf err = {{0}};
    char *text = NULL;
    ck_assert_int_eq(schema_registry_get(r, 8, &text, &err), REGISTRY_NOT_FOUND);
    ck_assert_ptr_null(text);
    ck_assert_msg(strstr(err.msg, "not found") && strstr(err.msg, "Schema 8 not found"), "%s",
                  err.msg);
    ck_assert_int_eq(server_requests(s), 1); /* an answer, not retried */
    schema_registry_free(r);

    /* Nothing listening on the port any more: unavailable, after the retry. */
    char url[128];
    snprintf(url, sizeof url, "%s", s->base);
    server_stop(s);
    r = client(url, NULL, 2000, 1);
    err.msg[0] = '\0';
    ck_assert_int_eq(schema_registry_get(r, 8, &text, &err), REGISTRY_UNAVAILABLE);
    ck_assert_ptr_null(text);
    ck_assert_msg(err.msg[0] && !strstr(err.msg, "not found"), "%s", err.msg);
    ck_assert_uint_eq(schema_registry_requests(r), 2);
    schema_registry_free(r);
}
END_TEST

START_TEST(retries_with_backoff)
{
    server *s = server_start();
    s->schema = tricky_schema;
    schema_registry *r = client(s->base, NULL, 2000, 4);
    errbuf err = {{0}};
    char *text = NULL;

    /* 503 twice, then the schema: backoff 100 ms then 200 ms. */
    server_script(s, 2, (int[]){503, 503});
    double t0 = now_ms();
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_OK);
    double took = now_ms() - t0;
    ck_assert_str_eq(text, tricky_schema);
    free(text);
    ck_assert_int_eq(server_requests(s), 3);
    ck_assert_uint_eq(schema_registry_requests(r), 3);
    ck_assert_msg(took >= 250 && took < 1500, "took %.0f ms", took);
    schema_registry_free(r);

    /* 503 and 429 on every attempt: unavailable after retries + 1 requests. */
    r = client(s->base, NULL, 2000, 2);
    server_script(s, 3, (int[]){503, 429, 503});
    text = NULL;
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_UNAVAILABLE);
    ck_assert_ptr_null(text);
    ck_assert_msg(strstr(err.msg, "answered 503") && strstr(err.msg, "busy"), "%s", err.msg);
    ck_assert_int_eq(server_requests(s), 6);
    ck_assert_uint_eq(schema_registry_requests(r), 3);
    schema_registry_free(r);
    server_stop(s);
}
END_TEST

START_TEST(timeout)
{
    server *s = server_start();
    s->schema = tricky_schema;
    s->hang_ms = 3000; /* or until the server stops */
    const long timeout_ms = 300;
    errbuf err = {{0}};
    char *text = NULL;

    schema_registry *r = client(s->base, NULL, timeout_ms, 0);
    double t0 = now_ms();
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_UNAVAILABLE);
    double took = now_ms() - t0;
    ck_assert_ptr_null(text);
    ck_assert_msg(strstr(err.msg, "Timeout"), "%s", err.msg);
    ck_assert_msg(took >= timeout_ms * 0.8 && took < timeout_ms * 5, "took %.0f ms", took);
    ck_assert_int_eq(server_requests(s), 1);
    schema_registry_free(r);

    /* With one retry: two timeouts and a 100 ms backoff. */
    r = client(s->base, NULL, timeout_ms, 1);
    t0 = now_ms();
    ck_assert_int_eq(schema_registry_get(r, 7, &text, &err), REGISTRY_UNAVAILABLE);
    took = now_ms() - t0;
    ck_assert_msg(took >= 2 * timeout_ms * 0.8 && took < (2 * timeout_ms + 100) * 5, "took %.0f ms",
                  took);
    ck_assert_uint_eq(schema_registry_requests(r), 2);
    ck_assert_int_eq(server_requests(s), 3);
    schema_registry_free(r);
    server_stop(s);
}
END_TEST

START_TEST(register_schema)
{
    server *s = server_start();
    schema_registry *r = client(s->base, NULL, 2000, 4);
    errbuf err = {{0}};
    uint32_t id = 0;
    ck_assert_int_eq(
        schema_registry_register(r, "activity.web_events-value", tricky_schema, &id, &err),
        REGISTRY_OK);
    ck_assert_uint_eq(id, 42);
    ck_assert_str_eq(s->method, "POST");
    ck_assert_str_eq(s->url, "/subjects/activity.web_events-value/versions");
    ck_assert_str_eq(s->ctype, "application/vnd.schemaregistry.v1+json");
    ck_assert_int_eq(server_requests(s), 1);

    /* The body is {"schema": "<the schema as a JSON string>"}, byte exact. */
    ck_assert_ptr_nonnull(s->body);
    ck_assert_uint_eq(strlen(s->body), s->body_len);
    ck_assert_ptr_null(strchr(s->body, '\n'));
    ck_assert_ptr_null(strchr(s->body, '\t'));
    ck_assert_ptr_nonnull(strstr(s->body, "{\"schema\":\"{\\n\\t\\\"type\\\": \\\"record\\\""));
    ck_assert_ptr_nonnull(strstr(s->body, "a \\\\\\\"quoted\\\\\\\" back\\\\\\\\slash"));
    ck_assert_ptr_nonnull(strstr(s->body, "\xc3\xa9t\xc3\xa9 \xf0\x9f\x92\xa1 </script>"));
    json_error_t jerr;
    json_t *j = json_loadb(s->body, s->body_len, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(j != NULL, "%s", jerr.text);
    ck_assert_uint_eq(json_object_size(j), 1);
    json_t *v = json_object_get(j, "schema");
    ck_assert(json_is_string(v));
    ck_assert_uint_eq(json_string_length(v), strlen(tricky_schema));
    ck_assert_str_eq(json_string_value(v), tricky_schema);
    json_decref(j);

    /* A subject is escaped into the path. */
    ck_assert_int_eq(schema_registry_register(r, "a b/c", "\"long\"", &id, &err), REGISTRY_OK);
    ck_assert_str_eq(s->url, "/subjects/a%20b%2Fc/versions");
    ck_assert_str_eq(s->body, "{\"schema\":\"\\\"long\\\"\"}");

    /* A reply without an id. */
    id = 0;
    ck_assert_int_eq(schema_registry_register(r, "noid", "\"long\"", &id, &err),
                     REGISTRY_BAD_REPLY);
    ck_assert_uint_eq(id, 0);
    ck_assert_int_eq(server_requests(s), 3);
    schema_registry_free(r);
    server_stop(s);
}
END_TEST

/* An event framed with a schema id. */
static unsigned char *framed_event(avro_codec *c, uint32_t id, size_t *len)
{
    web_event ev = {.url = {"/a", 2, true},
                    .host = {"example.org", 11, true},
                    .user_id = {12345, true},
                    .event_time_ms = 1672531610079LL};
    const void *buf;
    errbuf err = {{0}};
    ck_assert_msg(avro_codec_encode_event(c, &ev, &buf, len, &err) == 0, "%s", err.msg);
    unsigned char *copy = malloc(*len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, buf, *len);
    framing_write_header(copy, id);
    return copy;
}

START_TEST(codec_caches_ids)
{
    server *s = server_start();
    size_t slen;
    s->schema = avro_codec_schema_text(RECORD_WEB_EVENT, &slen);
    ck_assert_ptr_nonnull(s->schema);
    schema_registry *r = client(s->base, NULL, 2000, 0);
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    avro_codec_set_registry(c, r);

    size_t len;
    unsigned char *rec7 = framed_event(c, 7, &len);
    decoded_record out;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(avro_codec_decode(c, rec7, len, RECORD_WEB_EVENT, &out, &err), DECODE_OK);
        ck_assert(out.u.event.user_id.present && out.u.event.user_id.value == 12345);
    }
    ck_assert_int_eq(server_requests(s), 1);
    ck_assert_uint_eq(avro_codec_registry_lookups(c), 1);

    /* An unknown id (404) is cached as unknown: a dead letter, asked once. */
    unsigned char *rec8 = framed_event(c, 8, &len);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(avro_codec_decode(c, rec8, len, RECORD_WEB_EVENT, &out, &err),
                         DECODE_UNKNOWN_SCHEMA);
    ck_assert_int_eq(server_requests(s), 2);

    /* An unavailable registry is not cached: the next record asks again. */
    unsigned char *rec11 = framed_event(c, 11, &len);
    server_script(s, 1, (int[]){503});
    ck_assert_int_eq(avro_codec_decode(c, rec11, len, RECORD_WEB_EVENT, &out, &err),
                     DECODE_REGISTRY_UNAVAILABLE);
    ck_assert_int_eq(avro_codec_decode(c, rec11, len, RECORD_WEB_EVENT, &out, &err), DECODE_OK);
    ck_assert_int_eq(avro_codec_decode(c, rec11, len, RECORD_WEB_EVENT, &out, &err), DECODE_OK);
    ck_assert_int_eq(server_requests(s), 4);
    ck_assert_uint_eq(avro_codec_registry_lookups(c), 4);

    free(rec7);
    free(rec8);
    free(rec11);
    avro_codec_free(c);
    schema_registry_free(r);
    server_stop(s);
}
END_TEST

Suite *suite_schema_registry(void)
{
    Suite *s = suite_create("schema_registry");
    TCase *tc = tcase_create("http");
    tcase_add_test(tc, get_returns_the_schema);
    tcase_add_test(tc, basic_auth);
    tcase_add_test(tc, not_found_is_not_unreachable);
    tcase_add_test(tc, retries_with_backoff);
    tcase_add_test(tc, timeout);
    tcase_add_test(tc, register_schema);
    tcase_add_test(tc, codec_caches_ids);
    suite_add_tcase(s, tc);
    return s;
}
