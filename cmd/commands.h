/*
 * commands.h — the subcommands of bin/activity. Each parses its own
 * arguments (argv[0] is the subcommand name) and returns the exit status.
 */
#ifndef ACTIVITY_COMMANDS_H
#define ACTIVITY_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_backfill(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_dlq(int argc, char **argv);

#endif
