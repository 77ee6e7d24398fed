/*
 * config.h — settings shared by the subcommands: connections, topics,
 * librdkafka pass-through properties.
 *
 * Every option of every subcommand can come from three places besides its
 * default: the command line, the environment (ACTIVITY_<OPTION>, e.g.
 * ACTIVITY_REDIS_PREFIX for --redis-prefix) and a config file (--config
 * FILE or $ACTIVITY_CONFIG: key=value lines as in librdkafka .properties
 * files, where keys that are not options are librdkafka properties).
 * Precedence: flag > environment > file > default. config_sources() gets
 * it by building the argument vector file options first, then environment,
 * then the command line: getopt's last value wins. Subcommands add their
 * own options and call config_common_option() for the shared ones.
 */
#ifndef ACTIVITY_CONFIG_H
#define ACTIVITY_CONFIG_H

#include "lib/log.h"

#include <float.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>

/* Built against the pinned librdkafka that scripts/librdkafka.sh builds, never Debian's
 * 2.0.2: group.protocol=consumer (KIP-848) needs 2.12, and main() checks the library
 * loaded at run time the same way. */
#define ACTIVITY_MIN_RDKAFKA 0x020c0000
#if RD_KAFKA_VERSION < ACTIVITY_MIN_RDKAFKA
#error "librdkafka headers older than 2.12: build with make (scripts/librdkafka.sh)"
#endif

#define MAX_KAFKA_PROPS 64

typedef struct {
    const char *brokers;
    const char *redis_url;
    const char *pg_dsn;
    const char *redis_prefix;
    const char *events_topic;
    const char *devices_topic;
    const char *profiles_topic;
    const char *dlq_topic;
    const char *kafka_keys[MAX_KAFKA_PROPS];
    const char *kafka_values[MAX_KAFKA_PROPS];
    char *kafka_storage[MAX_KAFKA_PROPS];
    int n_kafka;
    /* The argument vector config_sources built (strings owned). */
    char **args;
    int n_args;
} common_config;

/* Long options every subcommand accepts; values >= 1000 are ours. */
enum {
    OPT_BROKERS = 1000,
    OPT_REDIS,
    OPT_PG,
    OPT_REDIS_PREFIX,
    OPT_EVENTS_TOPIC,
    OPT_DEVICES_TOPIC,
    OPT_PROFILES_TOPIC,
    OPT_DLQ_TOPIC,
    OPT_VERBOSE,
    OPT_CONFIG,
    OPT_LOG_FORMAT,
    OPT_BROKER_TIMEOUT,
    OPT_COMMON_LAST,
};

#define COMMON_LONG_OPTIONS                                                                        \
    {"brokers", required_argument, 0, OPT_BROKERS},                                                \
        {"redis-url", required_argument, 0, OPT_REDIS}, {"pg-dsn", required_argument, 0, OPT_PG},  \
        {"redis-prefix", required_argument, 0, OPT_REDIS_PREFIX},                                  \
        {"events-topic", required_argument, 0, OPT_EVENTS_TOPIC},                                  \
        {"devices-topic", required_argument, 0, OPT_DEVICES_TOPIC},                                \
        {"profiles-topic", required_argument, 0, OPT_PROFILES_TOPIC},                              \
        {"dlq-topic", required_argument, 0, OPT_DLQ_TOPIC},                                        \
        {"verbose", no_argument, 0, OPT_VERBOSE}, {"config", required_argument, 0, OPT_CONFIG},    \
        {"log-format", required_argument, 0, OPT_LOG_FORMAT},                                      \
        {"broker-timeout", required_argument, 0, OPT_BROKER_TIMEOUT},                              \
    {                                                                                              \
        "help", no_argument, 0, 'h'                                                                \
    }

#define COMMON_OPTIONS_HELP                                                                        \
    "Every option also comes from $ACTIVITY_<OPTION> (--redis-prefix: ACTIVITY_REDIS_PREFIX)\n"    \
    "or a --config file; flag > environment > file > default (README: Configuration).\n"           \
    "  --config FILE         key=value lines: options without --, librdkafka properties\n"         \
    "                        [$ACTIVITY_CONFIG]\n"                                                 \
    "Connections (default: the local stack's):\n"                                                  \
    "  --brokers LIST        Kafka bootstrap servers   [$ACTIVITY_BROKERS, "                       \
    "$ACTIVITY_KAFKA_BROKERS]\n"                                                                   \
    "  --redis-url URL       redis://[:password@]host:port[/db]\n"                                 \
    "  --pg-dsn DSN          libpq conninfo or URI\n"                                              \
    "  --broker-timeout S    seconds to wait for the Kafka brokers before failing\n"               \
    "                        with their names and librdkafka's reason (default: 10)\n"             \
    "  -X key=value          any librdkafka property (repeatable), as kcat does\n"                 \
    "                        [$ACTIVITY_KAFKA_<KEY>, dots as underscores]\n"                       \
    "  --redis-prefix P      prefix of every Redis key (default: act)\n"                           \
    "Topics:\n"                                                                                    \
    "  --events-topic T      (default: activity.web_events)\n"                                     \
    "  --devices-topic T     (default: activity.devices)\n"                                        \
    "  --profiles-topic T    (default: activity.user_profiles)\n"                                  \
    "  --dlq-topic T         (default: activity.dlq)\n"                                            \
    "  --verbose             debug logging\n"                                                      \
    "  --log-format F        text (default) or json: one object per line\n"                        \
    "  -h, --help            this help\n"

