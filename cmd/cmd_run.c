/*
 * cmd_run.c — `activity run`: the long-running processor's options and
 * wiring (Kafka source, pipeline, Redis state, PostgreSQL sink, metrics);
 * the loop itself is cmd/runner.c.
 */
#include "consumers/kafka_admin.h"
#include "consumers/kafka_source.h"
#include "processors/pipeline.h"
#include "cmd/flush.h"
#include "cmd/commands.h"
#include "cmd/runner.h"
#include "lib/config.h"
#include "lib/hll.h"
#include "cmd/deployment.h"
#include "lib/metrics_http.h"
#include "lib/run_metrics.h"
#include "sinks/pg_rehydrate.h"

#include <errno.h>

#include <limits.h>
#include <malloc.h>
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
    "  --allowed-lateness D    a partition's watermark is its latest event time minus D\n"
    "                          (<n>d, <n>h, <n>m or <n>s; default 3d; 0s..3650d): months\n"
    "                          before every watermark are closed (README \"Lateness and\n"
    "                          eviction\")\n"
    "  --evict-closed-months   delete a closed month's Redis state once PostgreSQL holds it,\n"
    "                          so Redis stays bounded; a later event for it brings its host\n"
    "                          and user back from PostgreSQL (activity_rehydrations_total),\n"
    "                          which must then be reachable (README \"Lateness and eviction\")\n"
    "  --keep-closed-months    keep every month's Redis state (the default, stated)\n"
    "  --exact-uniques-limit N keep a host-day's visitors as an exact set in Redis up to\n"
    "                          N, then as HyperLogLog registers; at least 1280, the\n"
    "                          sketches' EXPLICIT threshold, so the output does not\n"
    "                          depend on it (default: 1280)\n"
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
    OPT_LATENESS,
    OPT_EVICT,
    OPT_KEEP_CLOSED,
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
        {"allowed-lateness", required_argument, 0, OPT_LATENESS},
        {"evict-closed-months", no_argument, 0, OPT_EVICT},
        {"keep-closed-months", no_argument, 0, OPT_KEEP_CLOSED},
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
    rc->lateness_ms = REDIS_DEFAULT_LATENESS_MS;
    registry_options_defaults(&rc->registry);
    validation_defaults(&rc->rules);
    scd2_config_defaults(&rc->scd2);
    int opt;
    errbuf err = {{0}};
    if (config_start(&rc->common, "run", opts, &argc, &argv))
        return -1;
    while ((opt = config_next_option(argc, argv, opts, help)) != -1) {
        switch (opt) {
        case CONFIG_HELP:
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
        case OPT_LATENESS: {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            long long unit = *end == 'd'   ? 86400000LL
                             : *end == 'h' ? 3600000LL
                             : *end == 'm' ? 60000LL
                             : *end == 's' ? 1000LL
                                           : 0;
            if (errno || end == optarg || !unit || end[1] || v < 0 ||
                v > 3650LL * 86400000 / unit) {
                log_error("--allowed-lateness takes <n>d, <n>h, <n>m or <n>s, 0s..3650d (got '%s')",
                          optarg);
                return -1;
            }
            rc->lateness_ms = v * unit;
            break;
        }
        case OPT_EVICT:
            rc->evict = true;
            break;
        case OPT_KEEP_CLOSED:
            rc->evict = false;
            break;
        case OPT_EXACT:
            /* Below the sketch's EXPLICIT threshold the exact list of a host-day
             * would be gone before the sketch stops needing it. */
            if (!option_long(optarg, (long)HLL_EXPLICIT_MAX, LONG_MAX, &n)) {
                log_error("--exact-uniques-limit takes a count >= %zu (the EXPLICIT threshold "
                          "of the daily sketches, README \"Daily sketches\"), not '%s'",
                          (size_t)HLL_EXPLICIT_MAX, optarg);
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
    /* --max-memory, measured (heaptrack, /usr/bin/time) on 1,000,000 and 10,000,000 events:
     * an eighth for librdkafka's prefetch (each queued record also costs ~500 bytes of its
     * bookkeeping); a sixteenth for the folded state of the batch being folded (its distinct
     * keys: ~25 bytes per event of the generated shape, so ~150,000 events at the default),
     * whose arrays and maps may hold twice that, and the batch Redis applies meanwhile as much
     * again; the rest for the process itself (~15 MB of code, libraries and connections, and
     * the allocator's slack), the Redis commands and replies, and the flush, which runs with
     * every batch applied and its memory given back (cmd/runner.c). */
    size_t budget = (size_t)max_memory_mb << 20;
    rc->source.prefetch_bytes = budget / 8;
    rc->batch_bytes = budget / 16;
    if (rc->batch_bytes > BATCH_SOFT_BYTES)
        rc->batch_bytes = BATCH_SOFT_BYTES;
    rc->batch_capacity = 2 * rc->batch_bytes;
    if (rc->reset && !rc->until_caught_up) {
        log_error("--reset rebuilds from the topics and needs "
                  "--until-caught-up (or use activity backfill --reset)");
        return -1;
    }
    return 0;
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
    runner_set_command_line(argc, argv);
    return cmd_run_hooked(argc, argv, NULL);
}

int cmd_run_hooked(int argc, char **argv, const run_hooks *hooks)
{
    run_config rc;
    memset(&rc, 0, sizeof rc);
    /* One malloc arena for every thread. librdkafka's threads allocate the
     * fetched records and the main thread frees them: with an arena per
     * thread (glibc's default) the freed memory stayed in the fetching
     * threads' arenas, ~15 MB of the resident set at 10,000,000 events
     * (52 MB maximum RSS with one arena, 66-68 MB without; CPU within
     * noise). Set before any thread starts. And a fixed mmap threshold:
     * glibc raises its own after the first large free, so the batches'
     * arrays and maps and the flush's row buffers came from the heap, where
     * a growing buffer is copied (old and new both resident) and freed
     * memory stays; mmapped, they grow by mremap and are returned when
     * freed (the final flush of 10,000,000 events peaked at 60-65 MB before,
     * ~52 MB with it). */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    int pr = parse_args(argc, argv, &rc);
    if (pr != 0) {
        config_free(&rc.common);
        return pr > 0 ? 0 : 2;
    }
    errbuf err = {{0}};
    if (hooks && hooks->configure && hooks->configure(hooks->ctx, &rc, &err)) {
        log_error("%s", err.msg);
        config_free(&rc.common);
        return 1;
    }
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
    sa.sa_handler = runner_on_signal;
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
    /* --reset checks the layout after deleting the state: that is how state of
     * an older layout is rebuilt (README "Daily sketches"). */
    if (!(rs = redis_state_connect(rc.common.redis_url, rc.common.redis_prefix, &err)) ||
        (!rc.reset && redis_state_check_layout(rs, &err)) ||
        !(apply_rs = redis_state_connect(rc.common.redis_url, rc.common.redis_prefix, &err)))
        goto out;
    redis_state_set_exact_limit(apply_rs, rc.exact_limit);
    redis_state_set_lateness(apply_rs, rc.lateness_ms);
    redis_state_set_lateness(rs, rc.lateness_ms);
    redis_state_set_eviction(rs, rc.evict);
    int64_t newest_flush;
    if (!(pg = pg_sink_connect(rc.common.pg_dsn, &err)) ||
        pg_sink_set_timeouts(pg, (long)(rc.pg_lock_timeout * 1000),
                             (long)(rc.pg_statement_timeout * 1000), &err) ||
        pg_sink_migrate(pg, &err))
        goto out;
    /* Late events of evicted months bring their entities back from the
     * tables (README "Lateness and eviction"). */
    redis_state_set_rehydrate_reader(apply_rs, pg_rehydrate_read, pg_rehydrate_device_users, pg);
    redis_state_set_rehydrate_reader(rs, pg_rehydrate_read, pg_rehydrate_device_users, pg);
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
    pipe.lateness_ms = rc.lateness_ms;
    pipe_ready = true;
    source_callbacks callbacks = runner_source_callbacks(&pipe);
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
        runner_catch_up_init(&cu, kafka_source_handle(src), existing, n_existing, &err))
        goto out;
    if (hooks && hooks->prepare &&
        hooks->prepare(hooks->ctx, &rc, kafka_source_handle(src), rs, &pipe, &cu, &err))
        goto out;
    if (kafka_source_subscribe(src, existing, n_existing, &err))
        goto out;
    log_info("consuming %s%s%s%s%s as group %s; flushing every %.1f s%s", existing[0],
             n_existing > 1 ? ", " : "", n_existing > 1 ? existing[1] : "",
             n_existing > 2 ? ", " : "", n_existing > 2 ? existing[2] : "", rc.source.group,
             rc.flush_interval, rc.until_caught_up ? " until caught up" : "");
    status = runner_run(&rc, &pipe, src, rs, apply_rs, pg, &cu);
    deployment_release(kafka_source_handle(src), pg, rc.source.group, rc.common.redis_prefix);
    kafka_source_close(src);
out:
    if (status && err.msg[0])
        log_error("%s", err.msg);
    runner_catch_up_free(&cu);
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
