/*
 * metrics.c — the metrics registry and its Prometheus text rendering (see
 * metrics.h).
 */
#include "lib/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    struct series *next;
    char *values[METRICS_MAX_LABELS];
    double value; /* counter, gauge; a histogram's sum */
    unsigned long long count;
    unsigned long long buckets[METRICS_MAX_BUCKETS];
} series;

struct metric_family {
    struct metric_family *next;
    char *name, *help;
    enum metric_type type;
    char *labels[METRICS_MAX_LABELS];
    int n_labels;
    double bounds[METRICS_MAX_BUCKETS];
    int n_buckets;
    double (*fn)(void);
    series *series;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static metric_family *families, **families_tail = &families;
static unsigned long long dropped;

static void family_free(metric_family *f)
{
    metrics_clear(f);
    for (int i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

metric_family *metrics_family(const char *name, enum metric_type type, const char *help,
                              const char *labels, const double *buckets, int n_buckets)
{
    if (n_buckets < 0 || n_buckets > METRICS_MAX_BUCKETS)
        return NULL;
    metric_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    bool ok = f->name && f->help;
    for (const char *p = labels; ok && p && *p;) {
        size_t n = strcspn(p, ",");
        if (f->n_labels == METRICS_MAX_LABELS || !(f->labels[f->n_labels] = strndup(p, n))) {
            ok = false;
            break;
        }
        f->n_labels++;
        p += n + (p[n] == ',');
    }
    if (!ok) {
        family_free(f);
        return NULL;
    }
    if (n_buckets)
        memcpy(f->bounds, buckets, n_buckets * sizeof *buckets);
    f->n_buckets = n_buckets;
    pthread_mutex_lock(&lock);
    *families_tail = f;
    families_tail = &f->next;
    pthread_mutex_unlock(&lock);
    return f;
}

int metrics_gauge_fn(const char *name, const char *help, double (*fn)(void))
{
    metric_family *f = metrics_family(name, METRIC_GAUGE, help, NULL, NULL, 0);
    if (!f)
        return -1;
    pthread_mutex_lock(&lock);
    f->fn = fn;
    pthread_mutex_unlock(&lock);
    return 0;
}

/* The series of these label values; created if create. Lock held. */
static series *find(metric_family *f, const char *const *values, bool create)
{
    series **tail = &f->series;
    for (series *s = f->series; s; tail = &s->next, s = s->next) {
        int i = 0;
        while (i < f->n_labels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == f->n_labels)
            return s;
    }
    if (!create)
        return NULL;
    series *s = calloc(1, sizeof *s);
    for (int i = 0; s && i < f->n_labels; i++)
        if (!(s->values[i] = strdup(values[i]))) {
            for (int k = 0; k < i; k++)
                free(s->values[k]);
            free(s);
            s = NULL;
        }
    if (!s) {
        dropped++;
        return NULL;
    }
    *tail = s;
    return s;
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static void update(metric_family *f, const char *const *label_values, enum op op, double v)
{
    if (!f)
        return;
    pthread_mutex_lock(&lock);
    series *s = find(f, label_values, true);
    if (s && op == OP_SET)
        s->value = v;
    else if (s)
        s->value += v;
    if (s && op == OP_OBSERVE) {
        s->count++;
        for (int i = 0; i < f->n_buckets; i++)
            if (v <= f->bounds[i])
                s->buckets[i]++;
    }
    pthread_mutex_unlock(&lock);
}

void metrics_add(metric_family *f, const char *const *label_values, double v)
{
    update(f, label_values, OP_ADD, v);
}

void metrics_set(metric_family *f, const char *const *label_values, double v)
{
    update(f, label_values, OP_SET, v);
}

void metrics_observe(metric_family *f, const char *const *label_values, double v)
{
    update(f, label_values, OP_OBSERVE, v);
}

double metrics_value(metric_family *f, const char *const *label_values)
{
    if (!f)
        return 0;
    pthread_mutex_lock(&lock);
    series *s = find(f, label_values, false);
    double v = !s ? 0 : f->type == METRIC_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&lock);
    return v;
}

void metrics_clear(metric_family *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&lock);
    series *s = f->series;
    f->series = NULL;
    pthread_mutex_unlock(&lock);
    while (s) {
        series *next = s->next;
        for (int i = 0; i < f->n_labels; i++)
            free(s->values[i]);
        free(s);
        s = next;
    }
}

void metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    metric_family *f = families;
    families = NULL;
    families_tail = &families;
    dropped = 0;
    pthread_mutex_unlock(&lock);
    while (f) {
        metric_family *next = f->next;
        family_free(f);
        f = next;
    }
}

/* A growing output buffer; a failed allocation sets failed. */
typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    for (int tries = 0; !o->failed && tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if (o->p && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap : 4096;
        while (cap <= o->len + (size_t)n)
            cap *= 2;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = true;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

/* A label value with \, " and newline escaped, as the format requires. */
static void put_escaped(out *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            put(o, "\\%c", *v);
        else if (*v == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *v);
    }
}

static void put_value(out *o, double v)
{
    if (isinf(v))
        put(o, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        put(o, "NaN");
    else
        put(o, "%.17g", v);
}

/* name{labels[,le="bound"]} */
static void put_series_name(out *o, const metric_family *f, const series *s, const char *suffix,
                            const char *le)
{
    put(o, "%s%s", f->name, suffix);
    if (!f->n_labels && !le)
        return;
    put(o, "{");
    for (int i = 0; i < f->n_labels; i++) {
        put(o, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_escaped(o, s->values[i]);
        put(o, "\"");
    }
    if (le)
        put(o, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    put(o, "}");
}

char *metrics_render(size_t *len)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    out o = {0};
    pthread_mutex_lock(&lock);
    for (metric_family *f = families; f; f = f->next) {
        put(&o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
        if (f->fn) {
            put(&o, "%s ", f->name);
            put_value(&o, f->fn());
            put(&o, "\n");
            continue;
        }
        for (series *s = f->series; s; s = s->next) {
            if (f->type != METRIC_HISTOGRAM) {
                put_series_name(&o, f, s, "", NULL);
                put(&o, " ");
                put_value(&o, s->value);
                put(&o, "\n");
                continue;
            }
            for (int i = 0; i < f->n_buckets; i++) {
                char le[32];
                snprintf(le, sizeof le, "%g", f->bounds[i]);
                put_series_name(&o, f, s, "_bucket", le);
                put(&o, " %llu\n", s->buckets[i]);
            }
            put_series_name(&o, f, s, "_bucket", "+Inf");
            put(&o, " %llu\n", s->count);
            put_series_name(&o, f, s, "_sum", NULL);
            put(&o, " ");
            put_value(&o, s->value);
            put(&o, "\n");
            put_series_name(&o, f, s, "_count", NULL);
            put(&o, " %llu\n", s->count);
        }
    }
    put(&o,
        "# HELP activity_metrics_dropped_total Series that could not be created (out of "
        "memory).\n# TYPE activity_metrics_dropped_total counter\n"
        "activity_metrics_dropped_total %llu\n",
        dropped);
    pthread_mutex_unlock(&lock);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
