/*
 * runner.c — the run loop, outage handling and flush backoff (see runner.h).
 */
#include "cmd/runner.h"
#include "cmd/deployment.h"
#include "consumers/kafka_admin.h"
#include "lib/run_metrics.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

void runner_on_signal(int sig)
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

int runner_catch_up_init(catch_up *cu, rd_kafka_t *rk, const char *const *topics, int ntopics,
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

void runner_catch_up_free(catch_up *cu)
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
    /* Evicted months PostgreSQL lost (check_lost_months): when to look
     * again, when to repeat the error, how many there were. */
    double next_lost_check, next_lost_report;
    size_t lost;
    /* The automatic rebuild of lost months (a child `activity backfill`),
     * its range, when it may start again, its backoff. */
    pid_t rebuild_pid;
    int32_t rebuild_from, rebuild_to;
    double rebuild_at, rebuild_backoff;
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

/* The month after YYYYMM. */
static int32_t next_ym(int32_t ym)
{
    return ym % 100 == 12 ? (ym / 100 + 1) * 100 + 1 : ym + 1;
}

#define LOST_CHECK_SECONDS 10
#define LOST_REPORT_SECONDS 60
/* A failed automatic rebuild is tried again after this, doubling up to
 * the maximum. */
#define REBUILD_RETRY_SECONDS 10
#define REBUILD_RETRY_MAX_SECONDS 600
/* The claim on the rebuild (one instance of the prefix starts it) outlives
 * a dead claimer by this much; refreshed at every check meanwhile. */
#define REBUILD_CLAIM_MS 120000

/* `activity run`'s own command line (runner_set_command_line): the
 * automatic rebuild runs `activity backfill --from --to` with it. */
static int cmdline_argc;
static char **cmdline_argv;

void runner_set_command_line(int argc, char **argv)
{
    cmdline_argc = argc;
    cmdline_argv = argv;
}

/* Starts `activity backfill --from F --to T` with this run's options (its
 * environment and config file too), in a session of its own so that a
 * terminal's signals reach the live processor only: a range backfill
 * builds apart and swaps in one transaction (cmd/cmd_backfill.c), and on
 * success forgets the months it rebuilt. Returns the child's pid, or -1. */
static pid_t start_rebuild(int32_t from, int32_t to)
{
    char f[24], t[24];
    snprintf(f, sizeof f, "%04d-%02d", from / 100, from % 100);
    snprintf(t, sizeof t, "%04d-%02d", to / 100, to % 100);
    char **args = calloc((size_t)cmdline_argc + 8, sizeof *args);
    if (!args)
        return -1;
    int n = 0;
    args[n++] = "activity";
    args[n++] = "backfill";
    args[n++] = "--from";
    args[n++] = f;
    args[n++] = "--to";
    args[n++] = t;
    for (int i = 1; i < cmdline_argc; i++)
        if (strcmp(cmdline_argv[i], "--reset") != 0) /* done at this run's start */
            args[n++] = cmdline_argv[i];
    args[n] = NULL;
    /* The environment without ACTIVITY_RESET (a reset is this run's, at its
     * start), built before the fork: the child of a threaded process only
     * makes async-signal-safe calls until exec. */
    extern char **environ;
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **env = calloc(ne + 1, sizeof *env);
    if (!env) {
        free(args);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "ACTIVITY_RESET=", 15) != 0)
            env[k++] = environ[i];
    sigset_t none;
    sigemptyset(&none);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        /* The processor's sockets (the metrics listener, its connections)
         * are not the backfill's to keep open. */
        close_range(3, ~0U, 0);
        execve("/proc/self/exe", args, env);
        static const char msg[] = "activity backfill (automatic rebuild): exec failed\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(127);
    }
    free(env);
    free(args);
    return pid;
}

/* The automatic rebuild of the lost months (README "Lateness and
 * eviction"): one child at a time, started by the instance that claims it
 * in Redis, for the first run of consecutive lost months; a failure is
 * reported and retried with backoff (a retention that deleted the range's
 * start fails every time: the error says what to do). Not in `run
 * --until-caught-up`, which reports only. */
