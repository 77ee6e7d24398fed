/*
 * test_config.c — where an option's value comes from (lib/config.h):
 * flag > environment (ACTIVITY_<OPTION>) > config file > default, for a
 * value option, a flag and librdkafka properties.
 */
#include "lib/config.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_UNTIL = OPT_COMMON_LAST };

typedef struct {
    common_config c;
    bool until;
    int status; /* config_sources' */
    errbuf err;
} parsed;

static const struct option opts[] = {
    COMMON_LONG_OPTIONS, {"until-caught-up", no_argument, 0, OPT_UNTIL}, {0, 0, 0, 0}};

/* Parses argv (NULL-terminated, after the command name) as a command
 * would. */
static void parse(parsed *p, const char *const *args)
{
    char *argv[16] = {"test"};
    int argc = 1;
    while (*args)
        argv[argc++] = (char *)*args++;
    char **av = argv;
    memset(p, 0, sizeof *p);
    config_defaults(&p->c);
    p->status = config_sources(&p->c, "test", opts, &argc, &av, &p->err);
    if (p->status)
        return;
    optind = 0;
    int opt;
    while ((opt = getopt_long(argc, av, "hX:", opts, NULL)) != -1) {
        if (opt == OPT_UNTIL)
            p->until = true;
        else
            ck_assert_int_eq(config_common_option(&p->c, opt, optarg, &p->err), 1);
    }
}

/* The librdkafka value that wins for key: the last one set. */
static const char *kafka_value(const common_config *c, const char *key)
{
    const char *v = NULL;
    for (int i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka_keys[i], key) == 0)
            v = c->kafka_values[i];
    return v;
}

static char config_path[64];

static void write_config(const char *text)
{
    strcpy(config_path, "/tmp/activity-config-XXXXXX");
    int fd = mkstemp(config_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void setup(void)
{
    unsetenv("ACTIVITY_CONFIG");
    unsetenv("ACTIVITY_REDIS_PREFIX");
    unsetenv("ACTIVITY_UNTIL_CAUGHT_UP");
    unsetenv("ACTIVITY_KAFKA_BROKERS");
    unsetenv("ACTIVITY_BROKERS");
    unsetenv("ACTIVITY_KAFKA_SASL_PASSWORD");
    config_path[0] = '\0';
}

static void teardown(void)
{
    if (config_path[0])
        unlink(config_path);
}

START_TEST(precedence)
{
    write_config("# a comment\n"
                 "redis-prefix = fromfile\n"
                 "until-caught-up=true\n"
                 "sasl.password=file-secret\n"
                 "brokers=file:9092\n");
    parsed p;
    const char *with_file[] = {"--config", config_path, NULL};
    const char *none[] = {NULL};

    /* default */
    parse(&p, none);
    ck_assert_int_eq(p.status, 0);
    ck_assert_str_eq(p.c.redis_prefix, "act");
    ck_assert(!p.until);
    ck_assert_ptr_null(kafka_value(&p.c, "sasl.password"));
    config_free(&p.c);

    /* file > default */
    parse(&p, with_file);
    ck_assert_int_eq(p.status, 0);
    ck_assert_str_eq(p.c.redis_prefix, "fromfile");
    ck_assert(p.until);
    ck_assert_str_eq(kafka_value(&p.c, "sasl.password"), "file-secret");
    ck_assert_str_eq(p.c.brokers, "file:9092");
    config_free(&p.c);

    /* environment > file, also through $ACTIVITY_CONFIG */
    setenv("ACTIVITY_CONFIG", config_path, 1);
    setenv("ACTIVITY_REDIS_PREFIX", "fromenv", 1);
    setenv("ACTIVITY_UNTIL_CAUGHT_UP", "false", 1);
    setenv("ACTIVITY_KAFKA_SASL_PASSWORD", "env-secret", 1);
    setenv("ACTIVITY_KAFKA_BROKERS", "old-env:9092", 1);
    parse(&p, none);
    ck_assert_int_eq(p.status, 0);
    ck_assert_str_eq(p.c.redis_prefix, "fromenv");
    ck_assert(p.until); /* false in the environment only adds nothing */
    ck_assert_str_eq(kafka_value(&p.c, "sasl.password"), "env-secret");
    ck_assert_str_eq(p.c.brokers, "old-env:9092");
    config_free(&p.c);
    setenv("ACTIVITY_BROKERS", "env:9092", 1); /* the new name beats the old one */
    parse(&p, none);
    ck_assert_str_eq(p.c.brokers, "env:9092");
    config_free(&p.c);

    /* flag > environment > file */
    const char *flags[] = {"--redis-prefix", "fromflag", "-Xsasl.password=flag-secret",
                           "--brokers=flag:9092", NULL};
    parse(&p, flags);
    ck_assert_int_eq(p.status, 0);
    ck_assert_str_eq(p.c.redis_prefix, "fromflag");
    ck_assert_str_eq(kafka_value(&p.c, "sasl.password"), "flag-secret");
    ck_assert_str_eq(p.c.brokers, "flag:9092");
    config_free(&p.c);
}
END_TEST

START_TEST(bad_sources)
{
    parsed p;
    write_config("redis-prefix\n");
    const char *with_file[] = {"--config", config_path, NULL};
    parse(&p, with_file);
    ck_assert_int_eq(p.status, -1);
    ck_assert_ptr_nonnull(strstr(p.err.msg, ":1: expected key=value"));
    config_free(&p.c);

    const char *missing[] = {"--config=/nonexistent/activity.conf", NULL};
    parse(&p, missing);
    ck_assert_int_eq(p.status, -1);
    ck_assert_ptr_nonnull(strstr(p.err.msg, "/nonexistent/activity.conf"));
    config_free(&p.c);

    const char *none[] = {NULL};
    setenv("ACTIVITY_UNTIL_CAUGHT_UP", "maybe", 1);
    parse(&p, none);
    ck_assert_int_eq(p.status, -1);
    ck_assert_ptr_nonnull(strstr(p.err.msg, "ACTIVITY_UNTIL_CAUGHT_UP"));
    config_free(&p.c);
}
END_TEST

START_TEST(redaction)
{
    char line[256];
    strcpy(line, "at redis://user:pw@h:1/0 and http://u:p%40ss@reg:8081/x, http://plain.host/a@b");
    log_redact(line, sizeof line);
    ck_assert_str_eq(line, "at redis://user:***@h:1/0 and http://u:***@reg:8081/x, "
                           "http://plain.host/a@b");
    /* A value runs to a blank, comma, semicolon, & or ): a password may hold a colon. */
    strcpy(line, "kafka property sasl.password=s3cr3t: bad; host=x password='a b' "
                 "sasl.oauthbearer.client.secret=zz");
    log_redact(line, sizeof line);
    ck_assert_str_eq(line, "kafka property sasl.password=*** bad; host=x password=*** "
                           "sasl.oauthbearer.client.secret=***");
    config_note_secret_in("host=h password=conninfo-pw dbname=d");
    config_note_secret_in("redis://:url-pw@h:1");
    strcpy(line, "echo conninfo-pw and url-pw");
    log_redact(line, sizeof line);
    ck_assert_str_eq(line, "echo *** and ***");
}
END_TEST

Suite *suite_config(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, precedence);
    tcase_add_test(tc, bad_sources);
    tcase_add_test(tc, redaction);
    suite_add_tcase(s, tc);
    return s;
}
