/*
 * cmd_run.c — `activity run`: the long-running processor.
 *
 * The loop: poll a batch of messages, fold them per partition, apply the
 * batches to Redis (fenced), store the applied positions for the lag
 * commit; every --flush-interval seconds flush dirty state to PostgreSQL.
 * SIGINT/SIGTERM finish the current batch, flush, commit and exit 0.
 * --until-caught-up does the same once everything that was in the topics
 * at start has been applied.
 */
#include "consumers/kafka_admin.h"
#include "consumers/kafka_source.h"
#include "processors/pipeline.h"
#include "sinks/flusher.h"
#include "cmd/commands.h"
#include "lib/config.h"
#include "cmd/deployment.h"
#include "lib/metrics_http.h"
#include "lib/run_metrics.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char help[] =
    "usage: activity run [options]\n"
    "\n"
    "Consumes the events, devices and user profiles topics as a member of a consumer\n"
    "group, keeps state in Redis and flushes it to the PostgreSQL sink tables.\n"
    "\n"
    "  --group NAME            consumer group (default: activity)\n"
    "  --instance-id ID        static group membership (group.instance.id)\n"
    "  --flush-interval SEC    seconds between flushes (default: 10)\n"
    "  --until-caught-up       process what the topics hold at start, flush, commit, exit 0\n"
    "  --batch-size N          most records folded into one batch (default: 500000)\n"
    "  --max-memory MB         memory budget: bounds the bytes of a batch and librdkafka's\n"
    "                          prefetch; the processor slows down instead of growing\n"
    "                          (default: 64, at least 16; see README: Performance)\n"
    "  --reset                 with --until-caught-up: delete this --redis-prefix's state\n"
    "                          and the sink tables' rows first, then rebuild everything\n"
    "                          from the topics (refused while members of --group are\n"
    "                          live or other prefixes share the database)\n"
    "  --exact-uniques-limit N count unique visitors of a host-day exactly up to N,\n"
    "                          then by HyperLogLog (default: 10000)\n"
    "  --pg-lock-timeout SEC   a flush waiting this long for a lock on a sink table\n"
    "                          fails and is retried with backoff; also how long a\n"
    "                          signalled shutdown retries its final flush (default: 5)\n"
    "  --pg-statement-timeout SEC  the same for any flush statement (default: 60)\n"
    "\n"
    "Operations (see README: Metrics and health):\n"
    "  --metrics-addr HOST:PORT serve GET /metrics (Prometheus), /healthz and /readyz\n"
    "                          there (default: off); also sets statistics.interval.ms=5000\n"
    "                          for the consumer lag unless -X gives it\n"
    "  --ready-flush-failure SEC /readyz turns unready once flushes have failed for this\n"
    "                          long (default: 60)\n"
    "\n"
    "SCD2 dimensions (see README: Dimensions (SCD2)):\n"
    "  --dim-devices-track LIST  dim_devices attributes that start a new version when\n"
    "                          they change (type 2); the others are overwritten in place\n"
    "                          (type 1). Default: all (browser_type,os_type,device_type)\n"
    "  --dim-users-track LIST  the same for dim_users (first_name,last_name,title,street,\n"
    "                          city,state,country,zip,contact_type,contact_value). Default: all\n"
    "\n"
    "Input (see README: Schema registry, Dead letters):\n"
    "  --schema-registry URL   resolve schema ids in a Confluent-compatible registry\n"
    "                          [$ACTIVITY_SCHEMA_REGISTRY_URL]; default: local ids 1, 2\n"
    "  --schema-registry-user-info USER:PASS  basic auth [$ACTIVITY_SCHEMA_REGISTRY_USER_INFO]\n"
    "  --schema-registry-timeout MS  per request (default: 5000; 4 retries)\n"
    "  --writer-schema ID=FILE one more local schema id (repeatable; without a registry):\n"
    "                          records framed with ID were written with FILE (.avsc)\n"
    "  --min-event-time T      older events are dead letters (default: 1970-01-01)\n"
    "  --max-event-time T      events at or after T are dead letters (default: 2100-01-01)\n"
    "                          (T: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS UTC, or epoch ms)\n"
    "  --max-field-bytes N     longer strings are dead letters (default: 4096, at most 1 MiB)\n"
    "  --max-key-bytes N       longer hosts and browser types are dead letters: they are\n"
    "                          part of a table's key, which PostgreSQL's btree index\n"
    "                          limits (default: 2048, at most 2600)\n"
    "\n" COMMON_OPTIONS_HELP;

enum {
    OPT_GROUP = OPT_COMMON_LAST,
    OPT_INSTANCE,
    OPT_FLUSH,
    OPT_UNTIL,
    OPT_BATCH,
    OPT_MAX_MEMORY,
    OPT_EXACT,
    OPT_REGISTRY,
    OPT_REGISTRY_AUTH,
    OPT_REGISTRY_TIMEOUT,
    OPT_MIN_TIME,
    OPT_MAX_TIME,
    OPT_MAX_FIELD,
    OPT_MAX_KEY,
    OPT_WRITER_SCHEMA,
    OPT_RESET,
    OPT_DIM_DEVICES,
    OPT_DIM_USERS,
    OPT_PG_LOCK_TIMEOUT,
    OPT_PG_STATEMENT_TIMEOUT,
    OPT_METRICS_ADDR,
    OPT_READY_FLUSH,
};

