/*
 * schema_registry.c — Confluent Schema Registry REST client (see
 * schema_registry.h).
 */
#include "consumers/schema_registry.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A reply bigger than this is not a schema we want. */
#define MAX_REPLY (16u << 20)

struct schema_registry {
    CURL *curl;
    char *base;  /* without a trailing slash */
    char *shown; /* base without user:password@, for messages (they reach logs) */
    char *user_info;
    long timeout_ms;
    int retries;
    unsigned long requests;
    char *buf;
    size_t len, cap;
    bool overflow;
};

void registry_options_defaults(registry_options *o)
{
    /* The URL and credentials come from the options, which also read
     * them from the environment (lib/config.h). */
    memset(o, 0, sizeof *o);
    o->timeout_ms = 5000;
    o->retries = 4;
}

static int curl_ready;

/* url (which starts with http:// or https://) without the user info of its
 * authority, if any. */
static char *without_user_info(const char *url)
{
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            host = p + 1;
    char *s;
    return asprintf(&s, "%.*s%s", (int)(auth - url), url, host) < 0 ? NULL : s;
}

schema_registry *schema_registry_new(const registry_options *o, errbuf *err)
{
    if (!o->url || !*o->url) {
        err_set(err, "no schema registry URL");
        return NULL;
    }
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
        err_set(err, "schema registry URL must start with http:// or https://, got '%s'", o->url);
        return NULL;
    }
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
            err_set(err, "cannot initialise libcurl");
            return NULL;
        }
        curl_ready = 1;
    }
    schema_registry *r = calloc(1, sizeof *r);
    if (!r || !(r->base = strdup(o->url)) || !(r->shown = without_user_info(r->base)) ||
        (o->user_info && !(r->user_info = strdup(o->user_info))) || !(r->curl = curl_easy_init())) {
        err_set(err, "out of memory");
        schema_registry_free(r);
        return NULL;
    }
    size_t bl = strlen(r->base);
    while (bl > 0 && r->base[bl - 1] == '/')
        r->base[--bl] = '\0';
    size_t sl = strlen(r->shown);
    while (sl > 0 && r->shown[sl - 1] == '/')
        r->shown[--sl] = '\0';
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    r->retries = o->retries >= 0 ? o->retries : 4;
    return r;
}

void schema_registry_free(schema_registry *r)
{
    if (!r)
        return;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    free(r->base);
    free(r->shown);
    free(r->user_info);
    free(r->buf);
    free(r);
}

unsigned long schema_registry_requests(const schema_registry *r)
{
    return r->requests;
}