void config_defaults(common_config *c);
/* Replaces (*argc, *argv) with argv[0], the options of the config file,
 * those of the environment, then the rest of argv (see above), for a
 * command whose getopt table is opts. The strings live in c until
 * config_free. -1 with err set on an unreadable file, a bad line or a bad
 * boolean. */
int config_sources(common_config *c, const char *cmd, const struct option *opts, int *argc,
                   char ***argv, errbuf *err);
void config_free(common_config *c);
/* The start of every subcommand's option parsing: config_sources, its
 * error logged. Returns 0, or -1. */
int config_start(common_config *c, const char *cmd, const struct option *opts, int *argc,
                 char ***argv);
/* The next option of that vector (getopt_long, -1 at the end); -h and
 * --help print help to stdout and return CONFIG_HELP. */
#define CONFIG_HELP (-2)
int config_next_option(int argc, char **argv, const struct option *opts, const char *help);
/* The whole option loop of a subcommand that has few options of its own:
 * own (may be NULL) is offered each option first and returns 1 when it
 * took it, 0 when it is not its, -1 on a bad value (after logging why);
 * the shared ones go to config_common_option_or_complain. Returns 0 to run
 * the command, 1 after printing the help (exit 0), -1 on a bad option. */
int config_parse(common_config *c, const char *cmd, const struct option *opts, int *argc,
                 char ***argv, const char *help, int (*own)(void *ctx, int opt, const char *arg),
                 void *ctx);
/* Handles a shared option (including -X); returns 1 if handled, 0 if not
 * ours, -1 on a bad value (err set). */
int config_common_option(common_config *c, int opt, const char *arg, errbuf *err);
/* The same for a subcommand's getopt loop: on an option that is not ours or
 * a bad value, prints "activity CMD: <why>" (and the help text, if given)
 * to stderr and returns -1; 0 when handled. */
int config_common_option_or_complain(common_config *c, const char *cmd, int opt, const char *arg,
                                     const char *help);
/* After getopt: prints "activity CMD: unexpected argument" and returns -1
 * if positional arguments are left. */
int config_no_more_args(const char *cmd, int argc, char **argv, int optind);
/* Every Kafka client of every command is made by these two: the first
 * builds its configuration, the caller adds its callbacks, the second
 * creates the client. Between them a caller may read the configuration
 * (the settings the user's -X made). */
typedef struct {
    const char *key;
    const char *value; /* NULL: not set */
} kafka_prop;
/* The command's defaults (n of them), then bootstrap.servers and the -X
 * properties, which therefore win. NULL with err set if librdkafka refuses
 * one. */
rd_kafka_conf_t *kafka_client_conf(const common_config *c, const kafka_prop *defaults, size_t n,
                                   errbuf *err);
/* The client from conf, which it takes (also on failure); err starts
 * with `what` ("dead-letter producer: ..."). */
rd_kafka_t *kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                             errbuf *err);
/* The value given for librdkafka property KEY with -X (the last one), or NULL. */
const char *config_kafka_value(const common_config *c, const char *key);
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, errbuf *err);
/* The most recent error librdkafka logged (e.g. why a broker could not be
 * reached), "" if none: for messages that must say why. */
void config_kafka_last_error(char *buf, size_t cap);
/* --broker-timeout in milliseconds: how long a metadata or offset request
 * waits for the brokers (one process, one setting). */
int config_broker_timeout_ms(void);
/* The message for a request that failed for want of a broker: names the
 * brokers (bootstrap.servers of rk), the timeout and the last reason
 * librdkafka gave; `what` says what was asked. */
void config_broker_error(rd_kafka_t *rk, rd_kafka_resp_err_t e, const char *what, errbuf *err);
/* Registers the password of a URL (scheme://user:PASSWORD@…) or a libpq
 * conninfo (password=…) with the logger, which then never writes it. */
void config_note_secret_in(const char *url_or_dsn);

/* The numeric option values of every command: the whole of arg as a number
 * within [min, max], else false (*out untouched; the caller names the
 * option and its range). Empty text, trailing text and overflow are
 * refused. OPTION_ABOVE_ZERO as min means "> 0" for a double. */
#define OPTION_ABOVE_ZERO DBL_TRUE_MIN
bool option_long(const char *arg, long long min, long long max, long long *out);
bool option_double(const char *arg, double min, double max, double *out);

#endif
