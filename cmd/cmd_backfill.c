/*
 * cmd_backfill.c — `activity backfill`: process what the topics hold and
 * stop; with --reset, rebuild every table from the topics; with
 * --from/--to, rebuild whole months of the sink tables from what the
 * topics retain, beside the live processor.
 *
 * Plain and --reset are `activity run --until-caught-up` under the name
 * users look for when they replay retained topics. A plain backfill is safe
 * to repeat: fences make records already applied a no-op.
 *
 * A range backfill must not disturb the live deployment, so it builds the
 * range apart and swaps it in: `activity run` (cmd_run_hooked) under a
 * scratch Redis prefix (<prefix>#backfill), a scratch consumer group
 * (<group>-backfill: the live group is never joined nor committed to) and
 * a scratch PostgreSQL schema (the session's search_path, through
 * PGOPTIONS), starting each events partition at the offset of --from's
 * timestamp (scratch fences set there) and folding only the events whose
 * event time is in the range; then one transaction replaces the range's
 * rows of the live month-keyed tables (sinks/pg_backfill.c) and the
 * scratch state is dropped.
 */
#include "cmd/commands.h"
#include "cmd/runner.h"
#include "consumers/kafka_times.h"
#include "sinks/pg_backfill.h"
#include "lib/civil_time.h"
#include "lib/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char help[] =
    "usage: activity backfill [--reset] [run options]\n"
    "       activity backfill --from MONTH --to MONTH [--progress-interval SEC] [run options]\n"
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
    "  --from MONTH --to MONTH  rebuild the months [from, to) of the month-keyed\n"
    "            sink tables from the events the topics retain, beside a live\n"
    "            processor: MONTH is YYYY-MM or the first day of a month\n"
    "            (YYYY-MM-01); --to is exclusive (--from 2024-01-01 --to\n"
    "            2024-02-01 rebuilds January 2024). Reads the events topic from\n"
    "            --from's timestamp to its end at start (late events included),\n"
    "            in a scratch Redis prefix (<prefix>#backfill), consumer group\n"
    "            (<group>-backfill) and PostgreSQL schema, then replaces the\n"
    "            range's rows in one transaction. The live group, fences and the\n"
    "            other months are not touched. Refused when an events partition\n"
    "            no longer holds the start of the range (retention deleted it).\n"
    "  --progress-interval SEC  with --from/--to: a progress line on stderr this\n"
    "            often (default: 5)\n"
    "\n"
    "Every option of `activity run` applies (see activity run --help).\n";

/* Parses a month bound: YYYY-MM or YYYY-MM-01 (a range is whole months).
 * Returns 0 with *ms (UTC midnight of the month's first day) and iso
 * (YYYY-MM-01), or -1 with err set. */
static int parse_month(const char *flag, const char *s, int64_t *ms, char iso[11], errbuf *err)
{
    int y, m, d = 1, used = 0;
    size_t len = strlen(s);
    bool ok = false;
    if (len == 7)
        ok = sscanf(s, "%4d-%2d%n", &y, &m, &used) == 2 && used == 7;
    else if (len == 10)
        ok = sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) == 3 && used == 10;
    if (!ok || y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
        err_set(err, "%s %s: expected a month, YYYY-MM or YYYY-MM-01", flag, s);
        return -1;
    }
    if (d != 1) {
        err_set(err,
                "%s %s is not the first day of a month: a range backfill rebuilds whole months "
                "(give %04d-%02d-01 or %04d-%02d)",
                flag, s, y, m, y, m);
        return -1;
    }
    *ms = days_from_civil(y, m, 1) * 86400000LL;
    snprintf(iso, 11, "%04d-%02d-01", y, m);
    return 0;
}

typedef struct {
    int64_t from_ms, to_ms;
    char from[11], to[11];
    double progress_interval;
    const char *live_prefix, *live_group;
    char scratch_prefix[256], scratch_group[256], scratch_schema[64];
    char *redis_url; /* copied: the run's options are gone when the scratch is dropped */
    char *prefix;    /* the live prefix, copied likewise */
    pg_backfill *pgb;
    char *old_pgoptions; /* PGOPTIONS before the scratch run (NULL: unset) */
    bool pgoptions_set;
} range_backfill;

