/*
 * main.c — bin/activity: picks the subcommand. Only main-level code decides
 * to exit; subcommands return their status.
 */
#include "cmd/commands.h"
#include "lib/config.h"
#include "lib/version.h"
#include "lib/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: activity <command> [options]\n"
    "\n"
    "Turns Avro activity events on Kafka into analytics tables in PostgreSQL,\n"
    "keeping day bitmaps, hit counters and unique counts in Redis.\n"
    "\n"
    "commands:\n"
    "  run       consume the topics, keep state in Redis, flush to PostgreSQL\n"
    "  load      produce CSV / JSON-lines files to a topic as Avro records\n"
    "  backfill  process what the topics hold and exit; --reset rebuilds the tables\n"
    "  report    one month of hosts, active users and growth: text, csv, json, html\n"
    "  migrate   create the PostgreSQL sink tables\n"
    "  dlq       list dead letters, re-drive them to their source topic\n"
    "\n"
    "`activity <command> --help` describes a command's options;\n"
    "`activity --version` prints the version and the librdkafka in use.\n";

int main(int argc, char **argv)
{
    /* The rpath points at the pinned build; LD_LIBRARY_PATH or a stray copy could still
     * load an older librdkafka, which must not run with our settings. */
    if (rd_kafka_version() < ACTIVITY_MIN_RDKAFKA) {
        fprintf(stderr,
                "activity: librdkafka %s loaded, 2.12 or newer needed (check LD_LIBRARY_PATH)\n",
                rd_kafka_version_str());
        return 1;
    }
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        printf("activity %s (librdkafka %s)\n", ACTIVITY_VERSION, rd_kafka_version_str());
        return 0;
    }
    /* A write to a server that just went away must be an error to retry,
     * not a silent death: hiredis writes without MSG_NOSIGNAL. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    log_set_command(cmd);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "load") == 0)
        return cmd_load(argc - 1, argv + 1);
    if (strcmp(cmd, "backfill") == 0)
        return cmd_backfill(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "dlq") == 0)
        return cmd_dlq(argc - 1, argv + 1);
    fprintf(stderr, "activity: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