typedef struct {
    common_config common;
    source_options source;
    double flush_interval;
    bool until_caught_up;
    bool reset;
    size_t batch_size;
    size_t batch_bytes; /* record bytes folded into one batch, from --max-memory */
    long exact_limit;
    registry_options registry;
    validation_rules rules;
    const char *writer_schemas[16];
    int n_writer_schemas;
    scd2_config scd2;
    double pg_lock_timeout, pg_statement_timeout; /* seconds */
    const char *metrics_addr;                     /* NULL: no metrics endpoint */
    double ready_flush_failure;
} run_config;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = stop_requested + 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_args(int argc, char **argv, run_config *rc)
{
    static const struct option opts[] = {
        COMMON_LONG_OPTIONS,
        {"group", required_argument, 0, OPT_GROUP},
        {"instance-id", required_argument, 0, OPT_INSTANCE},
        {"flush-interval", required_argument, 0, OPT_FLUSH},
        {"until-caught-up", no_argument, 0, OPT_UNTIL},
        {"batch-size", required_argument, 0, OPT_BATCH},
        {"max-memory", required_argument, 0, OPT_MAX_MEMORY},
        {"exact-uniques-limit", required_argument, 0, OPT_EXACT},
        {"reset", no_argument, 0, OPT_RESET},
        {"schema-registry", required_argument, 0, OPT_REGISTRY},
        {"schema-registry-user-info", required_argument, 0, OPT_REGISTRY_AUTH},
        {"schema-registry-timeout", required_argument, 0, OPT_REGISTRY_TIMEOUT},
        {"min-event-time", required_argument, 0, OPT_MIN_TIME},
        {"max-event-time", required_argument, 0, OPT_MAX_TIME},
        {"max-field-bytes", required_argument, 0, OPT_MAX_FIELD},
        {"max-key-bytes", required_argument, 0, OPT_MAX_KEY},
        {"writer-schema", required_argument, 0, OPT_WRITER_SCHEMA},
        {"dim-devices-track", required_argument, 0, OPT_DIM_DEVICES},
        {"dim-users-track", required_argument, 0, OPT_DIM_USERS},
        {"pg-lock-timeout", required_argument, 0, OPT_PG_LOCK_TIMEOUT},
        {"pg-statement-timeout", required_argument, 0, OPT_PG_STATEMENT_TIMEOUT},
        {"metrics-addr", required_argument, 0, OPT_METRICS_ADDR},
        {"ready-flush-failure", required_argument, 0, OPT_READY_FLUSH},
        {0, 0, 0, 0}};
    config_defaults(&rc->common);
    rc->source.group = "activity";
    rc->flush_interval = 10;
    rc->batch_size = 500000;
    rc->pg_lock_timeout = 5;
    rc->pg_statement_timeout = 60;
    rc->ready_flush_failure = 60;
    long long max_memory_mb = 64, n;
    rc->exact_limit = REDIS_DEFAULT_EXACT_LIMIT;
    registry_options_defaults(&rc->registry);
    validation_defaults(&rc->rules);
    scd2_config_defaults(&rc->scd2);
    int opt;
    errbuf err = {{0}};
    if (config_sources(&rc->common, "run", opts, &argc, &argv, &err)) {
        log_error("%s", err.msg);
        return -1;
    }
    while ((opt = getopt_long(argc, argv, "hX:", opts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(help, stdout);
            return 1;
        case OPT_GROUP:
            rc->source.group = optarg;
            break;
        case OPT_INSTANCE:
            rc->source.instance_id = optarg;
            break;
        case OPT_FLUSH:
            if (!option_double(optarg, OPTION_ABOVE_ZERO, INFINITY, &rc->flush_interval)) {
                log_error("--flush-interval takes seconds > 0");
                return -1;
            }
            break;
        case OPT_RESET:
            rc->reset = true;
            break;
        case OPT_PG_LOCK_TIMEOUT:
        case OPT_PG_STATEMENT_TIMEOUT: {
            double v;
            if (!option_double(optarg, 0.001, 86400, &v)) {
                log_error("--%s takes seconds in 0.001..86400",
                          opt == OPT_PG_LOCK_TIMEOUT ? "pg-lock-timeout" : "pg-statement-timeout");
                return -1;
            }
            *(opt == OPT_PG_LOCK_TIMEOUT ? &rc->pg_lock_timeout : &rc->pg_statement_timeout) = v;
            break;
        }
        case OPT_METRICS_ADDR: {
            char host[256];
            int port;
            if (metrics_parse_addr(optarg, host, &port, &err)) {
                log_error("%s", err.msg);
                return -1;
            }
            rc->metrics_addr = optarg;
            break;
        }
        case OPT_READY_FLUSH:
            if (!option_double(optarg, OPTION_ABOVE_ZERO, INFINITY, &rc->ready_flush_failure)) {
                log_error("--ready-flush-failure takes seconds > 0");
                return -1;
            }
            break;
        case OPT_UNTIL:
            rc->until_caught_up = true;
            break;
        case OPT_BATCH:
            if (!option_long(optarg, 1, 1000000, &n)) {
                log_error("--batch-size takes 1..1000000");
                return -1;
            }
            rc->batch_size = (size_t)n;
            break;
        case OPT_MAX_MEMORY:
            if (!option_long(optarg, 16, 1048576, &max_memory_mb)) {
                fprintf(stderr, "activity run: --max-memory takes MB, 16..1048576\n");
                return -1;
            }
            break;
        case OPT_EXACT:
            if (!option_long(optarg, 0, LONG_MAX, &n)) {
                log_error("--exact-uniques-limit takes a count >= 0");
                return -1;
            }
            rc->exact_limit = (long)n;
            break;
        case OPT_REGISTRY:
            config_note_secret_in(optarg);
            rc->registry.url = optarg;
            break;
        case OPT_REGISTRY_AUTH:
            if (strchr(optarg, ':'))
                log_add_secret(strchr(optarg, ':') + 1);
            rc->registry.user_info = optarg;
            break;
        case OPT_REGISTRY_TIMEOUT:
            if (!option_long(optarg, 1, LONG_MAX, &n)) {
                log_error("--schema-registry-timeout takes ms > 0");
                return -1;
            }
            rc->registry.timeout_ms = n;
            break;
        case OPT_MIN_TIME:
        case OPT_MAX_TIME:
            if (validation_parse_time(optarg, opt == OPT_MIN_TIME ? &rc->rules.min_event_time_ms
                                                                  : &rc->rules.max_event_time_ms)) {
                log_error("bad time '%s' (YYYY-MM-DD or epoch ms)", optarg);
                return -1;
            }
            break;
        case OPT_DIM_DEVICES:
        case OPT_DIM_USERS:
            if (scd2_config_parse(&rc->scd2, opt == OPT_DIM_DEVICES ? DIM_DEVICES : DIM_USERS,
                                  optarg, &err)) {
                log_error("%s", err.msg);
                return -1;
            }
            break;
        case OPT_WRITER_SCHEMA:
            if (rc->n_writer_schemas == 16 || !strchr(optarg, '=')) {
                log_error("--writer-schema takes ID=FILE (at most 16)");
                return -1;
            }
            rc->writer_schemas[rc->n_writer_schemas++] = optarg;
            break;
        case OPT_MAX_FIELD:
            if (!option_long(optarg, 1, 1 << 20, &n)) {
                log_error("--max-field-bytes takes 1..1048576");
                return -1;
            }
            rc->rules.max_field_bytes = (size_t)n;
            break;
        case OPT_MAX_KEY:
            if (!option_long(optarg, 1, VALIDATION_KEY_BYTES_CEILING, &n)) {
                log_error("--max-key-bytes takes 1..%d (a PostgreSQL btree index "
                          "entry holds at most 2704 bytes)",
                          VALIDATION_KEY_BYTES_CEILING);
                return -1;
            }
            rc->rules.max_key_bytes = (size_t)n;
            break;
        default:
            if (config_common_option_or_complain(&rc->common, "run", opt, optarg, help))
                return -1;
        }
    }
    if (config_no_more_args("run", argc, argv, optind))
        return -1;
    if (validation_rules_check(&rc->rules, &err)) {
        log_error("%s", err.msg);
        return -1;
    }
    /* --max-memory, measured (heaptrack, /usr/bin/time) on 2,000,000 events: an eighth for
     * librdkafka's prefetch; a thirty-second for the record bytes of a batch, as its folded
     * maps take about four times its record bytes and the batch Redis applies meanwhile as
     * much again; the other half for the process itself (~15 MB of code, libraries and
     * connections, and the allocator's slack), the Redis commands and replies and the flush. */
    size_t budget = (size_t)max_memory_mb << 20;
    rc->source.prefetch_bytes = budget / 8;
    rc->batch_bytes = budget / 32;
    if (rc->reset && !rc->until_caught_up) {
        log_error("--reset rebuilds from the topics and needs "
                  "--until-caught-up (or use activity backfill --reset)");
        return -1;
    }
    return 0;
}

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

static int catch_up_init(catch_up *cu, rd_kafka_t *rk, const char *const *topics, int ntopics,
                         errbuf *err)
{
    memset(cu, 0, sizeof *cu);
    for (int i = 0; i < ntopics; i++) {
        int parts = kafka_partition_count(rk, topics[i], err);
        if (parts < 0)
            return -1;
        for (int p = 0; p < parts; p++) {
            int64_t low, high;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topics[i], p, &low, &high,
                                                                     config_broker_timeout_ms());
            if (e) {
                char what[300];
                snprintf(what, sizeof what, "read the offsets of %s [%d]", topics[i], p);
                config_broker_error(rk, e, what, err);
                return -1;
            }
            catch_up_target *nt = realloc(cu->t, (cu->n + 1) * sizeof *nt);
            if (!nt) {
                err_set(err, "out of memory");
                return -1;
            }
            cu->t = nt;
            cu->t[cu->n++] = (catch_up_target){strdup(topics[i]), p, low, high};
        }
    }
    return 0;
}