static void drive_rebuild(const run_config *rc, redis_state *rs, flush_control *fc,
                          const int32_t *months, size_t n, int32_t first_end)
{
    errbuf err = {{0}};
    double t = now_seconds();
    if (fc->rebuild_pid > 0) {
        int st;
        pid_t r = waitpid(fc->rebuild_pid, &st, WNOHANG);
        if (r == 0) {
            redis_state_claim(rs, "lostrebuild", REBUILD_CLAIM_MS, true, NULL, &err);
            return;
        }
        bool ok = r == fc->rebuild_pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (ok) {
            log_info("automatic rebuild of the lost months [%04d-%02d, %04d-%02d) done",
                     fc->rebuild_from / 100, fc->rebuild_from % 100, fc->rebuild_to / 100,
                     fc->rebuild_to % 100);
            fc->rebuild_backoff = 0;
        } else {
            fc->rebuild_backoff =
                fc->rebuild_backoff ? fc->rebuild_backoff * 2 : REBUILD_RETRY_SECONDS;
            if (fc->rebuild_backoff > REBUILD_RETRY_MAX_SECONDS)
                fc->rebuild_backoff = REBUILD_RETRY_MAX_SECONDS;
            fc->rebuild_at = t + fc->rebuild_backoff;
            log_error("automatic rebuild of the lost months [%04d-%02d, %04d-%02d) failed (%s %d; "
                      "its log lines are above): tried again in %.0f s",
                      fc->rebuild_from / 100, fc->rebuild_from % 100, fc->rebuild_to / 100,
                      fc->rebuild_to % 100,
                      r == fc->rebuild_pid && WIFEXITED(st) ? "exit status" : "signal",
                      r == fc->rebuild_pid && WIFEXITED(st)     ? WEXITSTATUS(st)
                      : r == fc->rebuild_pid && WIFSIGNALED(st) ? WTERMSIG(st)
                                                                : -1,
                      fc->rebuild_backoff);
        }
        fc->rebuild_pid = 0;
        redis_state_claim(rs, "lostrebuild", 0, false, NULL, &err);
    }
    if (!n || rc->until_caught_up || !cmdline_argv || t < fc->rebuild_at)
        return;
    bool got = false;
    if (redis_state_claim(rs, "lostrebuild", REBUILD_CLAIM_MS, false, &got, &err)) {
        log_warn("claiming the rebuild of the lost months: %s", err.msg);
        return;
    }
    if (!got)
        return; /* another instance rebuilds them */
    fc->rebuild_from = months[0];
    fc->rebuild_to = first_end;
    log_warn("rebuilding the lost months [%04d-%02d, %04d-%02d) from the topics automatically: "
             "activity backfill --from %04d-%02d --to %04d-%02d with this run's options",
             months[0] / 100, months[0] % 100, first_end / 100, first_end % 100, months[0] / 100,
             months[0] % 100, first_end / 100, first_end % 100);
    if ((fc->rebuild_pid = start_rebuild(months[0], first_end)) < 0) {
        log_error("starting the automatic rebuild failed (fork); tried again in %d s",
                  REBUILD_RETRY_SECONDS);
        fc->rebuild_pid = 0;
        fc->rebuild_at = t + REBUILD_RETRY_SECONDS;
        redis_state_claim(rs, "lostrebuild", 0, false, NULL, &err);
    }
}

/* Evicted months PostgreSQL lost (restored to before their eviction:
 * flush_plan_replay_all records them in Redis) are in neither store until
 * a range backfill rebuilds them, which forgets them. Never silent: while
 * any are recorded, an error naming the backfill commands (one per run of
 * consecutive months) every LOST_REPORT_SECONDS, the gauge
 * activity_evicted_months_lost and /readyz 503; the open months go on
 * being processed. Looked at every LOST_CHECK_SECONDS (one SMEMBERS), and
 * at once when `now` (PostgreSQL was just found behind). */
