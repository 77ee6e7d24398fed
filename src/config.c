/*
 * config.c — shared settings and their sources (see config.h).
 */
#include "src/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

void config_defaults(common_config *c)
{
    memset(c, 0, sizeof *c);
    c->brokers = env_or("ACTIVITY_KAFKA_BROKERS", "127.0.0.1:19092");
    c->redis_url = env_or("ACTIVITY_REDIS_URL", "redis://127.0.0.1:16379/0");
    c->pg_dsn = env_or("ACTIVITY_PG_DSN", "postgresql://postgres@127.0.0.1:15432/activity");
    c->redis_prefix = "act";
    c->events_topic = "activity.web_events";
    c->devices_topic = "activity.devices";
    c->profiles_topic = "activity.user_profiles";
    c->dlq_topic = "activity.dlq";
}

void config_free(common_config *c)
{
    for (int i = 0; i < c->n_kafka; i++)
        free(c->kafka_storage[i]);
    c->n_kafka = 0;
}

int config_common_option(common_config *c, int opt, const char *arg, errbuf *err)
{
    switch (opt) {
    case OPT_BROKERS:
        c->brokers = arg;
        return 1;
    case OPT_REDIS:
        c->redis_url = arg;
        return 1;
    case OPT_PG:
        c->pg_dsn = arg;
        return 1;
    case OPT_REDIS_PREFIX:
        if (!*arg || strpbrk(arg, "{}")) {
            err_set(err, "--redis-prefix must be non-empty and contain no braces");
            return -1;
        }
        c->redis_prefix = arg;
        return 1;
    case OPT_EVENTS_TOPIC:
        c->events_topic = arg;
        return 1;
    case OPT_DEVICES_TOPIC:
        c->devices_topic = arg;
        return 1;
    case OPT_PROFILES_TOPIC:
        c->profiles_topic = arg;
        return 1;
    case OPT_DLQ_TOPIC:
        c->dlq_topic = arg;
        return 1;
    case OPT_VERBOSE:
        log_set_level(LOG_DEBUG);
        return 1;
    case 'X': {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg) {
            err_set(err, "-X takes key=value, got '%s'", arg);
            return -1;
        }
        if (c->n_kafka == MAX_KAFKA_PROPS) {
            err_set(err, "too many -X properties (at most %d)", MAX_KAFKA_PROPS);
            return -1;
        }
        char *copy = strdup(arg);
        if (!copy) {
            err_set(err, "out of memory");
            return -1;
        }
        copy[eq - arg] = '\0';
        c->kafka_storage[c->n_kafka] = copy;
        c->kafka_keys[c->n_kafka] = copy;
        c->kafka_values[c->n_kafka] = copy + (eq - arg) + 1;
        c->n_kafka++;
        return 1;
    }
    default:
        return 0;
    }
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, errbuf *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        err_set(err, "kafka property %s=%s: %s", key, value, errstr);
        return -1;
    }
    return 0;
}

const char *config_kafka_value(const common_config *c, const char *key)
{
    /* The last -X wins, as it does when they are applied in order. */
    for (int i = c->n_kafka - 1; i >= 0; i--)
        if (strcmp(c->kafka_keys[i], key) == 0)
            return c->kafka_values[i];
    return NULL;
}

int config_apply_kafka(const common_config *c, rd_kafka_conf_t *conf, errbuf *err)
{
    if (kafka_conf_set(conf, "bootstrap.servers", c->brokers, err))
        return -1;
    for (int i = 0; i < c->n_kafka; i++)
        if (kafka_conf_set(conf, c->kafka_keys[i], c->kafka_values[i], err))
            return -1;
    return 0;
}

int config_common_option_or_complain(common_config *c, const char *cmd, int opt, const char *arg,
                                     const char *help)
{
    errbuf err = {{0}};
    int r = config_common_option(c, opt, arg, &err);
    if (r > 0)
        return 0;
    fprintf(stderr, "activity %s: %s\n%s", cmd, r < 0 ? err.msg : "bad option", help ? help : "");
    return -1;
}

int config_no_more_args(const char *cmd, int argc, char **argv, int optind)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, "activity %s: unexpected argument '%s'\n", cmd, argv[optind]);
    return -1;
}
