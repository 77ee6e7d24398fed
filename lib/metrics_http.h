/*
 * metrics_http.h — the HTTP endpoint behind --metrics-addr: GET /metrics
 * (the registry of lib/metrics.h in the Prometheus text format), GET
 * /healthz and GET /readyz.
 *
 * Served by libmicrohttpd on its own thread, so a scrape never waits for
 * the processing loop and a stuck loop still answers (with /healthz 503).
 * What "healthy" and "ready" mean is the caller's: it passes a probe that
 * the server calls for each request.
 */
#ifndef ACTIVITY_METRICS_HTTP_H
#define ACTIVITY_METRICS_HTTP_H

#include "lib/log.h"

#include <stdbool.h>
#include <stddef.h>

/* Returns true when healthy (ready, if ready is set); otherwise writes the
 * reason to why. Called from the server's thread. */
typedef bool (*metrics_probe)(bool ready, char *why, size_t cap);

typedef struct metrics_http metrics_http;

/* Listens on HOST:PORT ([v6-address]:PORT for IPv6; port 0 picks one,
 * see metrics_http_port). */
metrics_http *metrics_http_start(const char *addr, metrics_probe probe, errbuf *err);
int metrics_http_port(const metrics_http *h);
void metrics_http_stop(metrics_http *h);

/* Splits HOST:PORT; 0 or -1 with err set. host must hold 256 bytes. */
int metrics_parse_addr(const char *addr, char *host, int *port, errbuf *err);

#endif