static void catch_up_free(catch_up *cu)
{
    for (size_t i = 0; i < cu->n; i++)
        free(cu->t[i].topic);
    free(cu->t);
}

/* Caught up when every partition that held records at start has been
 * applied up to where it ended then, by this instance or, for partitions
 * another group member owns, by whoever: their fences in Redis tell. Our
 * own partitions are checked locally, every round; other members' fences
 * are read at most every 0.2 s (*next_remote_check). */
static bool caught_up(const catch_up *cu, pipeline *pipe, redis_state *rs,
                      double *next_remote_check)
{
    bool need_fences = false;
    for (size_t i = 0; i < cu->n; i++) {
        const catch_up_target *t = &cu->t[i];
        if (t->high <= t->low)
            continue; /* empty partition */
        partition_state *ps = pipeline_find(pipe, t->topic, t->partition);
        if (ps && ps->assigned && (ps->pending || ps->applied < t->high)) {
            log_debug("not caught up: %s [%d] applied up to %lld of %lld", t->topic, t->partition,
                      (long long)ps->applied, (long long)t->high);
            return false;
        }
        need_fences |= !ps || !ps->assigned;
    }
    if (!need_fences)
        return true;
    double now = now_seconds();
    if (now < *next_remote_check)
        return false;
    *next_remote_check = now + 0.2;
    for (size_t i = 0; i < cu->n; i++) {
        const catch_up_target *t = &cu->t[i];
        partition_state *ps = pipeline_find(pipe, t->topic, t->partition);
        if (t->high <= t->low || (ps && ps->assigned))
            continue;
        int64_t fences[KEY_GROUPS];
        errbuf err = {{0}};
        if (redis_state_read_fences(rs, t->topic, t->partition, fences, &err))
            return false;
        for (int g = 0; g < KEY_GROUPS; g++)
            if (fences[g] < t->high) {
                log_debug("not caught up: %s [%d] is another member's; group %d applied up "
                          "to %lld of %lld",
                          t->topic, t->partition, g, (long long)fences[g], (long long)t->high);
                return false;
            }
    }
    return true;
}

/* Flushes, retrying with capped backoff while the failure is PostgreSQL's
 * and transient; state stays in Redis meanwhile, so nothing is lost. */