/* The scratch schema's name: PostgreSQL identifiers are at most 63 bytes
 * and the name travels in PGOPTIONS, so it is the prefix's safe characters
 * plus a hash of the whole prefix (two prefixes never share one). */
static void scratch_schema_name(const char *prefix, char out[64])
{
    uint32_t h = 2166136261u;
    for (const char *c = prefix; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    char safe[33];
    size_t n = 0;
    for (const char *c = prefix; *c && n < sizeof safe - 1; c++)
        safe[n++] = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? *c
                    : (*c >= 'A' && *c <= 'Z')                           ? (char)(*c - 'A' + 'a')
                                                                         : '_';
    safe[n] = '\0';
    snprintf(out, 64, "activity_backfill_%s_%08x", safe, h);
}

static int drop_scratch_redis(const range_backfill *b, errbuf *err)
{
    redis_state *rs = redis_state_connect(b->redis_url, b->scratch_prefix, err);
    if (!rs)
        return -1;
    int rc = redis_state_drop_all(rs, err);
    redis_state_free(rs);
    return rc;
}

static int range_configure(void *ctx, run_config *rc, errbuf *err)
{
    range_backfill *b = ctx;
    if (rc->reset) {
        err_set(err, "--reset rebuilds everything; it does not go with --from/--to");
        return -1;
    }
    b->live_prefix = rc->common.redis_prefix;
    b->live_group = rc->source.group;
    if (!(b->redis_url = strdup(rc->common.redis_url)) ||
        !(b->prefix = strdup(rc->common.redis_prefix))) {
        err_set(err, "out of memory");
        return -1;
    }
    if ((size_t)snprintf(b->scratch_prefix, sizeof b->scratch_prefix, "%s#backfill",
                         b->live_prefix) >= sizeof b->scratch_prefix ||
        (size_t)snprintf(b->scratch_group, sizeof b->scratch_group, "%s-backfill", b->live_group) >=
            sizeof b->scratch_group) {
        err_set(err, "--redis-prefix or --group is too long for the scratch names");
        return -1;
    }
    scratch_schema_name(b->live_prefix, b->scratch_schema);
    if (!(b->pgb = pg_backfill_open(rc->common.pg_dsn, b->live_prefix, err)))
        return -1;
    /* A leftover of an interrupted backfill goes first. */
    if (pg_backfill_scratch_create(b->pgb, b->scratch_schema, err) || drop_scratch_redis(b, err))
        return -1;
    const char *old = getenv("PGOPTIONS");
    if (old && !(b->old_pgoptions = strdup(old))) {
        err_set(err, "out of memory");
        return -1;
    }
    char opts[512];
    snprintf(opts, sizeof opts, "%s%s-c search_path=%s", old ? old : "", old ? " " : "",
             b->scratch_schema);
    if (setenv("PGOPTIONS", opts, 1)) {
        err_set(err, "setting PGOPTIONS failed");
        return -1;
    }
    b->pgoptions_set = true;
    if (pg_backfill_check_scratch_session(rc->common.pg_dsn, b->scratch_schema, err))
        return -1;
    log_info("backfill of [%s, %s): scratch redis prefix '%s', consumer group '%s', "
             "postgresql schema %s",
             b->from, b->to, b->scratch_prefix, b->scratch_group, b->scratch_schema);
    /* The scratch state must keep every month of the range until the swap:
     * evicting one closed mid-range would leave out its late events read
     * after. And the live processor serves the metrics address given with
     * the same options (the automatic rebuild of lost months runs this
     * with the run's command line). */
    if (rc->evict)
        log_info("--evict-closed-months does not apply to the scratch state of a range backfill");
    rc->evict = false;
    rc->metrics_addr = NULL;
    rc->common.redis_prefix = b->scratch_prefix;
    rc->source.group = b->scratch_group;
    rc->source.instance_id = NULL;
    rc->until_caught_up = true;
    rc->progress_interval = b->progress_interval;
    return 0;
}

static int range_prepare(void *ctx, const run_config *rc, rd_kafka_t *rk, redis_state *rs,
                         pipeline *pipe, catch_up *cu, errbuf *err)
{
    range_backfill *b = ctx;
    const char *topic = rc->common.events_topic;
    kafka_time_start *s;
    int n;
    if (kafka_offsets_for_time(rk, topic, b->from_ms, &s, &n, err))
        return -1;
    /* Refused when a partition lost records (low > 0) and its first
     * retained record is already at or after --from: the deleted ones may
     * have been of the range, and a rebuild without them would be wrong. */
    for (int i = 0; i < n; i++)
        if (s[i].low > 0 && s[i].start <= s[i].low) {
            err_set(err,
                    "the events topic %s no longer holds the start of the range: partition %d "
                    "begins at offset %lld (the records before it were deleted by retention "
                    "or delete-records), and its first retained record is already at or after "
                    "--from %s, so events of the range may be gone; nothing was changed. "
                    "Choose a later --from, or restore the months from a backup",
                    topic, s[i].partition, (long long)s[i].low, b->from);
            free(s);
            return -1;
        }
    int64_t to_read = 0;
    for (int i = 0; i < n; i++) {
        int64_t fences[KEY_GROUPS];
        for (int g = 0; g < KEY_GROUPS; g++)
            fences[g] = -1;
        if (s[i].start > 0 &&
            redis_state_advance_fences(rs, topic, s[i].partition, s[i].start, fences, err)) {
            free(s);
            return -1;
        }
        for (size_t t = 0; t < cu->n; t++)
            if (strcmp(cu->t[t].topic, topic) == 0 && cu->t[t].partition == s[i].partition)
                cu->t[t].low = s[i].start;
        to_read += s[i].high - s[i].start;
    }
    free(s);
    /* The browser join needs every device: the live state may know devices
     * whose records the topic no longer holds. */
    for (size_t t = 0; t < cu->n; t++)
        if (strcmp(cu->t[t].topic, rc->common.devices_topic) == 0 && cu->t[t].low > 0)
            log_warn("the devices topic %s [%d] no longer holds its first %lld records: "
                     "events of devices known only from them get no browser in the rebuilt "
                     "months (user_devices_cumulated)",
                     cu->t[t].topic, cu->t[t].partition, (long long)cu->t[t].low);
    pipeline_set_event_range(pipe, b->from_ms, b->to_ms);
    log_info("reading %lld records of %s (from the offsets of %s's timestamp to the end), "
             "keeping the events of [%s, %s)",
             (long long)to_read, topic, b->from, b->from, b->to);
    return 0;
}

static void restore_pgoptions(range_backfill *b)
{
    if (!b->pgoptions_set)
        return;
    if (b->old_pgoptions)
        setenv("PGOPTIONS", b->old_pgoptions, 1);
    else
        unsetenv("PGOPTIONS");
    b->pgoptions_set = false;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Splits --from/--to/--progress-interval off argv (into b); the rest is
 * for `activity run`, behind "run --until-caught-up". */
static int range_args(int argc, char **argv, range_backfill *b, char **rest, int *n_rest,
                      bool *range, errbuf *err)
{
    const char *from = NULL, *to = NULL;
    bool progress = false;
    b->progress_interval = 5;
    *n_rest = 0;
    rest[(*n_rest)++] = "run";
    rest[(*n_rest)++] = "--until-caught-up";
    for (int i = 1; i < argc; i++) {
        const char *names[3] = {"--from", "--to", "--progress-interval"};
        const char *value = NULL;
        int which = -1;
        for (int k = 0; k < 3 && which < 0; k++) {
            size_t l = strlen(names[k]);
            if (strcmp(argv[i], names[k]) == 0) {
                if (i + 1 >= argc) {
                    err_set(err, "%s needs a value", names[k]);
                    return -1;
                }
                which = k;
                value = argv[++i];
            } else if (strncmp(argv[i], names[k], l) == 0 && argv[i][l] == '=') {
                which = k;
                value = argv[i] + l + 1;
            }
        }
        if (which == 0)
            from = value;
        else if (which == 1)
            to = value;
        else if (which == 2) {
            progress = true;
            char *end;
            b->progress_interval = strtod(value, &end);
            if (*end || end == value || !(b->progress_interval > 0)) {
                err_set(err, "--progress-interval %s: expected seconds above 0", value);
                return -1;
            }
        } else
            rest[(*n_rest)++] = argv[i];
    }
    rest[*n_rest] = NULL;
    *range = from || to;
    if (!*range) {
        if (progress) {
            err_set(err, "--progress-interval goes with --from/--to");
            return -1;
        }
        return 0;
    }
    if (!from || !to) {
        err_set(err, "--from and --to go together");
        return -1;
    }
    if (parse_month("--from", from, &b->from_ms, b->from, err) ||
        parse_month("--to", to, &b->to_ms, b->to, err))
        return -1;
    if (b->to_ms <= b->from_ms) {
        err_set(err, "--to %s must be after --from %s (the range is [from, to))", to, from);
        return -1;
    }
    return 0;
}

/* The range's months are rebuilt: those the live prefix recorded lost
 * (PostgreSQL restored to before their eviction, README "Lateness and
 * eviction") are not any more, and the live processors stop reporting
 * them. */
static int forget_lost(const range_backfill *b)
{
    errbuf err = {{0}};
    int fy, fm, ty, tm;
    sscanf(b->from, "%4d-%2d", &fy, &fm);
    sscanf(b->to, "%4d-%2d", &ty, &tm);
    size_t n = 0;
    redis_state *rs = redis_state_connect(b->redis_url, b->prefix, &err);
    if (!rs || redis_state_forget_lost_months(rs, fy * 100 + fm, ty * 100 + tm, &n, &err)) {
        log_error("the rows of [%s, %s) were replaced, but forgetting them among the evicted "
                  "months postgresql lost failed (the live processor goes on reporting them; "
                  "run the backfill again): %s",
                  b->from, b->to, err.msg);
        redis_state_free(rs);
        return 1;
    }
    redis_state_free(rs);
    if (n)
        log_info("%zu of the evicted months postgresql lost were rebuilt", n);
    return 0;
}

static int range_finish(range_backfill *b, double started)
{
    errbuf err = {{0}};
    pg_backfill_table_count counts[16];
    size_t n = 0;
    double t0 = now_mono();
    if (pg_backfill_swap(b->pgb, b->scratch_schema, b->from, b->to, counts, 16, &n, &err)) {
        log_error("replacing the rows of [%s, %s) failed, nothing was changed: %s", b->from, b->to,
                  err.msg);
        return 1;
    }
    double swap = now_mono() - t0;
    char tables[1024];
    size_t off = 0;
    tables[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof tables; i++)
        off +=
            (size_t)snprintf(tables + off, sizeof tables - off, "%s%s %lld -> %lld", i ? ", " : "",
                             counts[i].table, counts[i].deleted, counts[i].inserted);
    log_info("backfill of [%s, %s) done in %.1f s (swap %.2f s): rows replaced per table "
             "(before -> after): %s",
             b->from, b->to, now_mono() - started, swap, tables);
    return forget_lost(b);
}

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
    range_backfill b;
    memset(&b, 0, sizeof b);
    errbuf err = {{0}};
    int n_args;
    bool range;
    if (range_args(argc, argv, &b, args, &n_args, &range, &err)) {
        log_error("%s", err.msg);
        free(args);
        return 2;
    }
    if (!range) {
        int rc = cmd_run(n_args, args);
        free(args);
        return rc;
    }
    double started = now_mono();
    run_hooks hooks = {range_configure, range_prepare, &b};
    int rc = cmd_run_hooked(n_args, args, &hooks);
    restore_pgoptions(&b);
    if (rc == 0)
        rc = range_finish(&b, started);
    else if (b.pgb)
        log_error("the backfill of [%s, %s) stopped; the live tables were not changed", b.from,
                  b.to);
    /* The scratch state goes whatever happened (the next run would drop it
     * first anyway). */
    if (b.pgb &&
        (pg_backfill_scratch_drop(b.pgb, b.scratch_schema, &err) || drop_scratch_redis(&b, &err)))
        log_warn("dropping the scratch state: %s", err.msg);
    pg_backfill_free(b.pgb);
    free(b.old_pgoptions);
    free(b.redis_url);
    free(b.prefix);
    free(args);
    return rc;
}
