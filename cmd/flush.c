/*
 * flush.c — one flush (see flush.h): plan, write, finish.
 */
#include "cmd/flush.h"

#include "lib/failpoint.h"

#include <string.h>
#include <time.h>

int flush_once(redis_state *rs, pg_sink *pg, const char *const *replay_topics, flush_stats *stats,
               bool *pg_failed, errbuf *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *pg_failed = false;
    memset(stats, 0, sizeof *stats);
    err->msg[0] = '\0';
    flush_plan plan;
    flush_payload p;
    memset(&p, 0, sizeof p);
    const char *prefix = redis_state_prefix(rs);
    int64_t held;
    int rc = flush_plan_take(rs, &plan, err);
    if (rc)
        goto out;
    failpoint("flush-after-take");
    if (plan.n_groups == 0 && !pg_sink_dims_pending(pg)) {
        /* Nothing to write; still, a quiet processor learns here that
         * Redis lost its state (no apply would tell it). */
        int present = redis_state_layout_present(rs, err);
        rc = present < 0 ? -1 : present ? 0 : FLUSH_STATE_MISSING;
        if (rc == FLUSH_STATE_MISSING)
            err_set(err, "the layout marker %s:meta is gone", prefix);
        /* ... and that PostgreSQL went back in time. */
        if (rc == 0 && pg_sink_fence_token(pg, prefix, &held, err)) {
            *pg_failed = true;
            rc = -1;
        } else if (rc == 0 && held < plan.committed) {
            rc = flush_plan_replay_all(rs, replay_topics, held, plan.committed, err);
        } else if (rc == 0 && redis_state_evict_closed(rs, &stats->evicted_months, err)) {
            rc = -1;
        }
        goto out;
    }
    if ((rc = flush_plan_build(rs, &plan, err)))
        goto out;
    rc = -1;
    if (flush_payload_build(&p, &plan))
        goto out;
    int written = pg_sink_write(pg, &p, prefix, plan.token, plan.committed, &held, err);
    if (written < 0) {
        *pg_failed = true;
        goto out;
    }
    if (written == PG_SINK_BEHIND) {
        rc = flush_plan_replay_all(rs, replay_topics, held, plan.committed, err);
        goto out;
    }
    if (written > 0) {
        /* Another instance's flush with a newer token committed first; what
         * this one took stays in the flushing sets for the next flush. If
         * Redis lost its token counter, move it past PostgreSQL's. */
        int64_t newest;
        if (pg_sink_fence_token(pg, prefix, &newest, err) == 0)
            redis_state_raise_flush_token(rs, newest, err);
        rc = 1;
        goto out;
    }
    failpoint("flush-after-commit");
    if (flush_plan_finish(rs, &plan, err))
        goto out;
    /* What this flush committed may complete a closed month. */
    if (redis_state_evict_closed(rs, &stats->evicted_months, err))
        goto out;
    stats->evicted_skipped = plan.evicted_skipped;
    stats->host_rows = p.n_hosts;
    stats->user_keys = p.n_user_keys;
    stats->user_rows = p.n_users;
    stats->dim_changes = p.n_dims[DIM_DEVICES] + p.n_dims[DIM_USERS];
    stats->dim_device_changes = p.n_dims[DIM_DEVICES];
    stats->dim_user_changes = p.n_dims[DIM_USERS];
    rc = 0;
out:
    if (rc < 0 && !err->msg[0])
        err_set(err, "flush: out of memory");
    flush_plan_free(&plan);
    flush_payload_free(&p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    return rc;
}