typedef struct {
    double next_attempt;
    double backoff;
    bool failing;
    bool pg_down; /* the last ping failed (see note_postgres) */
    /* The last flush found dirty entities without state and a rebuild
     * followed: a second time means the rebuild cannot help. */
    bool partial_rebuilt;
    uint64_t rows;
    double seconds;
    /* After a signal: when a failing final flush stops being retried. */
    double give_up_at;
} flush_control;

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* After a successful flush: PostgreSQL is up if the flush wrote to it;
 * one with nothing to write did not ask it, so a ping does, for /readyz
 * and activity_postgres_up. The next write reconnects by itself. */
static void note_postgres(pg_sink *pg, flush_control *fc, bool wrote)
{
    errbuf err = {{0}};
    bool up = wrote || pg_sink_ping(pg, &err) == 0;
    if (!up)
        run_metrics_postgres_retry();
    if (up && fc->pg_down)
        log_info("postgresql answers again");
    else if (!up && !fc->pg_down)
        log_warn("postgresql does not answer (nothing to flush meanwhile): %s", err.msg);
    fc->pg_down = !up;
    run_metrics_postgres_up(up);
}

/* Flushes. Transient failures (PostgreSQL or Redis unreachable) are retried
 * with capped exponential backoff, logged once per change of state; the
 * state stays in Redis meanwhile, so nothing is lost. Returns 0 when
 * flushed, 1 when it should be retried later (only if !must_succeed),
 * FLUSH_STATE_MISSING when Redis lost state (nothing written), -1 on an
 * error retrying cannot fix. When PostgreSQL went back in time, the flush
 * that marked everything dirty is followed at once by one that writes it.
 * A second SIGINT/SIGTERM stops retrying a final flush. */
static int do_flush(const run_config *rc, redis_state *rs, pg_sink *pg, flush_control *fc,
                    bool must_succeed, errbuf *err)
{
    for (;;) {
        /* A signalled shutdown does not wait out a PostgreSQL that keeps
         * failing (a lock held on a sink table, an outage). */
        if (must_succeed && stop_requested && fc->failing && now_seconds() >= fc->give_up_at) {
            err_set(err,
                    "gave up the final flush on shutdown (%s); the state is kept in Redis "
                    "and the next run flushes it",
                    err->msg[0] ? err->msg : "postgres was failing");
            return -1;
        }
        flush_stats st;
        bool pg_failed;
        /* The dimensions' change history lives only in PostgreSQL: if it
         * went back in time, their topics are read again (the SCD2 merge
         * does not mind repeats). */
        const char *const replay[3] = {rc->common.devices_topic, rc->common.profiles_topic, NULL};
        int r = flush_once(rs, pg, replay, &st, &pg_failed, err);
        if (r == 0) {
            run_metrics_flush_ok(st.seconds, st.host_rows, st.user_rows, st.dim_device_changes,
                                 st.dim_user_changes);
            note_postgres(pg, fc, st.host_rows || st.user_keys || st.dim_changes);
            if (fc->failing)
                log_info("flush recovered");
            fc->failing = false;
            fc->backoff = 0;
            fc->rows += st.host_rows + st.user_rows;
            fc->seconds += st.seconds;
            if (st.host_rows || st.user_keys || st.dim_changes)
                log_info("flushed %zu host-month rows, %zu user-month keys (%zu rows) and %zu "
                         "dimension changes in %.3f s",
                         st.host_rows, st.user_keys, st.user_rows, st.dim_changes, st.seconds);
            return 0;
        }
        if (r == FLUSH_STATE_MISSING || r == FLUSH_STATE_PARTIAL)
            return r; /* nothing written; the caller rebuilds */
        if (r == FLUSH_POSTGRES_BEHIND)
            continue; /* everything is marked dirty now: flush it */
        if (r == 1) {
            /* Another instance committed a newer flush first: try again
             * soon; what this one took is still pending. */
            log_debug("flush superseded by another instance's; retrying");
            run_metrics_flush_superseded();
            if (!must_succeed)
                return 1;
            sleep_seconds(0.2);
            continue;
        }
        if (pg_failed && !pg_sink_error_is_transient(pg))
            return -1;
        run_metrics_flush_failed(pg_failed);
        if (!fc->failing)
            log_warn("flush failed, will retry with backoff (state is kept in Redis): %s",
                     err->msg);
        fc->failing = true;
        fc->backoff = fc->backoff ? fc->backoff * 2 : 0.5;
        if (fc->backoff > 30)
            fc->backoff = 30;
        fc->next_attempt = now_seconds() + fc->backoff;
        /* PostgreSQL reconnects by itself on the next write; a Redis
         * failure leaves a connection that must be replaced. */
        if (!pg_failed)
            redis_state_reconnect(rs, &(errbuf){{0}});
        if (!must_succeed)
            return 1;
        if (stop_requested > 1) {
            err_set(err, "gave up the final flush on a second signal; the state is kept in "
                         "Redis and the next run flushes it");
            return -1;
        }
        sleep_seconds(fc->backoff);
    }
}

/* Redis lost this prefix's state (a fence went back or vanished, the
 * layout marker is gone, or a flush found dirty entities without state):
 * every assigned partition has been resynced from its fences, which
 * rebuilds the state from the topics, devices and profiles included. The
 * marker is written again, and the epoch changed so that every other
 * instance resyncs too (a quiet partition would not notice, and the marker
 * is back); flushes wait until the rebuild is back where the partitions
 * stood (pipeline_rebuilding), so a partial rebuild never overwrites good
 * rows. */
static void rebuild_state(redis_state *rs, const char *why, int64_t *epoch)
{
    errbuf err = {{0}};
    if (redis_state_check_layout(rs, &err) || redis_state_epoch(rs, epoch, true, &err))
        log_warn("marking the rebuild in redis: %s", err.msg);
    log_warn("redis lost the state of prefix '%s' (%s: FLUSHDB, an empty replica, or a restart "
             "without persistence?): every assigned partition is re-read from its fences, "
             "devices and profiles included; flushes wait until they are back where they stood",
             redis_state_prefix(rs), why);
}

