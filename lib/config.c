/*
 * config.c — shared settings and their sources (see config.h).
 */
#include "lib/config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int broker_timeout_ms = 10000;

void config_defaults(common_config *c)
{
    memset(c, 0, sizeof *c);
    c->brokers = "127.0.0.1:19092";
    c->redis_url = "redis://127.0.0.1:16379/0";
    c->pg_dsn = "postgresql://postgres@127.0.0.1:15432/activity";
    c->redis_prefix = "act";
    c->events_topic = "activity.web_events";
    c->devices_topic = "activity.devices";
    c->profiles_topic = "activity.user_profiles";
    c->dlq_topic = "activity.dlq";
}

int config_start(common_config *c, const char *cmd, const struct option *opts, int *argc,
                 char ***argv)
{
    errbuf err = {{0}};
    if (config_sources(c, cmd, opts, argc, argv, &err) == 0)
        return 0;
    log_error("%s", err.msg);
    return -1;
}

int config_next_option(int argc, char **argv, const struct option *opts, const char *help)
{
    int opt = getopt_long(argc, argv, "hX:", opts, NULL);
    if (opt != 'h')
        return opt;
    fputs(help, stdout);
    return CONFIG_HELP;
}

int config_parse(common_config *c, const char *cmd, const struct option *opts, int *argc,
                 char ***argv, const char *help, int (*own)(void *ctx, int opt, const char *arg),
                 void *ctx)
{
    if (config_start(c, cmd, opts, argc, argv))
        return -1;
    int opt;
    while ((opt = config_next_option(*argc, *argv, opts, help)) != -1) {
        if (opt == CONFIG_HELP)
            return 1;
        int took = own ? own(ctx, opt, optarg) : 0;
        if (took < 0 || (took == 0 && config_common_option_or_complain(c, cmd, opt, optarg, help)))
            return -1;
    }
    return 0;
}

void config_free(common_config *c)
{
    for (int i = 0; i < c->n_kafka; i++)
        free(c->kafka_storage[i]);
    c->n_kafka = 0;
    for (int i = 0; i < c->n_args; i++)
        free(c->args[i]);
    free(c->args);
    c->args = NULL;
    c->n_args = 0;
}

/* Appends a formatted argument to c->args (kept NULL-terminated). */
static int push_arg(common_config *c, errbuf *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int push_arg(common_config *c, errbuf *err, const char *fmt, ...)
{
    char **na = realloc(c->args, (size_t)(c->n_args + 2) * sizeof *na);
    if (!na) {
        err_set(err, "out of memory");
        return -1;
    }
    c->args = na;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&na[c->n_args], fmt, ap);
    va_end(ap);
    if (n < 0) {
        na[c->n_args] = NULL;
        err_set(err, "out of memory");
        return -1;
    }
    na[++c->n_args] = NULL;
    return 0;
}

static const struct option *find_option(const struct option *opts, const char *name)
{
    for (; opts->name; opts++)
        if (strcmp(opts->name, name) == 0)
            return opts;
    return NULL;
}

/* One option's value from the environment or the file, as an argument:
 * "--name=value", or "--name" for a flag given a true value. */
static int push_option(common_config *c, const struct option *o, const char *value,
                       const char *where, errbuf *err)
{
    if (o->has_arg != no_argument)
        return push_arg(c, err, "--%s=%s", o->name, value);
    if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
        !strcasecmp(value, "on"))
        return push_arg(c, err, "--%s", o->name);
    if (!*value || !strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no") ||
        !strcasecmp(value, "off"))
        return 0;
    err_set(err, "%s: --%s is a flag: give it true or false, not '%s'", where, o->name, value);
    return -1;
}

/* Not settable from the environment or a file. */
static bool source_only_flag(const char *name)
{
    return !strcmp(name, "help") || !strcmp(name, "config");
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Whether librdkafka knows the property (whatever the value). */
static bool kafka_knows(const char *key)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    bool known = rd_kafka_conf_set(conf, key, "", errstr, sizeof errstr) != RD_KAFKA_CONF_UNKNOWN;
    rd_kafka_conf_destroy(conf);
    return known;
}

/* The config file: "key=value" lines; blank lines and lines starting with
 * # or ! are comments. A key is an option of this command (without the
 * dashes), else a librdkafka property (-X); any other key is ignored with
 * a warning, since one file may serve several commands. */
