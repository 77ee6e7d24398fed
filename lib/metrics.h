/*
 * metrics.h — an in-process registry of Prometheus metrics and its text
 * exposition.
 *
 * Owns the metric families (counter, gauge, histogram), their labelled
 * series and rendering them in the Prometheus text format (version 0.0.4).
 * It is separate from the HTTP server (lib/metrics_http.h) and from what
 * the processor counts (lib/run_metrics.h) so that the counting code never
 * depends on how, or whether, the numbers are served.
 *
 * Thread safety: one mutex guards the registry. The processor's thread
 * bumps series while the HTTP server's thread renders them; updates are
 * made per batch or per event that is rare (a dead letter, a flush), never
 * per record, so the lock is cheap.
 */
#ifndef ACTIVITY_METRICS_H
#define ACTIVITY_METRICS_H

#include <stddef.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

#define METRICS_MAX_LABELS 3
#define METRICS_MAX_BUCKETS 16

typedef struct metric_family metric_family;

/* Registers a family. labels: comma-separated label names ("topic,reason")
 * or NULL; buckets: a histogram's upper bounds, ascending (+Inf is implied).
 * Returns NULL only when out of memory or given more than the maxima above
 * (a programming error: the families are fixed at start). */
metric_family *metrics_family(const char *name, enum metric_type type, const char *help,
                              const char *labels, const double *buckets, int n_buckets);

/* Adds to (counter, gauge), sets (gauge) or observes (histogram) the series
 * with these label values (as many as the family has labels; NULL when it
 * has none), creating it on first use. A series that cannot be created
 * (out of memory) is counted in activity_metrics_dropped_total. */
void metrics_add(metric_family *f, const char *const *label_values, double v);
void metrics_set(metric_family *f, const char *const *label_values, double v);
void metrics_observe(metric_family *f, const char *const *label_values, double v);
/* Forgets every series of the family (gauges describing a set that
 * changed, such as the assigned partitions' lag). */
void metrics_clear(metric_family *f);
/* The current value of a series (a histogram's count), 0 if it has none. */
double metrics_value(metric_family *f, const char *const *label_values);

/* A gauge computed when scraped (e.g. an age from a stored timestamp). */
int metrics_gauge_fn(const char *name, const char *help, double (*fn)(void));

/* The whole registry in the text format; malloc'd, caller frees; NULL when
 * out of memory. */
char *metrics_render(size_t *len);

/* Frees every family (tests; the processor keeps them to the end). */
void metrics_reset(void);

#endif