/* Seeks the partitions listed (if any) and frees the list. */
static void seek_and_free(kafka_source *src, rd_kafka_topic_partition_list_t *reseek)
{
    if (!reseek)
        return;
    errbuf err = {{0}};
    if (kafka_source_seek(src, reseek, &err))
        log_warn("%s", err.msg);
    rd_kafka_topic_partition_list_destroy(reseek);
}

/* The flush of the loop, with what must come first: the eviction check
 * (REDIS_REFUSED stops the processor), the epoch (fences reset for every
 * instance: every partition re-read, flushes wait as after lost state),
 * the fence advance (which finds fences that went back), and no flush
 * while a rebuild is under way. Returns do_flush's result, 1 when the
 * flush waited. */
static int flush_step(const run_config *rc, pipeline *pipe, kafka_source *src, redis_state *rs,
                      pg_sink *pg, flush_control *fc, int64_t *epoch, bool *rebuilding, errbuf *err)
{
    if (redis_state_check_eviction(rs, err) == REDIS_REFUSED)
        return REDIS_REFUSED;
    rd_kafka_topic_partition_list_t *reseek = NULL;
    int64_t ep;
    if (redis_state_epoch(rs, &ep, false, err) == 0 && ep != *epoch) {
        if (*epoch >= 0) {
            log_warn("fences were reset for every instance (epoch %lld); re-reading every "
                     "assigned partition from its fences",
                     (long long)ep);
            if (pipeline_resync(pipe, &reseek, true, err))
                log_warn("resyncing: %s", err->msg);
        }
        *epoch = ep;
    }
    int adv = reseek ? 0 : pipeline_advance_fences(pipe, &reseek, err);
    if (adv < 0)
        log_warn("advancing fences: %s", err->msg);
    else if (adv == PIPELINE_STATE_LOST)
        rebuild_state(rs, "a fence went back", epoch);
    seek_and_free(src, reseek);
    reseek = NULL;
    if (pipeline_rebuilding(pipe)) {
        if (!*rebuilding)
            log_info("flushes wait for the rebuild of redis state");
        *rebuilding = true;
        return 1;
    }
    if (*rebuilding)
        log_info("the rebuild of redis state is back where it stood; flushing again");
    *rebuilding = false;
    int fr = do_flush(rc, rs, pg, fc, false, err);
    if (fr == FLUSH_STATE_PARTIAL && fc->partial_rebuilt) {
        /* Re-reading from the fences did not bring the state back: keys
         * went one by one (deleted, evicted) while the fences stayed, so
         * the topics will not be re-read for them. */
        char what[sizeof err->msg];
        snprintf(what, sizeof what, "%s", err->msg);
        err_set(err,
                "redis lacks the state of dirty entities (%s) although its fences and layout "
                "marker are intact, even after re-reading every partition: keys of prefix '%s' "
                "were deleted or evicted; stop every instance and rebuild with activity "
                "backfill --reset",
                what, redis_state_prefix(rs));
        return -1;
    }
    fc->partial_rebuilt = fr == FLUSH_STATE_PARTIAL;
    if (fr == FLUSH_STATE_MISSING || fr == FLUSH_STATE_PARTIAL) {
        if (pipeline_resync(pipe, &reseek, true, err))
            log_warn("resyncing: %s", err->msg);
        rebuild_state(rs, err->msg, epoch);
        seek_and_free(src, reseek);
    }
    return fr;
}

/* pipeline_apply_end, timed for the metrics: from sending the batches
 * (*sent_at, 0 if nothing was in flight) and the wait for the replies. */
/* The pipeline behind the consumer's rebalance callbacks: a partition starts
 * at its lowest fence; between failed fence reads the state connection is
 * re-established. */
static int on_assign(void *ctx, const char *topic, int32_t partition, int64_t *start, errbuf *err)
{
    return pipeline_assign(ctx, topic, partition, start, err);
}

static void on_recover(void *ctx, errbuf *err)
{
    pipeline *pipe = ctx;
    redis_state_reconnect(pipe->redis, err);
}

static void on_revoke(void *ctx, const char *topic, int32_t partition)
{
    pipeline_revoke(ctx, topic, partition);
}

static void store_positions(kafka_source *src, const pipeline *pipe)
{
    rd_kafka_topic_partition_list_t *positions = pipeline_positions(pipe);
    kafka_source_store_positions(src, positions);
    rd_kafka_topic_partition_list_destroy(positions);
}

static int apply_end_timed(pipeline *pipe, rd_kafka_topic_partition_list_t **reseek,
                           double *sent_at, errbuf *err)
{
    double start = now_seconds();
    int r = pipeline_apply_end(pipe, reseek, err);
    if (*sent_at && r >= 0) {
        double end = now_seconds();
        run_metrics_apply_latency(end - *sent_at, end - start);
    }
    *sent_at = 0;
    return r;
}

/* Messages taken from librdkafka per call (a batch takes several calls). */
#define POLL_CHUNK 4096