static int push_file(common_config *c, const char *cmd, const struct option *opts, const char *path,
                     errbuf *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        err_set(err, "--config %s: cannot read it", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *t = trim(line);
        if (!*t || *t == '#' || *t == '!')
            continue;
        char *eq = strchr(t, '=');
        if (!eq) {
            err_set(err, "%s:%d: expected key=value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(t), *value = trim(eq + 1);
        char where[300];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        const struct option *o = find_option(opts, key);
        if (o && !source_only_flag(key))
            rc = push_option(c, o, value, where, err);
        else if (*key && kafka_knows(key))
            rc = push_arg(c, err, "-X%s=%s", key, value);
        else
            log_warn("%s: '%s' is neither an option of activity %s nor a librdkafka property; "
                     "ignored",
                     where, key, cmd);
    }
    free(line);
    fclose(f);
    return rc;
}

/* ACTIVITY_ followed by the option's name in capitals, dashes as
 * underscores. */
static void env_name(const char *option, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "ACTIVITY_");
    for (; *option && n + 1 < cap; option++)
        out[n++] = *option == '-' ? '_' : (char)toupper((unsigned char)*option);
    out[n] = '\0';
}

static int push_environment(common_config *c, const struct option *opts, errbuf *err)
{
    /* Alternative environment names, still honoured for deployments that set
     * them; pushed before the current ones, which therefore win. */
    static const char *const aliases[][2] = {{"brokers", "ACTIVITY_KAFKA_BROKERS"},
                                             {"schema-registry", "ACTIVITY_SCHEMA_REGISTRY_URL"}};
    for (const struct option *o = opts; o->name; o++) {
        if (source_only_flag(o->name))
            continue;
        for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++) {
            const char *v = strcmp(aliases[i][0], o->name) ? NULL : getenv(aliases[i][1]);
            if (v && *v && push_option(c, o, v, aliases[i][1], err))
                return -1;
        }
        char name[128];
        env_name(o->name, name, sizeof name);
        const char *v = getenv(name);
        if (v && (*v || o->has_arg == no_argument) && push_option(c, o, v, name, err))
            return -1;
    }
    /* ACTIVITY_KAFKA_SASL_PASSWORD=… is -X sasl.password=…, for commands
     * that take -X. */
    if (!find_option(opts, "brokers"))
        return 0;
    for (char **e = environ; *e; e++) {
        static const char prefix[] = "ACTIVITY_KAFKA_";
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, prefix, sizeof prefix - 1) || !eq ||
            !strncmp(*e, "ACTIVITY_KAFKA_BROKERS=", 23) || eq == *e + sizeof prefix - 1)
            continue;
        char key[128];
        size_t n = 0;
        for (const char *p = *e + sizeof prefix - 1; p < eq && n + 1 < sizeof key; p++)
            key[n++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        key[n] = '\0';
        if (push_arg(c, err, "-X%s=%s", key, eq + 1))
            return -1;
    }
    return 0;
}

int config_sources(common_config *c, const char *cmd, const struct option *opts, int *argc,
                   char ***argv, errbuf *err)
{
    const char *file = getenv("ACTIVITY_CONFIG");
    if (file && !*file)
        file = NULL;
    for (int i = 1; i < *argc && strcmp((*argv)[i], "--"); i++) {
        if (!strcmp((*argv)[i], "--config") && i + 1 < *argc)
            file = (*argv)[++i];
        else if (!strncmp((*argv)[i], "--config=", 9))
            file = (*argv)[i] + 9;
    }
    if (push_arg(c, err, "%s", (*argv)[0]) || (file && push_file(c, cmd, opts, file, err)) ||
        push_environment(c, opts, err))
        return -1;
    for (int i = 1; i < *argc; i++)
        if (push_arg(c, err, "%s", (*argv)[i]))
            return -1;
    *argc = c->n_args;
    *argv = c->args;
    return 0;
}