static void check_lost_months(const run_config *rc, redis_state *rs, flush_control *fc, bool now)
{
    double t = now_seconds();
    if (!now && t < fc->next_lost_check)
        return;
    fc->next_lost_check = t + LOST_CHECK_SECONDS;
    errbuf err = {{0}};
    int32_t *months;
    size_t n;
    if (redis_state_lost_months(rs, &months, &n, &err)) {
        log_warn("reading the evicted months postgresql lost: %s", err.msg);
        return;
    }
    if (n == 0 && fc->lost)
        log_info("the evicted months postgresql lost have all been rebuilt");
    int32_t first_end = n ? next_ym(months[0]) : 0;
    for (size_t i = 1; i < n && months[i] == first_end; i++)
        first_end = next_ym(months[i]);
    run_metrics_months_lost(n, n ? months[0] : 0, first_end);
    drive_rebuild(rc, rs, fc, months, n, first_end);
    if (n && (n != fc->lost || t >= fc->next_lost_report)) {
        char cmds[1024];
        size_t off = 0;
        cmds[0] = '\0';
        for (size_t i = 0; i < n && off < sizeof cmds;) {
            size_t j = i + 1;
            while (j < n && months[j] == next_ym(months[j - 1]))
                j++;
            int32_t end = next_ym(months[j - 1]);
            off += (size_t)snprintf(cmds + off, sizeof cmds - off,
                                    "%sactivity backfill --from %04d-%02d --to %04d-%02d",
                                    i ? "; " : "", months[i] / 100, months[i] % 100, end / 100,
                                    end % 100);
            i = j;
        }
        log_error("%zu evicted months of prefix '%s' are in neither redis nor postgresql "
                  "(postgresql was restored to before their eviction): their rows are missing "
                  "or stale until rebuilt from the topics by %s, with this run's options "
                  "(`activity run` starts it itself; `run --until-caught-up` does not). Open "
                  "months are processed meanwhile",
                  n, redis_state_prefix(rs), cmds);
        fc->next_lost_report = t + LOST_REPORT_SECONDS;
    }
    fc->lost = n;
    free(months);
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
            run_metrics_evictions(st.evicted_months);
            run_metrics_evicted_skipped(st.evicted_skipped);
            if (st.evicted_months)
                log_info("evicted %zu closed (key group, month) states from redis",
                         st.evicted_months);
            note_postgres(pg, fc, st.host_rows || st.user_keys || st.dim_changes);
            if (fc->failing)
                log_info("flush recovered");
            fc->failing = false;
            fc->backoff = 0;
            fc->rows += st.host_rows + st.user_rows;
            fc->seconds += st.seconds;
            check_lost_months(rc, rs, fc, false);
            if (st.host_rows || st.user_keys || st.dim_changes)
                log_info("flushed %zu host-month rows, %zu user-month keys (%zu rows) and %zu "
                         "dimension changes in %.3f s",
                         st.host_rows, st.user_keys, st.user_rows, st.dim_changes, st.seconds);
            return 0;
        }
        if (r == FLUSH_STATE_MISSING || r == FLUSH_STATE_PARTIAL)
            return r; /* nothing written; the caller rebuilds */
        if (r == FLUSH_POSTGRES_BEHIND) {
            check_lost_months(rc, rs, fc, true);
            continue; /* everything is marked dirty now: flush it */
        }
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

source_callbacks runner_source_callbacks(pipeline *pipe)
{
    return (source_callbacks){on_assign, on_recover, on_revoke, pipe};
}

static void store_positions(kafka_source *src, const pipeline *pipe)
{
    rd_kafka_topic_partition_list_t *positions = pipeline_positions(pipe);
    kafka_source_store_positions(src, positions);
    rd_kafka_topic_partition_list_destroy(positions);
}

/* Gives back the memory of idle batches beyond `keep` bytes, and the
 * allocator's free pages with it: glibc keeps freed heap memory (and raises
 * its mmap threshold after the first large free), so without the trim the
 * released batches would stay in the resident set. */
static void release_batches(pipeline *pipe, size_t keep)
{
    if (pipeline_release_batches(pipe, keep))
        malloc_trim(0);
}

/* pipeline_apply_end, timed for the metrics: from sending the batches
 * (*sent_at, 0 if nothing was in flight) and the wait for the replies. */
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
/* A batch being polled and folded ends after this long, so the loop
 * still reads the replies, flushes and reports on time while records
 * keep arriving. */
#define BATCH_MAX_SECONDS 1.0
/* How long a batch under way waits for librdkafka to refill an empty
 * queue before it ends (a fetch round trip on a local broker). */
#define BATCH_REFILL_MS 10

/* A progress line (backfill --from/--to): records so far, the share of
 * the offsets to read (catch-up targets from low to high) already read,
 * the rate and the time left at that rate. */
static void report_progress(pipeline *pipe, const catch_up *cu, double elapsed)
{
    int64_t total = 0, done = 0;
    for (size_t i = 0; i < cu->n; i++) {
        const catch_up_target *t = &cu->t[i];
        if (t->high <= t->low)
            continue;
        total += t->high - t->low;
        partition_state *ps = pipeline_find(pipe, t->topic, t->partition);
        int64_t at = ps && ps->position >= 0 ? ps->position : t->low;
        at = at < t->low ? t->low : at > t->high ? t->high : at;
        done += at - t->low;
    }
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    double rate = elapsed > 0 ? (double)pipe->stats.records / elapsed : 0;
    double offsets_rate = elapsed > 0 ? (double)done / elapsed : 0;
    char eta[32];
    if (done >= total)
        snprintf(eta, sizeof eta, "0 s");
    else if (offsets_rate > 0)
        snprintf(eta, sizeof eta, "%.1f s", (double)(total - done) / offsets_rate);
    else
        snprintf(eta, sizeof eta, "unknown");
    log_info("progress: %llu records (%llu events in range, %llu outside), %.1f%% of %lld "
             "offsets, %.0f records/s, ETA %s",
             (unsigned long long)pipe->stats.records, (unsigned long long)pipe->stats.events,
             (unsigned long long)pipe->stats.out_of_range, pct, (long long)total, rate, eta);
}