static int run_loop(run_config *rc, pipeline *pipe, kafka_source *src, redis_state *rs,
                    redis_state *apply_rs, pg_sink *pg, const catch_up *cu)
{
    rd_kafka_message_t *msgs[POLL_CHUNK];
    errbuf err = {{0}};
    flush_control fc = {0};
    double next_flush = now_seconds() + rc->flush_interval;
    double last_report = now_seconds();
    uint64_t last_records = 0;
    int status = 0;
    bool had_assignment = false, redis_down = false, rebuilding = false;
    /* Read before the first assignment: a change after it concerns us. */
    int64_t epoch = -1;
    if (redis_state_epoch(rs, &epoch, false, &err))
        log_warn("reading the epoch: %s", err.msg);
    double first_record = 0, redis_retry_at = 0, next_catch_up_check = 0, recheck_at = 0;
    double apply_sent_at = 0;
    bool rechecked = false;
    while (!stop_requested) {
        run_metrics_heartbeat();
        /* Up to a batch of messages (by count and by bytes), waiting only
         * for the first. The folded strings are also bounded
         * (BATCH_SOFT_BYTES, far below the 4 GiB that batch string offsets
         * address): a chunk holds at most chunk_cap records of the largest
         * size validation lets through (a profile: ten --max-field-bytes
         * strings). */
        size_t bytes = 0;
        size_t chunk_cap = BATCH_SOFT_BYTES / (11 * rc->rules.max_field_bytes + 4096);
        if (chunk_cap < 1)
            chunk_cap = 1;
        for (size_t got = 0; got < rc->batch_size && bytes < rc->batch_bytes && status == 0 &&
                             pipeline_pending_bytes(pipe) < BATCH_SOFT_BYTES;) {
            size_t want = rc->batch_size - got < POLL_CHUNK ? rc->batch_size - got : POLL_CHUNK;
            if (want > chunk_cap)
                want = chunk_cap;
            /* While Redis applies a batch, the replies are what to wait
             * for, not more records. */
            size_t n =
                kafka_source_poll(src, msgs, want, got == 0 && !pipeline_in_flight(pipe) ? 200 : 0);
            for (size_t i = 0; i < n; i++) {
                rd_kafka_message_t *m = msgs[i];
                bytes += m->len;
                if (m->err) {
                    if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
                        log_debug("kafka: %s", rd_kafka_message_errstr(m));
                    else
                        log_warn("kafka: %s", rd_kafka_message_errstr(m));
                } else if (run_metrics_consumed(rd_kafka_topic_name(m->rkt)),
                           status == 0 && pipeline_handle(pipe, m, &err)) {
                    log_error("%s", err.msg);
                    status = 1;
                }
                rd_kafka_message_destroy(m);
            }
            got += n;
            if (n < want)
                break;
        }
        run_metrics_commit();
        if (kafka_source_fatal(src)) {
            log_error("kafka: fatal: %s", kafka_source_fatal(src));
            status = 1;
        }
        if (status)
            break;
        if (!first_record && pipe->stats.records)
            first_record = now_seconds();
        rd_kafka_topic_partition_list_t *reseek = NULL;
        int applied = 0;
        if (redis_down) {
            /* Back from an outage: whether the last batches applied is
             * unknown, so every partition restarts from its fences. */
            if (now_seconds() < redis_retry_at)
                continue;
            run_metrics_redis_retry();
            int rr = redis_state_reconnect(rs, &err);
            if (rr == 0)
                rr = redis_state_reconnect(apply_rs, &err);
            if (rr == REDIS_REFUSED) {
                log_error("%s", err.msg);
                status = 1;
                break;
            }
            /* A Redis back without this prefix's layout marker came back
             * without its state (no persistence, an empty replica). */
            int present = rr ? -1 : redis_state_layout_present(rs, &err);
            if (present < 0 || pipeline_resync(pipe, &reseek, present == 0, &err)) {
                redis_retry_at = now_seconds() + 1;
                if (reseek)
                    rd_kafka_topic_partition_list_destroy(reseek);
                continue;
            }
            if (present == 0)
                rebuild_state(rs, "the layout marker is gone after reconnecting", &epoch);
            log_info("redis is back; resuming consumption from the fences");
            run_metrics_redis_up(true);
            kafka_source_pause(src, false);
            redis_down = false;
        } else if ((applied = apply_end_timed(pipe, &reseek, &apply_sent_at, &err)) < 0) {
            /* Redis is unreachable: fetching pauses, polling goes on so
             * the group membership stays alive, and every second the
             * connection is retried. */
            log_warn("redis unavailable, pausing consumption until it is back: %s", err.msg);
            run_metrics_redis_up(false);
            kafka_source_pause(src, true);
            redis_down = true;
            redis_retry_at = now_seconds() + 1;
            if (reseek)
                rd_kafka_topic_partition_list_destroy(reseek);
            continue;
        }
        if (applied == PIPELINE_STATE_LOST)
            rebuild_state(rs, "a fence went back", &epoch);
        seek_and_free(src, reseek);
        reseek = NULL;
        store_positions(src, pipe);
        size_t n_assigned = 0;
        for (size_t i = 0; i < pipe->n_parts; i++)
            n_assigned += pipe->parts[i]->assigned;
        had_assignment |= n_assigned > 0;
        run_metrics_assigned(n_assigned);
        /* The ownership checks once more, 3 s after joining: an instance
         * that started at the same instant was not a member yet when the
         * start-up check ran (cmd/deployment.h). */
        if (had_assignment && !recheck_at)
            recheck_at = now_seconds() + 3;
        if (recheck_at && !rechecked && now_seconds() >= recheck_at) {
            rechecked = true;
            int r = deployment_claim(kafka_source_handle(src), pg, rc->source.group,
                                     rc->common.redis_prefix, &err);
            if (r > 0) {
                log_error("%s", err.msg);
                status = 1;
                break;
            }
            if (r < 0)
                log_warn("could not repeat the ownership check after joining: %s", err.msg);
        }

        double now = now_seconds();
        if (rc->until_caught_up && (had_assignment || cu->n == 0) &&
            caught_up(cu, pipe, rs, &next_catch_up_check) && !pipeline_rebuilding(pipe))
            break;
        if (now >= next_flush && now >= fc.next_attempt) {
            int fr = flush_step(rc, pipe, src, rs, pg, &fc, &epoch, &rebuilding, &err);
            if (fr == REDIS_REFUSED) {
                log_error("%s", err.msg);
                status = 1;
                break;
            }
            if (fr < 0) {
                log_error("flush failed and retrying cannot fix it: %s", err.msg);
                status = 1;
                break;
            }
            errbuf cerr = {{0}};
            if (kafka_source_commit(src, false, &cerr))
                log_debug("%s", cerr.msg);
            next_flush = now_seconds() + rc->flush_interval;
        }
        /* Send this round's batches; Redis applies them while the next
         * round is polled and folded. */
        int begun = redis_down ? 0 : pipeline_apply_begin(pipe, &err);
        if (begun == PIPELINE_DLQ_FAILED) {
            log_error("%s", err.msg);
            status = 1;
            break;
        }
        if (begun) {
            log_warn("redis unavailable, pausing consumption until it is back: %s", err.msg);
            run_metrics_redis_up(false);
            kafka_source_pause(src, true);
            redis_down = true;
            redis_retry_at = now_seconds() + 1;
        }
        apply_sent_at = pipeline_in_flight(pipe) ? now_seconds() : 0;
        if (now - last_report >= 30) {
            log_info("processed %llu records (%.0f/s), %llu dead letters",
                     (unsigned long long)pipe->stats.records,
                     (pipe->stats.records - last_records) / (now - last_report),
                     (unsigned long long)pipe->stats.dead_letters);
            last_report = now;
            last_records = pipe->stats.records;
        }
    }
    run_metrics_stopping();
    if (status == 0 && !redis_down) {
        /* Whatever is in flight or folded gets applied before the final
         * flush; a batch that cannot be is simply replayed by the next run. */
        rd_kafka_topic_partition_list_t *reseek = NULL;
        int applied = pipeline_apply(pipe, &reseek, &err);
        if (applied == PIPELINE_DLQ_FAILED) {
            log_error("%s", err.msg);
            status = 1;
        } else if (applied < 0)
            log_warn("applying the last batches failed (the next run replays them): %s", err.msg);
        if (reseek)
            rd_kafka_topic_partition_list_destroy(reseek);
    }
    if (status == 0 && redis_state_check_eviction(rs, &err) == REDIS_REFUSED) {
        log_error("%s", err.msg);
        status = 1;
    }
    if (status == 0) {
        /* Final flush: must land before exiting 0. After a signal it is
         * retried for --pg-lock-timeout at most, and not tried at all if
         * the flushes were failing already. */
        if (stop_requested)
            fc.give_up_at = now_seconds() + (fc.failing ? 0 : rc->pg_lock_timeout);
        rd_kafka_topic_partition_list_t *reseek = NULL;
        int adv = pipeline_advance_fences(pipe, &reseek, &err);
        if (adv < 0)
            log_warn("advancing fences: %s", err.msg);
        else if (adv == PIPELINE_STATE_LOST)
            rebuild_state(rs, "a fence went back", &epoch);
        if (reseek)
            rd_kafka_topic_partition_list_destroy(reseek);
        int fr = 0;
        if (pipeline_rebuilding(pipe))
            log_warn("stopping while redis state is being rebuilt: no final flush, so that a "
                     "partial rebuild does not overwrite good rows; the next run continues the "
                     "rebuild from the fences");
        else
            fr = do_flush(rc, rs, pg, &fc, true, &err);
        if (fr == FLUSH_STATE_MISSING || fr == FLUSH_STATE_PARTIAL) {
            rebuild_state(rs, err.msg, &epoch);
            log_warn("no final flush: the next run rebuilds the state from the fences");
        } else if (fr) {
            log_error("final flush failed: %s", err.msg);
            status = 1;
        }
        store_positions(src, pipe);
        if (kafka_source_commit(src, true, &err))
            log_debug("%s", err.msg);
    }
    /* The rate counts from the first record, so group join time at start
     * does not dilute it; the final flush is included. */
    double busy = first_record ? now_seconds() - first_record : 0;
    log_info("done: %llu records (%llu events, %llu devices, %llu user profiles, %llu "
             "tombstones, %llu dead letters) in %.2f s, "
             "%.0f records/s; %llu redis commands; %llu rows flushed in %.2f s",
             (unsigned long long)pipe->stats.records, (unsigned long long)pipe->stats.events,
             (unsigned long long)pipe->stats.devices, (unsigned long long)pipe->stats.profiles,
             (unsigned long long)pipe->stats.tombstones,
             (unsigned long long)pipe->stats.dead_letters, busy,
             busy > 0 ? pipe->stats.records / busy : 0,
             (unsigned long long)(redis_state_commands(rs) + redis_state_commands(apply_rs)),
             (unsigned long long)fc.rows, fc.seconds);
    return status;
}

