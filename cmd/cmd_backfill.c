/*
 * cmd_backfill.c — `activity backfill`: process what the topics hold and
 * stop; with --reset, rebuild every table from the topics.
 *
 * It is `activity run --until-caught-up` under the name users look for
 * when they replay retained topics. A plain backfill is safe to repeat:
 * fences make records already applied a no-op.
 */
#include "cmd/commands.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: activity backfill [--reset] [run options]\n"
    "\n"
    "Processes everything the topics hold now, flushes, commits and exits 0\n"
    "(activity run --until-caught-up). Repeating it changes nothing: records\n"
    "already applied are skipped by their fences.\n"
    "\n"
    "  --reset   first delete this --redis-prefix's Redis state and the sink\n"
    "            tables' rows, then rebuild everything from the topics (what\n"
    "            they still retain). Refused while members of --group are live,\n"
    "            or while other prefixes have flushed into the same database.\n"
    "\n"
    "Every option of `activity run` applies (see activity run --help).\n";

int cmd_backfill(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return 0;
        }
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) {
        log_error("out of memory");
        return 1;
    }
    args[0] = "run";
    args[1] = "--until-caught-up";
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    int rc = cmd_run(argc + 1, args);
    free(args);
    return rc;
}
