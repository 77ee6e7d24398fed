/*
 * metrics_http.c — the --metrics-addr HTTP server (see metrics_http.h).
 */
#include "lib/metrics_http.h"
#include "lib/metrics.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct metrics_http {
    struct MHD_Daemon *daemon;
    metrics_probe probe;
    int port;
};

int metrics_parse_addr(const char *addr, char *host, int *port, errbuf *err)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t hlen = colon ? (size_t)(colon - addr) : 0;
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || hlen == 0 || hlen >= 256 || !colon[1] || *end || p < 0 || p > 65535) {
        err_set(err, "--metrics-addr takes HOST:PORT (e.g. 127.0.0.1:9464), got '%s'", addr);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    metrics_http *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9,
                       MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *text = metrics_render(&len);
        if (!text)
            return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n",
                           14, MHD_RESPMEM_PERSISTENT);
        return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                       MHD_RESPMEM_MUST_FREE);
    }
    bool ready = strcmp(url, "/readyz") == 0;
    if (ready || strcmp(url, "/healthz") == 0) {
        char why[256] = "";
        bool ok = h->probe(ready, why, sizeof why - 1);
        char body[300];
        int n = snprintf(body, sizeof body, "%s\n", ok ? "ok" : why);
        return respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", body,
                       (size_t)n, MHD_RESPMEM_MUST_COPY);
    }
    return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain",
                   "not found: try /metrics, /healthz or /readyz\n", 45, MHD_RESPMEM_PERSISTENT);
}

/* libmicrohttpd's own error messages, through our logger. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_warn("metrics http: %s", line);
}

metrics_http *metrics_http_start(const char *addr, metrics_probe probe, errbuf *err)
{
    char host[256];
    int port;
    if (metrics_parse_addr(addr, host, &port, err))
        return NULL;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai) {
        err_set(err, "--metrics-addr %s: %s", addr, gai_strerror(gai));
        return NULL;
    }
    metrics_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        err_set(err, "out of memory");
        return NULL;
    }
    h->probe = probe;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first, or libmicrohttpd warns that it may not be used. */
    h->daemon =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER,
                         mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        err_set(err,
                "--metrics-addr %s: cannot listen there (in use, or not an address of "
                "this host?)",
                addr);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;
}

int metrics_http_port(const metrics_http *h)
{
    return h->port;
}

void metrics_http_stop(metrics_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