/* --writer-schema ID=FILE: local schema ids beyond 1 and 2. */
static int add_writer_schemas(const run_config *rc, avro_codec *codec, errbuf *err)
{
    for (int i = 0; i < rc->n_writer_schemas; i++) {
        const char *arg = rc->writer_schemas[i];
        char *end;
        unsigned long id = strtoul(arg, &end, 10);
        if (end == arg || *end != '=' || id > UINT32_MAX) {
            err_set(err, "--writer-schema %s: the id must be a number", arg);
            return -1;
        }
        FILE *f = fopen(end + 1, "r");
        char *text = NULL;
        size_t cap = 0;
        ssize_t n = f ? getdelim(&text, &cap, '\0', f) : -1;
        if (f)
            fclose(f);
        if (n < 0) {
            free(text);
            err_set(err, "--writer-schema %s: cannot read the file", arg);
            return -1;
        }
        errbuf why = {{0}};
        int r = avro_codec_add_schema(codec, (uint32_t)id, text, (size_t)n, &why);
        free(text);
        if (r) {
            err_set(err, "--writer-schema %s: %s", arg, why.msg);
            return -1;
        }
    }
    return 0;
}

/* With metrics on, librdkafka's statistics feed the consumer lag: every
 * 5 s unless -X statistics.interval.ms says otherwise. */
static int with_stats_interval(common_config *c, errbuf *err)
{
    for (int i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka_keys[i], "statistics.interval.ms") == 0)
            return 0;
    return config_common_option(c, 'X', "statistics.interval.ms=5000", err) < 0 ? -1 : 0;
}

