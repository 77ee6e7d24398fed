/*
 * log.h — one-line, timestamped log messages on stderr, with credentials
 * redacted.
 *
 * Every subcommand logs through here so operators see one format: an ISO-8601
 * UTC timestamp, a level, the command ("run: ") and the message; or, with
 * --log-format json, one JSON object per line with the same fields. Errors
 * carry their context in the message; only main() decides whether an error
 * ends the process. librdkafka's own log lines come here too (see
 * config.c). Every line is redacted before it is written: the password of
 * any URL (scheme://user:PASSWORD@), the value of any key=value whose key
 * ends in "password" or "secret", and every secret registered with
 * log_add_secret (passwords the configuration holds), wherever they appear.
 */
#ifndef ACTIVITY_LOG_H
#define ACTIVITY_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* "text" or "json"; -1 for anything else. */
int log_set_format(const char *name);
/* The command every line names (main sets it). */
void log_set_command(const char *cmd);
/* A string never to be written (a password); copied. Empty strings and
 * strings shorter than 3 bytes are ignored (they would blank out ordinary
 * text). */
void log_add_secret(const char *secret);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Redacts s, a string in a buffer of cap bytes, in place (see above). */
void log_redact(char *s, size_t cap);

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
