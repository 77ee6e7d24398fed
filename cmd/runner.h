/*
 * runner.h — the loop of `activity run`, apart from its option parsing and
 * wiring (cmd_run.c).
 *
 * The loop: poll a batch of messages, fold them per partition, apply the
 * batches to Redis (fenced), store the applied positions for the lag
 * commit; every --flush-interval seconds flush dirty state to PostgreSQL,
 * retrying with capped backoff while PostgreSQL or Redis is away (fetching
 * paused meanwhile). SIGINT/SIGTERM finish the current batch, flush, commit
 * and return 0. --until-caught-up does the same once everything that was in
 * the topics at start has been applied.
 */
#ifndef ACTIVITY_RUNNER_H
#define ACTIVITY_RUNNER_H

#include "consumers/kafka_source.h"
#include "processors/pipeline.h"
#include "cmd/flush.h"
#include "lib/config.h"

/* Everything `activity run` was told (cmd_run.c parses it). */
typedef struct {
    common_config common;
    source_options source;
    double flush_interval;
    bool until_caught_up;
    bool reset;
    size_t batch_size;
    size_t batch_bytes;    /* folded state of one batch (batch_bytes), from --max-memory */
    size_t batch_capacity; /* memory a full batch may hold (batch_capacity) */
    long exact_limit;
    int64_t lateness_ms; /* --allowed-lateness */
    bool evict;          /* --evict-closed-months (off: --keep-closed-months) */
    registry_options registry;
    validation_rules rules;
    const char *writer_schemas[16];
    int n_writer_schemas;
    scd2_config scd2;
    double pg_lock_timeout, pg_statement_timeout; /* seconds */
    const char *metrics_addr;                     /* NULL: no metrics endpoint */
    double ready_flush_failure;
    double progress_interval; /* > 0: a progress line this often (backfill --from/--to) */
} run_config;

/* Where "caught up" is: the end offset of every partition at start. */
typedef struct {
    char *topic;
    int32_t partition;
    int64_t low, high;
} catch_up_target;

typedef struct {
    catch_up_target *t;
    size_t n;
} catch_up;

int runner_catch_up_init(catch_up *cu, rd_kafka_t *rk, const char *const *topics, int ntopics,
                         errbuf *err);
void runner_catch_up_free(catch_up *cu);

/* The SIGINT/SIGTERM handler: the loop stops after the current batch. */
void runner_on_signal(int sig);

/* The consumer's rebalance callbacks, answered by the pipeline. */
source_callbacks runner_source_callbacks(pipeline *pipe);

/* What a command built on `activity run` (backfill --from/--to) changes
 * in it: configure runs after the options are parsed (it may change them),
 * prepare after the connections are up and the catch-up targets known,
 * before the consumer subscribes (rk: the consumer's handle, used for
 * look-ups only). Each returns 0, or -1 with err set to stop. */
typedef struct {
    int (*configure)(void *ctx, run_config *rc, errbuf *err);
    int (*prepare)(void *ctx, const run_config *rc, rd_kafka_t *rk, redis_state *rs, pipeline *pipe,
                   catch_up *cu, errbuf *err);
    void *ctx;
} run_hooks;

/* Keeps `activity run`'s command line (argv[0] "run"): an automatic
 * rebuild of evicted months PostgreSQL lost runs `activity backfill` with
 * the same options. */
void runner_set_command_line(int argc, char **argv);

/* `activity run` with hooks (NULL: none); the exit status. */
int cmd_run_hooked(int argc, char **argv, const run_hooks *hooks);

/* Runs until a signal, --until-caught-up's end or a failure that waiting
 * does not fix; the exit status. */
int runner_run(run_config *rc, pipeline *pipe, kafka_source *src, redis_state *rs,
               redis_state *apply_rs, pg_sink *pg, const catch_up *cu);

#endif
