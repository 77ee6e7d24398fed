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
    int parsed = config_parse(&cfg, "migrate", opts, &argc, &argv, help, NULL, NULL);
    if (parsed) {
        config_free(&cfg);
        return parsed > 0 ? 0 : 2;
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