int config_common_option(common_config *c, int opt, const char *arg, errbuf *err)
{
    switch (opt) {
    case OPT_BROKERS:
        c->brokers = arg;
        return 1;
    case OPT_REDIS:
        config_note_secret_in(arg);
        c->redis_url = arg;
        return 1;
    case OPT_PG:
        config_note_secret_in(arg);
        c->pg_dsn = arg;
        return 1;
    case OPT_REDIS_PREFIX:
        /* Key names are built in fixed buffers with room for 64 bytes of
         * prefix: a longer one is refused, never cut short into another's. */
        /* Braces would move keys to another hash slot; glob characters
         * would make the prefix's SCAN patterns (state reset, device
         * re-resolution) match other prefixes' keys. */
        if (!*arg || strpbrk(arg, "{}*?[]\\") || strlen(arg) > 64) {
            err_set(err, "--redis-prefix must be 1..64 bytes, without braces or glob characters "
                         "(*?[]\\)");
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
    case OPT_CONFIG: /* read by config_sources */
        return 1;
    case OPT_BROKER_TIMEOUT: {
        double s;
        if (!option_double(arg, OPTION_ABOVE_ZERO, 3600, &s)) {
            err_set(err, "--broker-timeout takes seconds, 0 < s <= 3600, got '%s'", arg);
            return -1;
        }
        broker_timeout_ms = (int)(s * 1000);
        return 1;
    }
    case OPT_LOG_FORMAT:
        if (log_set_format(arg)) {
            err_set(err, "--log-format takes text or json, got '%s'", arg);
            return -1;
        }
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
        size_t klen = (size_t)(eq - arg);
        if ((klen >= 8 && !strcasecmp(copy + klen - 8, "password")) ||
            (klen >= 6 && !strcasecmp(copy + klen - 6, "secret")))
            log_add_secret(eq + 1);
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

int config_broker_timeout_ms(void)
{
    return broker_timeout_ms;
}

void config_broker_error(rd_kafka_t *rk, rd_kafka_resp_err_t e, const char *what, errbuf *err)
{
    char brokers[512] = "?";
    size_t size = sizeof brokers;
    rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", brokers, &size);
    char reason[512];
    config_kafka_last_error(reason, sizeof reason);
    bool unreachable = e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                       e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN;
    if (unreachable)
        err_set(err, "cannot reach the Kafka brokers %s within %.1f s (--broker-timeout) to %s: %s",
                brokers, broker_timeout_ms / 1000.0, what,
                reason[0] ? reason : rd_kafka_err2str(e));
    else
        err_set(err, "Kafka brokers %s, %s: %s", brokers, what, rd_kafka_err2str(e));
}

static pthread_mutex_t kafka_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char kafka_error[512];

/* librdkafka's log lines (syslog levels) through our logger; they would
 * otherwise go to stderr raw, unredacted, in another format. */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* The reason to give when brokers cannot be reached: the last error,
     * unless it only counts the brokers down (a connection's failure says
     * why), without librdkafka's thread tag. */
    if (level <= 3 && !strstr(buf, "brokers are down")) {
        const char *why = buf;
        if (strncmp(why, "[thrd:", 6) == 0 && strstr(why, "]: "))
            why = strstr(why, "]: ") + 3;
        pthread_mutex_lock(&kafka_error_lock);
        snprintf(kafka_error, sizeof kafka_error, "%s", why);
        pthread_mutex_unlock(&kafka_error_lock);
    }
    enum log_level l = level <= 3   ? LOG_ERROR
                       : level == 4 ? LOG_WARN
                       : level <= 6 ? LOG_INFO
                                    : LOG_DEBUG;
    log_msg(l, "kafka %s: %s", fac, buf);
}

void config_kafka_last_error(char *buf, size_t cap)
{
    pthread_mutex_lock(&kafka_error_lock);
    snprintf(buf, cap, "%s", kafka_error);
    pthread_mutex_unlock(&kafka_error_lock);
}

void config_note_secret_in(const char *s)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", s);
    char *scheme = strstr(copy, "://");
    if (scheme) {
        char *auth = scheme + 3;
        auth[strcspn(auth, "/?#")] = '\0';
        char *at = strrchr(auth, '@');
        char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            *at = '\0';
            log_add_secret(colon + 1);
        }
        return;
    }
    /* conninfo: password=VALUE or password='VALUE' */
    for (char *p = strstr(copy, "password"); p; p = strstr(p + 1, "password")) {
        char *v = p + 8;
        while (*v == ' ')
            v++;
        if (*v++ != '=')
            continue;
        while (*v == ' ')
            v++;
        if (*v == '\'') {
            v++;
            v[strcspn(v, "'")] = '\0';
        } else {
            v[strcspn(v, " \t")] = '\0';
        }
        log_add_secret(v);
        return;
    }
}

const char *config_kafka_value(const common_config *c, const char *key)
{
    /* The last -X wins, as it does when they are applied in order. */
    for (int i = c->n_kafka - 1; i >= 0; i--)
        if (strcmp(c->kafka_keys[i], key) == 0)
            return c->kafka_values[i];
    return NULL;
}

/* Sets bootstrap.servers and every -X property on conf. */
static int config_apply_kafka(const common_config *c, rd_kafka_conf_t *conf, errbuf *err)
{
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    if (kafka_conf_set(conf, "bootstrap.servers", c->brokers, err))
        return -1;
    for (int i = 0; i < c->n_kafka; i++)
        if (kafka_conf_set(conf, c->kafka_keys[i], c->kafka_values[i], err))
            return -1;
    return 0;
}

rd_kafka_conf_t *kafka_client_conf(const common_config *c, const kafka_prop *defaults, size_t n,
                                   errbuf *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < n; i++)
        if (defaults[i].value && kafka_conf_set(conf, defaults[i].key, defaults[i].value, err)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (config_apply_kafka(c, conf, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_t *kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                             errbuf *err)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        err_set(err, "%s: %s", what, errstr);
    }
    return rk;
}

int config_common_option_or_complain(common_config *c, const char *cmd, int opt, const char *arg,
                                     const char *help)
{
    errbuf err = {{0}};
    int r = config_common_option(c, opt, arg, &err);
    if (r > 0)
        return 0;
    (void)cmd; /* the logger names the command */
    log_error("%s", r < 0 ? err.msg : "bad option");
    if (help)
        fputs(help, stderr);
    return -1;
}

int config_no_more_args(const char *cmd, int argc, char **argv, int optind)
{
    if (optind >= argc)
        return 0;
    (void)cmd;
    log_error("unexpected argument '%s'", argv[optind]);
    return -1;
}

bool option_long(const char *arg, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (end == arg || *end || errno == ERANGE || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool option_double(const char *arg, double min, double max, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    /* NaN fails both comparisons; an overflow is ±HUGE_VAL, checked like any value. */
    if (end == arg || *end || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}
