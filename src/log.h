/*
 * log.h — one-line, timestamped log messages on stderr.
 *
 * Every subcommand logs through here so operators see one format: an ISO-8601
 * UTC timestamp, a level and the message. Errors carry their context in the
 * message; only main() decides whether an error ends the process.
 */
#ifndef ACTIVITY_LOG_H
#define ACTIVITY_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* An error message buffer passed down call chains: the callee fills it, the
 * caller adds context or prints it. */
typedef struct {
    char msg[512];
} errbuf;

void err_set(errbuf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