int cmd_run(int argc, char **argv)
{
    run_config rc;
    memset(&rc, 0, sizeof rc);
    int pr = parse_args(argc, argv, &rc);
    if (pr != 0) {
        config_free(&rc.common);
        return pr > 0 ? 0 : 2;
    }
    errbuf err = {{0}};
    int status = 1;
    avro_codec *codec = NULL;
    schema_registry *registry = NULL;
    redis_state *rs = NULL, *apply_rs = NULL;
    pg_sink *pg = NULL;
    dlq *dead = NULL;
    kafka_source *src = NULL;
    pipeline pipe;
    bool pipe_ready = false;
    catch_up cu = {0};

    metrics_http *http = NULL;
    if (run_metrics_init(rc.ready_flush_failure)) {
        err_set(&err, "out of memory");
        goto out;
    }
    if (rc.metrics_addr) {
        if (!(http = metrics_http_start(rc.metrics_addr, run_metrics_probe, &err)) ||
            with_stats_interval(&rc.common, &err))
            goto out;
        log_info("serving /metrics, /healthz and /readyz on http://%s", rc.metrics_addr);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!(codec = avro_codec_new(&err)))
        goto out;
    if (add_writer_schemas(&rc, codec, &err))
        goto out;
    if (rc.registry.url) {
        if (rc.n_writer_schemas) {
            err_set(&err, "--writer-schema is for running without a schema registry");
            goto out;
        }
        if (!(registry = schema_registry_new(&rc.registry, &err)))
            goto out;
        avro_codec_set_registry(codec, registry);
        log_info("schema ids are resolved in the registry at %s", rc.registry.url);
    }
    if (!(rs = redis_state_connect(rc.common.redis_url, rc.common.redis_prefix, &err)) ||
        redis_state_check_layout(rs, &err) ||
        !(apply_rs = redis_state_connect(rc.common.redis_url, rc.common.redis_prefix, &err)))
        goto out;
    redis_state_set_exact_limit(apply_rs, rc.exact_limit);
    int64_t newest_flush;
    if (!(pg = pg_sink_connect(rc.common.pg_dsn, &err)) ||
        pg_sink_set_timeouts(pg, (long)(rc.pg_lock_timeout * 1000),
                             (long)(rc.pg_statement_timeout * 1000), &err) ||
        pg_sink_migrate(pg, &err))
        goto out;
    if (!(dead = dlq_new(&rc.common, &err)))
        goto out;
    char redis_version[64];
    redis_state_server_version(rs, redis_version, sizeof redis_version);
    log_info("activity %s with librdkafka %s; Redis %s, PostgreSQL %s", ACTIVITY_VERSION,
             rd_kafka_version_str(), redis_version, pg_sink_server_version(pg));
    pipeline_init(&pipe, codec, rs, apply_rs, dead, rc.common.events_topic,
                  rc.common.devices_topic);
    pipeline_set_profiles_topic(&pipe, rc.common.profiles_topic);
    pipe.rules = rc.rules;
    pipe_ready = true;
    source_callbacks callbacks = {on_assign, on_recover, on_revoke, &pipe};
    if (!(src = kafka_source_new(&rc.common, &rc.source, &callbacks, &err)) ||
        deployment_claim(kafka_source_handle(src), pg, rc.source.group, rc.common.redis_prefix,
                         &err))
        goto out;
    if (rc.reset) {
        /* A full rebuild: forget every fence and all state of this prefix
         * and empty the sink tables, then replay the topics from the start.
         * Not while other deployments share the tables (checked before
         * anything is deleted, and again in the TRUNCATE's transaction),
         * nor while another group consumes this prefix (deployment_claim). */
        if (deployment_check_idle(kafka_source_handle(src), rc.source.group, &err) ||
            pg_sink_check_sole_owner(pg, rc.common.redis_prefix, &err))
            goto out;
        log_warn("--reset: deleting all Redis state under '%s:' and the rows of the sink tables",
                 rc.common.redis_prefix);
        if (redis_state_drop_all(rs, &err) || pg_sink_reset(pg, rc.common.redis_prefix, &err) ||
            redis_state_check_layout(rs, &err))
            goto out;
    }
    if (pg_sink_fence_token(pg, rc.common.redis_prefix, &newest_flush, &err) ||
        redis_state_raise_flush_token(rs, newest_flush, &err) ||
        pg_sink_set_scd2(pg, &rc.scd2, &err))
        goto out;
    const char *topics[3] = {rc.common.events_topic, rc.common.devices_topic,
                             rc.common.profiles_topic};
    const char *existing[3];
    int n_existing = 0;
    for (int i = 0; i < 3; i++) {
        int parts = kafka_partition_count(kafka_source_handle(src), topics[i], &err);
        if (parts < 0)
            goto out;
        if (parts == 0)
            log_warn("topic %s does not exist yet; it is not consumed until it does and the "
                     "processor restarts",
                     topics[i]);
        else
            existing[n_existing++] = topics[i];
    }
    if (n_existing == 0) {
        err_set(&err, "none of the topics %s, %s, %s exists; load data first (activity load)",
                topics[0], topics[1], topics[2]);
        goto out;
    }
    if (rc.until_caught_up &&
        catch_up_init(&cu, kafka_source_handle(src), existing, n_existing, &err))
        goto out;
    if (kafka_source_subscribe(src, existing, n_existing, &err))
        goto out;
    log_info("consuming %s%s%s%s%s as group %s; flushing every %.1f s%s", existing[0],
             n_existing > 1 ? ", " : "", n_existing > 1 ? existing[1] : "",
             n_existing > 2 ? ", " : "", n_existing > 2 ? existing[2] : "", rc.source.group,
             rc.flush_interval, rc.until_caught_up ? " until caught up" : "");
    status = run_loop(&rc, &pipe, src, rs, apply_rs, pg, &cu);
    deployment_release(kafka_source_handle(src), pg, rc.source.group, rc.common.redis_prefix);
    kafka_source_close(src);
out:
    if (status && err.msg[0])
        log_error("%s", err.msg);
    catch_up_free(&cu);
    metrics_http_stop(http);
    kafka_source_free(src);
    if (pipe_ready)
        pipeline_free(&pipe);
    dlq_free(dead);
    pg_sink_free(pg);
    redis_state_free(apply_rs);
    redis_state_free(rs);
    avro_codec_free(codec);
    schema_registry_free(registry);
    config_free(&rc.common);
    return status;
}