int runner_run(run_config *rc, pipeline *pipe, kafka_source *src, redis_state *rs,
               redis_state *apply_rs, pg_sink *pg, const catch_up *cu)
{
    double started = now_seconds(), last_progress = started;
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
    /* The folded strings of a batch are bounded (BATCH_SOFT_BYTES, far
     * below the 4 GiB that batch string offsets address), checked between
     * chunks: a chunk holds at most chunk_cap records of the largest size
     * validation lets through (a profile: ten --max-field-bytes strings). */
    size_t chunk_cap = BATCH_SOFT_BYTES / (11 * rc->rules.max_field_bytes + 4096);
    if (chunk_cap < 1)
        chunk_cap = 1;
    while (!stop_requested) {
        run_metrics_heartbeat();
        /* A flush due this round is best run with every batch applied and
         * idle (its rows then take the batches' memory, not more): no
         * records are polled in that round, so the round only reads the
         * replies of the batch in flight. Not while Redis is down: the
         * poll keeps the group membership alive. */
        bool flush_round = !redis_down && now_seconds() >= next_flush &&
                           now_seconds() >= fc.next_attempt && pipeline_in_flight(pipe);
        /* Up to a batch of messages, waiting only for the first: the batch
         * ends at --batch-size records or once its folded state (distinct
         * keys, not records: most records fold into keys already there)
         * holds rc->batch_bytes, checked between chunks. */
        double batch_deadline = now_seconds() + BATCH_MAX_SECONDS;
        for (size_t got = 0; !flush_round && !stop_requested && got < rc->batch_size &&
                             status == 0 && pipeline_pending_bytes(pipe) < rc->batch_bytes;) {
            size_t want = rc->batch_size - got < POLL_CHUNK ? rc->batch_size - got : POLL_CHUNK;
            if (want > chunk_cap)
                want = chunk_cap;
            /* The first poll of a batch waits for records only when no
             * batch is in flight (otherwise its replies are what to wait
             * for); later ones wait briefly for librdkafka to refill. */
            int wait_ms = got > 0 ? BATCH_REFILL_MS : pipeline_in_flight(pipe) ? 0 : 200;
            size_t n = kafka_source_poll(src, msgs, want, wait_ms);
            for (size_t i = 0; i < n; i++) {
                rd_kafka_message_t *m = msgs[i];
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
            /* Only an empty queue ends the batch early: librdkafka's prefetch
             * (an eighth of --max-memory) holds far fewer records than a
             * batch folds, so it is drained and refilled several times over
             * one batch; ending at the first short read made the batch
             * only as large as the prefetch, and Redis paid its per-batch
             * work (a Lua call per key group, a read and write per user
             * hash) for every ~12,000 records. */
            if (n == 0 || now_seconds() >= batch_deadline)
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
             * connection is retried. The same when PostgreSQL did not
             * answer a rehydration's read (late events of an evicted
             * month need it; README "Lateness and eviction"). */
            if (strncmp(err.msg, "postgres", 8) == 0) {
                log_warn("postgres did not answer the read of an evicted month's rows that late "
                         "events need; pausing consumption, retrying every second: %s",
                         err.msg);
            } else {
                log_warn("redis unavailable, pausing consumption until it is back: %s", err.msg);
                run_metrics_redis_up(false);
            }
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
        /* The batch just applied is idle: beyond two full batches (the one
         * folded meanwhile and the next), its memory goes back. */
        release_batches(pipe, 2 * rc->batch_capacity);
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
            /* A flush holds its rows while it runs: idle batches make room. */
            release_batches(pipe, 0);
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
        if (rc->progress_interval > 0 && now - last_progress >= rc->progress_interval) {
            report_progress(pipe, cu, now - started);
            last_progress = now;
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
        release_batches(pipe, 0);
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
    if (rc->progress_interval > 0)
        report_progress(pipe, cu, now_seconds() - started);
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