static size_t on_data(char *data, size_t size, size_t n, void *opaque)
{
    schema_registry *r = opaque;
    size_t add = size * n;
    if (r->len + add + 1 > MAX_REPLY) {
        r->overflow = true;
        return 0;
    }
    if (r->len + add + 1 > r->cap) {
        size_t cap = (r->len + add + 1) * 2;
        char *b = realloc(r->buf, cap);
        if (!b)
            return 0;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, add);
    r->len += add;
    r->buf[r->len] = '\0';
    return add;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The registry's error message, if its body is {"error_code":..,"message":..}. */
static void reply_message(schema_registry *r, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *j = r->len ? json_loadb(r->buf, r->len, 0, NULL) : NULL;
    const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
    snprintf(out, cap, "%.200s", m ? m : (r->len ? r->buf : ""));
    json_decref(j);
}

/* One request with retries. body NULL: GET. Returns the status class;
 * on REGISTRY_OK the reply is in r->buf/r->len. */
static enum registry_status request(schema_registry *r, const char *path, const char *body,
                                    errbuf *err)
{
    char url[2048];
    if ((size_t)snprintf(url, sizeof url, "%s%s", r->base, path) >= sizeof url) {
        err_set(err, "registry URL too long");
        return REGISTRY_REFUSED;
    }
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Accept: application/vnd.schemaregistry.v1+json, "
                                 "application/json");
    if (body)
        hdr = curl_slist_append(hdr, "Content-Type: application/vnd.schemaregistry.v1+json");
    long backoff = 100;
    enum registry_status st = REGISTRY_UNAVAILABLE;
    for (int attempt = 0; attempt <= r->retries; attempt++) {
        if (attempt) {
            sleep_ms(backoff);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
        }
        CURL *c = r->curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_USERAGENT, "activity");
        if (r->user_info) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERPWD, r->user_info);
        }
        if (body) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        }
        r->len = 0;
        r->overflow = false;
        if (r->buf)
            r->buf[0] = '\0';
        r->requests++;
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
            if (r->overflow) {
                err_set(err, "registry reply to %s is larger than %u bytes", path, MAX_REPLY);
                st = REGISTRY_BAD_REPLY;
                break;
            }
            err_set(err, "schema registry %s%s: %s", r->shown, path, curl_easy_strerror(rc));
            st = REGISTRY_UNAVAILABLE;
            continue;
        }
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        char msg[256];
        if (code >= 200 && code < 300) {
            st = REGISTRY_OK;
            break;
        }
        reply_message(r, msg, sizeof msg);
        if (code == 404) {
            err_set(err, "registry: %s not found: %s", path, msg);
            st = REGISTRY_NOT_FOUND;
            break;
        }
        if (code >= 500 || code == 429 || code == 408) {
            err_set(err, "registry %s%s answered %ld: %s", r->shown, path, code, msg);
            st = REGISTRY_UNAVAILABLE;
            continue;
        }
        err_set(err, "registry %s%s refused (%ld): %s", r->shown, path, code, msg);
        st = REGISTRY_REFUSED;
        break;
    }
    curl_slist_free_all(hdr);
    return st;
}

enum registry_status schema_registry_get(schema_registry *r, uint32_t id, char **schema,
                                         errbuf *err)
{
    char path[64];
    snprintf(path, sizeof path, "/schemas/ids/%u", id);
    enum registry_status st = request(r, path, NULL, err);
    if (st != REGISTRY_OK)
        return st;
    json_error_t jerr;
    json_t *j = json_loadb(r->buf, r->len, 0, &jerr);
    json_t *s = j ? json_object_get(j, "schema") : NULL;
    json_t *type = j ? json_object_get(j, "schemaType") : NULL;
    if (!json_is_string(s)) {
        err_set(err, "registry reply for schema id %u has no schema string", id);
        json_decref(j);
        return REGISTRY_BAD_REPLY;
    }
    if (type && !(json_is_string(type) && strcmp(json_string_value(type), "AVRO") == 0)) {
        err_set(err, "schema id %u is a %s schema, not Avro", id,
                json_is_string(type) ? json_string_value(type) : "non-Avro");
        json_decref(j);
        return REGISTRY_NOT_AVRO;
    }
    *schema = strdup(json_string_value(s));
    json_decref(j);
    if (!*schema) {
        err_set(err, "out of memory");
        return REGISTRY_UNAVAILABLE;
    }
    return REGISTRY_OK;
}

enum registry_status schema_registry_register(schema_registry *r, const char *subject,
                                              const char *schema, uint32_t *id, errbuf *err)
{
    char *esc = curl_easy_escape(r->curl, subject, 0);
    if (!esc) {
        err_set(err, "out of memory");
        return REGISTRY_UNAVAILABLE;
    }
    char path[1024];
    snprintf(path, sizeof path, "/subjects/%s/versions", esc);
    curl_free(esc);
    json_t *req = json_pack("{s:s}", "schema", schema);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        err_set(err, "out of memory");
        return REGISTRY_UNAVAILABLE;
    }
    enum registry_status st = request(r, path, body, err);
    free(body);
    if (st != REGISTRY_OK)
        return st;
    json_t *j = json_loadb(r->buf, r->len, 0, NULL);
    json_t *v = j ? json_object_get(j, "id") : NULL;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX) {
        err_set(err, "registry reply to registering under %s has no id", subject);
        json_decref(j);
        return REGISTRY_BAD_REPLY;
    }
    *id = (uint32_t)json_integer_value(v);
    json_decref(j);
    return REGISTRY_OK;
}
