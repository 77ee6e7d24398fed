/*
 * cmd_migrate.c — `activity migrate`: creates the sink tables.
 */
#include "sinks/pg_sink.h"
#include "cmd/commands.h"
#include "lib/config.h"

#include <stdio.h>

static const char help[] = "usage: activity migrate [--pg-dsn DSN]\n"
                           "\n"
                           "Creates the sink tables in PostgreSQL if they are missing.\n"
                           "\n" COMMON_OPTIONS_HELP;

int cmd_migrate(int argc, char **argv)
{
    common_config cfg;
    config_defaults(&cfg);
    static const struct option opts[] = {COMMON_LONG_OPTIONS, {0, 0, 0, 0}};
    errbuf err = {{0}};
    int opt;
    if (config_sources(&cfg, "migrate", opts, &argc, &argv, &err)) {
        log_error("%s", err.msg);
        config_free(&cfg);
        return 2;
    }
    while ((opt = getopt_long(argc, argv, "hX:", opts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(help, stdout);
            config_free(&cfg);
            return 0;
        }
        if (config_common_option_or_complain(&cfg, "migrate", opt, optarg, help)) {
            config_free(&cfg);
            return 2;
        }
    }
    pg_sink *pg = pg_sink_connect(cfg.pg_dsn, &err);
    int rc = 0;
    if (!pg || pg_sink_migrate(pg, &err)) {
        log_error("migrate failed: %s", err.msg);
        rc = 1;
    } else {
        log_info("sink tables are in place");
    }
    pg_sink_free(pg);
    config_free(&cfg);
    return rc;
}
