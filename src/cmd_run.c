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
#include "sinks/flusher.h"
#include "src/commands.h"
#include "src/config.h"

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
    "                          from the topics (stop other instances first)\n"
    "  --exact-uniques-limit N count unique visitors of a host-day exactly up to N,\n"
    "                          then by HyperLogLog (default: 10000)\n"
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
    "  --max-field-bytes N     longer strings are dead letters (default: 4096)\n"
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
    OPT_WRITER_SCHEMA,
    OPT_RESET,
    OPT_DIM_DEVICES,
    OPT_DIM_USERS,
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
        {"writer-schema", required_argument, 0, OPT_WRITER_SCHEMA},
        {"dim-devices-track", required_argument, 0, OPT_DIM_DEVICES},
        {"dim-users-track", required_argument, 0, OPT_DIM_USERS},
        {0, 0, 0, 0}};
    config_defaults(&rc->common);
    rc->source.group = "activity";
    rc->flush_interval = 10;
    rc->batch_size = 500000;
    long max_memory_mb = 64;
    rc->exact_limit = REDIS_DEFAULT_EXACT_LIMIT;
    registry_options_defaults(&rc->registry);
    validation_defaults(&rc->rules);
    scd2_config_defaults(&rc->scd2);
    int opt;
    errbuf err = {{0}};
    char *end;
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
            rc->flush_interval = strtod(optarg, &end);
            if (*end || rc->flush_interval <= 0) {
                fprintf(stderr, "activity run: --flush-interval takes seconds > 0\n");
                return -1;
            }
            break;
        case OPT_RESET:
            rc->reset = true;
            break;
        case OPT_UNTIL:
            rc->until_caught_up = true;
            break;
        case OPT_BATCH:
            rc->batch_size = strtoul(optarg, &end, 10);
            if (*end || rc->batch_size == 0 || rc->batch_size > 1000000) {
                fprintf(stderr, "activity run: --batch-size takes 1..1000000\n");
                return -1;
            }
            break;
        case OPT_MAX_MEMORY:
            max_memory_mb = strtol(optarg, &end, 10);
            if (*end || max_memory_mb < 16 || max_memory_mb > 1048576) {
                fprintf(stderr, "activity run: --max-memory takes MB, 16..1048576\n");
                return -1;
            }
            break;
        case OPT_EXACT:
            rc->exact_limit = strtol(optarg, &end, 10);
            if (*end || rc->exact_limit < 0) {
                fprintf(stderr, "activity run: --exact-uniques-limit takes a count >= 0\n");
                return -1;
            }
            break;
        case OPT_REGISTRY:
            rc->registry.url = optarg;
            break;
        case OPT_REGISTRY_AUTH:
            rc->registry.user_info = optarg;
            break;
        case OPT_REGISTRY_TIMEOUT:
            rc->registry.timeout_ms = strtol(optarg, &end, 10);
            if (*end || rc->registry.timeout_ms <= 0) {
                fprintf(stderr, "activity run: --schema-registry-timeout takes ms > 0\n");
                return -1;
            }
            break;
        case OPT_MIN_TIME:
        case OPT_MAX_TIME:
            if (validation_parse_time(optarg, opt == OPT_MIN_TIME ? &rc->rules.min_event_time_ms
                                                                  : &rc->rules.max_event_time_ms)) {
                fprintf(stderr, "activity run: bad time '%s' (YYYY-MM-DD or epoch ms)\n", optarg);
                return -1;
            }
            break;
        case OPT_DIM_DEVICES:
        case OPT_DIM_USERS:
            if (scd2_config_parse(&rc->scd2, opt == OPT_DIM_DEVICES ? DIM_DEVICES : DIM_USERS,
                                  optarg, &err)) {
                fprintf(stderr, "activity run: %s\n", err.msg);
                return -1;
            }
            break;
        case OPT_WRITER_SCHEMA:
            if (rc->n_writer_schemas == 16 || !strchr(optarg, '=')) {
                fprintf(stderr, "activity run: --writer-schema takes ID=FILE (at most 16)\n");
                return -1;
            }
            rc->writer_schemas[rc->n_writer_schemas++] = optarg;
            break;
        case OPT_MAX_FIELD:
            rc->rules.max_field_bytes = strtoul(optarg, &end, 10);
            if (*end || rc->rules.max_field_bytes == 0) {
                fprintf(stderr, "activity run: --max-field-bytes takes a count > 0\n");
                return -1;
            }
            break;
        default:
            if (config_common_option_or_complain(&rc->common, "run", opt, optarg, help))
                return -1;
        }
    }
    if (config_no_more_args("run", argc, argv, optind))
        return -1;
    /* --max-memory, measured (heaptrack, /usr/bin/time) on 2,000,000 events: an eighth for
     * librdkafka's prefetch; a thirty-second for the record bytes of a batch, as its folded
     * maps take about four times its record bytes and the batch Redis applies meanwhile as
     * much again; the other half for the process itself (~15 MB of code, libraries and
     * connections, and the allocator's slack), the Redis commands and replies and the flush. */
    size_t budget = (size_t)max_memory_mb << 20;
    rc->source.prefetch_bytes = budget / 8;
    rc->batch_bytes = budget / 32;
    if (rc->reset && !rc->until_caught_up) {
        fprintf(stderr, "activity run: --reset rebuilds from the topics and needs "
                        "--until-caught-up (or use activity backfill --reset)\n");
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
            rd_kafka_resp_err_t e =
                rd_kafka_query_watermark_offsets(rk, topics[i], p, &low, &high, 10000);
            if (e) {
                err_set(err, "watermarks of %s [%d]: %s", topics[i], p, rd_kafka_err2str(e));
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
    uint64_t rows;
    double seconds;
} flush_control;

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Flushes. Transient failures (PostgreSQL or Redis unreachable) are retried
 * with capped exponential backoff, logged once per change of state; the
 * state stays in Redis meanwhile, so nothing is lost. Returns 0 when
 * flushed, 1 when it should be retried later (only if !must_succeed), -1
 * on an error retrying cannot fix. A second SIGINT/SIGTERM stops retrying
 * a final flush. */
static int do_flush(redis_state *rs, pg_sink *pg, flush_control *fc, bool must_succeed, errbuf *err)
{
    for (;;) {
        flush_stats st;
        bool pg_failed;
        int r = flush_once(rs, pg, &st, &pg_failed, err);
        if (r == 0) {
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
        if (r == 1) {
            /* Another instance committed a newer flush first: try again
             * soon; what this one took is still pending. */
            log_debug("flush superseded by another instance's; retrying");
            if (!must_succeed)
                return 1;
            sleep_seconds(0.2);
            continue;
        }
        if (pg_failed && !pg_sink_error_is_transient(pg))
            return -1;
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
    bool had_assignment = false, redis_down = false;
    double first_record = 0, redis_retry_at = 0, next_catch_up_check = 0;
    while (!stop_requested) {
        /* Up to a batch of messages (by count and by bytes), waiting only
         * for the first. */
        size_t bytes = 0;
        for (size_t got = 0; got < rc->batch_size && bytes < rc->batch_bytes && status == 0;) {
            size_t want = rc->batch_size - got < POLL_CHUNK ? rc->batch_size - got : POLL_CHUNK;
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
                } else if (status == 0 && pipeline_handle(pipe, m, &err)) {
                    log_error("%s", err.msg);
                    status = 1;
                }
                rd_kafka_message_destroy(m);
            }
            got += n;
            if (n < want)
                break;
        }
        if (kafka_source_fatal(src)) {
            log_error("kafka: fatal: %s", kafka_source_fatal(src));
            status = 1;
        }
        if (status)
            break;
        if (!first_record && pipe->stats.records)
            first_record = now_seconds();
        rd_kafka_topic_partition_list_t *reseek = NULL;
        if (redis_down) {
            /* Back from an outage: whether the last batches applied is
             * unknown, so every partition restarts from its fences. */
            if (now_seconds() < redis_retry_at)
                continue;
            if (redis_state_reconnect(rs, &err) || redis_state_reconnect(apply_rs, &err) ||
                pipeline_resync(pipe, &reseek, &err)) {
                redis_retry_at = now_seconds() + 1;
                if (reseek)
                    rd_kafka_topic_partition_list_destroy(reseek);
                continue;
            }
            log_info("redis is back; resuming consumption from the fences");
            kafka_source_pause(src, false);
            redis_down = false;
        } else if (pipeline_apply_end(pipe, &reseek, &err) < 0) {
            /* Redis is unreachable: fetching pauses, polling goes on so
             * the group membership stays alive, and every second the
             * connection is retried. */
            log_warn("redis unavailable, pausing consumption until it is back: %s", err.msg);
            kafka_source_pause(src, true);
            redis_down = true;
            redis_retry_at = now_seconds() + 1;
            if (reseek)
                rd_kafka_topic_partition_list_destroy(reseek);
            continue;
        }
        if (reseek) {
            if (kafka_source_seek(src, reseek, &err))
                log_warn("%s", err.msg);
            rd_kafka_topic_partition_list_destroy(reseek);
        }
        kafka_source_store_positions(src, pipe);
        for (size_t i = 0; i < pipe->n_parts; i++)
            had_assignment |= pipe->parts[i]->assigned;

        double now = now_seconds();
        if (rc->until_caught_up && (had_assignment || cu->n == 0) &&
            caught_up(cu, pipe, rs, &next_catch_up_check))
            break;
        if (now >= next_flush && now >= fc.next_attempt) {
            if (pipeline_advance_fences(pipe, &err))
                log_warn("advancing fences: %s", err.msg);
            if (do_flush(rs, pg, &fc, false, &err) < 0) {
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
        if (!redis_down && pipeline_apply_begin(pipe, &err)) {
            log_warn("redis unavailable, pausing consumption until it is back: %s", err.msg);
            kafka_source_pause(src, true);
            redis_down = true;
            redis_retry_at = now_seconds() + 1;
        }
        if (now - last_report >= 30) {
            log_info("processed %llu records (%.0f/s), %llu dead letters",
                     (unsigned long long)pipe->stats.records,
                     (pipe->stats.records - last_records) / (now - last_report),
                     (unsigned long long)pipe->stats.dead_letters);
            last_report = now;
            last_records = pipe->stats.records;
        }
    }
    if (status == 0 && !redis_down) {
        /* Whatever is in flight or folded gets applied before the final
         * flush; a batch that cannot be is simply replayed by the next run. */
        rd_kafka_topic_partition_list_t *reseek = NULL;
        if (pipeline_apply(pipe, &reseek, &err) < 0)
            log_warn("applying the last batches failed (the next run replays them): %s", err.msg);
        if (reseek)
            rd_kafka_topic_partition_list_destroy(reseek);
    }
    if (status == 0) {
        /* Final flush: must land before exiting 0. */
        if (pipeline_advance_fences(pipe, &err))
            log_warn("advancing fences: %s", err.msg);
        if (do_flush(rs, pg, &fc, true, &err)) {
            log_error("final flush failed: %s", err.msg);
            status = 1;
        }
        kafka_source_store_positions(src, pipe);
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
    if (rc.reset) {
        /* A full rebuild: forget every fence and all state of this prefix
         * and empty the sink tables, then replay the topics from the start. */
        log_warn("--reset: deleting all Redis state under '%s:' and the rows of the sink tables",
                 rc.common.redis_prefix);
        if (redis_state_drop_all(rs, &err) || !(pg = pg_sink_connect(rc.common.pg_dsn, &err)) ||
            pg_sink_migrate(pg, &err) || pg_sink_reset(pg, rc.common.redis_prefix, &err))
            goto out;
        if (redis_state_check_layout(rs, &err))
            goto out;
    }
    if ((!pg && !(pg = pg_sink_connect(rc.common.pg_dsn, &err))) || pg_sink_migrate(pg, &err) ||
        pg_sink_fence_token(pg, rc.common.redis_prefix, &newest_flush, &err) ||
        redis_state_raise_flush_token(rs, newest_flush, &err) ||
        pg_sink_set_scd2(pg, &rc.scd2, &err))
        goto out;
    if (!(dead = dlq_new(&rc.common, &err)))
        goto out;
    pipeline_init(&pipe, codec, rs, apply_rs, dead, rc.common.events_topic,
                  rc.common.devices_topic);
    pipeline_set_profiles_topic(&pipe, rc.common.profiles_topic);
    pipe.rules = rc.rules;
    pipe_ready = true;
    if (!(src = kafka_source_new(&rc.common, &rc.source, &pipe, &err)))
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
    kafka_source_close(src);
out:
    if (status && err.msg[0])
        log_error("%s", err.msg);
    catch_up_free(&cu);
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
