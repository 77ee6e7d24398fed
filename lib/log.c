/*
 * log.c — timestamped stderr logging, its redaction and the error buffer
 * helper (see log.h).
 */
#include "lib/log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static bool json;
static const char *command = "activity";

/* librdkafka logs from its own threads: secrets are added at start, but a
 * lock keeps a line and a registration from racing. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t n_secrets;

void log_set_level(enum log_level level)
{
    min_level = level;
}

int log_set_format(const char *name)
{
    if (strcmp(name, "text") && strcmp(name, "json"))
        return -1;
    json = strcmp(name, "json") == 0;
    return 0;
}

void log_set_command(const char *cmd)
{
    command = cmd;
}

void log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 3)
        return;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i], secret) == 0) {
            pthread_mutex_unlock(&lock);
            return;
        }
    char **ns = realloc(secrets, (n_secrets + 1) * sizeof *ns);
    char *copy = strdup(secret);
    if (ns)
        secrets = ns;
    if (ns && copy)
        secrets[n_secrets++] = copy;
    else
        free(copy);
    pthread_mutex_unlock(&lock);
}

static const char mask[] = "***";

/* Replaces s[from, to) with the mask, whatever the secret's length (which
 * it hides too); text past cap - 1 is cut. */
static void mask_span(char *s, size_t cap, size_t from, size_t to)
{
    size_t tail = strlen(s + to);
    if (from + 3 + tail >= cap)
        tail = from + 3 < cap ? cap - 1 - from - 3 : 0;
    memmove(s + from + 3, s + to, tail);
    s[from + 3 + tail] = '\0';
    memcpy(s + from, mask, 3);
}

/* scheme://user:PASSWORD@host — the password, up to the last @ before the
 * host part ends. */
static void redact_urls(char *s, size_t cap)
{
    for (char *p = strstr(s, "://"); p; p = strstr(p + 1, "://")) {
        char *auth = p + 3;
        size_t n = strcspn(auth, "/?# \t\"'<>");
        char *at = NULL;
        for (size_t i = 0; i < n; i++)
            if (auth[i] == '@')
                at = auth + i;
        if (!at)
            continue;
        char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon && at > colon + 1 && strncmp(colon + 1, mask, 3) != 0)
            mask_span(s, cap, (size_t)(colon + 1 - s), (size_t)(at - s));
    }
}

/* key=VALUE where the key ends in "password" or "secret" (sasl.password,
 * ssl.key.password, libpq's password=, …). */
static void redact_pairs(char *s, size_t cap)
{
    for (char *eq = strchr(s, '='); eq; eq = strchr(eq + 1, '=')) {
        char *k = eq;
        while (k > s && (isalnum((unsigned char)k[-1]) || k[-1] == '.' || k[-1] == '_'))
            k--;
        size_t klen = (size_t)(eq - k);
        bool sensitive = (klen >= 8 && strncasecmp(eq - 8, "password", 8) == 0) ||
                         (klen >= 6 && strncasecmp(eq - 6, "secret", 6) == 0);
        if (!sensitive)
            continue;
        char *v = eq + 1;
        char quote = *v == '\'' || *v == '"' ? *v : 0;
        size_t n = quote ? strcspn(v + 1, quote == '\'' ? "'" : "\"") + 1 : strcspn(v, " \t,;&)");
        if (quote && v[n] == quote)
            n++;
        if (n && strncmp(v, mask, 3) != 0)
            mask_span(s, cap, (size_t)(v - s), (size_t)(v + n - s));
    }
}

void log_redact(char *s, size_t cap)
{
    redact_urls(s, cap);
    redact_pairs(s, cap);
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_secrets; i++) {
        size_t len = strlen(secrets[i]);
        for (char *p = strstr(s, secrets[i]); p; p = strstr(p + 3, secrets[i]))
            mask_span(s, cap, (size_t)(p - s), (size_t)(p - s) + len);
    }
    pthread_mutex_unlock(&lock);
}

/* s as the body of a JSON string. */
static void put_json_string(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else if (c < 0x80)
            fputc(c, f);
        else {
            /* Valid UTF-8 as is; any other byte (hostile input quoted in a
             * message) as U+FFFD, so every line stays valid JSON. */
            int n = c >= 0xf0 && c < 0xf5   ? 3
                    : c >= 0xf0             ? -1
                    : c >= 0xe0             ? 2
                    : c >= 0xc2 && c < 0xe0 ? 1
                                            : -1;
            int k = 0;
            while (n > 0 && k < n && ((unsigned char)s[k + 1] & 0xc0) == 0x80)
                k++;
            if (n > 0 && k == n) {
                fwrite(s, 1, (size_t)n + 1, f);
                s += n;
            } else {
                fputs("\\ufffd", f);
            }
        }
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Messages of libraries (libpq's) end in a newline of their own. */
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    log_redact(line, sizeof line);
    /* One write per line, so lines of several threads do not mix. */
    flockfile(stderr);
    if (json) {
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"cmd\":\"", stamp,
                ts.tv_nsec / 1000000, names[level]);
        put_json_string(stderr, command);
        fputs("\",\"msg\":\"", stderr);
        put_json_string(stderr, line);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", stamp, ts.tv_nsec / 1000000, names[level],
                command, line);
    }
    funlockfile(stderr);
}

void err_set(errbuf *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}
