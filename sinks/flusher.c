/*
 * flusher.c — one flush (see flusher.h).
 */
#include "sinks/flusher.h"

#include "processors/batch.h"
#include "processors/bytes_map.h"
#include "lib/civil_time.h"
#include "lib/failpoint.h"
#include "lib/grow.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int32_t month;
    int64_t user;
} user_month;

typedef struct {
    /* host months to flush */
    host_row *hosts;
    size_t n_hosts, cap_hosts;
    /* user months to flush, deduplicated */
    user_month *users;
    size_t n_users, cap_users;
    bytes_map user_index;
    /* devices whose arrival re-flushes the users waiting on them */
    bytes_map new_devices;
    /* devices whose browser changed: their users are re-flushed (one scan) */
    bytes_map changed_devices;
    redis_strings waiting[KEY_GROUPS]; /* waiting sets read, per device group */
    /* members of waiting sets resolved by this flush, to forget after commit */
    const char **resolved;
    size_t *resolved_len;
    uint32_t *resolved_group;
    size_t n_resolved, cap_resolved;
    /* the flushing sets taken, kept alive while rows point into them */
    redis_strings *taken;
    size_t n_taken;
    uint32_t groups[KEY_GROUPS];
    size_t n_groups;
    /* groups whose flushing set holds "D": they took dimension changes */
    uint32_t dim_groups[KEY_GROUPS];
    size_t n_dim_groups;
    bool group_has_dims;
    host_days *days; /* hosts[i]'s values */
    /* dirty entities Redis holds no state for (it lost it) */
    size_t missing_hosts, missing_users;
} flush_work;

static bool parse_month(const char *s, size_t len, int32_t *month)
{
    if (len < 6)
        return false;
    int y = 0, m = 0;
    for (int i = 0; i < 4; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        y = y * 10 + (s[i] - '0');
    }
    for (int i = 4; i < 6; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        m = m * 10 + (s[i] - '0');
    }
    if (m < 1 || m > 12)
        return false;
    *month = month_index(y, m);
    return true;
}

static bool parse_i64(const char *s, size_t len, int64_t *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    *out = strtoll(tmp, &end, 10);
    return *end == '\0';
}

static int add_user(flush_work *w, int32_t month, int64_t user)
{
    unsigned char key[12];
    memcpy(key, &month, 4);
    memcpy(key + 4, &user, 8);
    bool inserted;
    if (!bytes_map_upsert(&w->user_index, key, sizeof key, 0, &inserted))
        return -1;
    if (!inserted)
        return 0;
    if (GROW_ONE(w->users, w->n_users, w->cap_users, 256))
        return -1;
    w->users[w->n_users++] = (user_month){month, user};
    return 0;
}

static int add_user_cb(void *ctx, int32_t month, int64_t user)
{
    return add_user(ctx, month, user);
}

/* Members "device|YYYYMM:user" of a waiting set: the ones whose device has
 * just arrived re-flush their user month. */
static int add_waiting_users(flush_work *w, uint32_t group, const redis_strings *members)
{
    for (size_t i = 0; i < members->n; i++) {
        const redis_str *m = &members->v[i];
        const char *bar = memchr(m->ptr, '|', m->len);
        int64_t device, user;
        int32_t month;
        if (!bar || !parse_i64(m->ptr, (size_t)(bar - m->ptr), &device) ||
            !bytes_map_find(&w->new_devices, &device, sizeof device))
            continue;
        size_t rest = m->len - (size_t)(bar + 1 - m->ptr);
        if (rest < 8 || !parse_month(bar + 1, 6, &month) || bar[7] != ':' ||
            !parse_i64(bar + 8, rest - 7, &user))
            continue;
        if (add_user(w, month, user))
            return -1;
        if (w->n_resolved == w->cap_resolved) {
            size_t nc = w->cap_resolved ? w->cap_resolved * 2 : 256;
            const char **a = realloc(w->resolved, nc * sizeof *a);
            if (a)
                w->resolved = a;
            size_t *b = a ? realloc(w->resolved_len, nc * sizeof *b) : NULL;
            if (b)
                w->resolved_len = b;
            uint32_t *c = b ? realloc(w->resolved_group, nc * sizeof *c) : NULL;
            if (!c)
                return -1;
            w->resolved_group = c;
            w->cap_resolved = nc;
        }
        w->resolved[w->n_resolved] = m->ptr;
        w->resolved_len[w->n_resolved] = m->len;
        w->resolved_group[w->n_resolved++] = group;
    }
    return 0;
}

/* Members: h<YYYYMM>:<host>, u<YYYYMM>:<user>, n<device>, c<device>. */
static int classify(flush_work *w, const redis_strings *set)
{
    for (size_t i = 0; i < set->n; i++) {
        const char *s = set->v[i].ptr;
        size_t len = set->v[i].len;
        int32_t month;
        int64_t id;
        if ((s[0] == 'h' || s[0] == 'u') && len > 8 && s[7] == ':' &&
            parse_month(s + 1, 6, &month)) {
            if (s[0] == 'h') {
                if (GROW_ONE(w->hosts, w->n_hosts, w->cap_hosts, 256))
                    return -1;
                host_row *hm = &w->hosts[w->n_hosts++];
                memset(hm, 0, sizeof *hm);
                hm->host = s + 8;
                hm->host_len = len - 8;
                hm->month = month;
            } else if (parse_i64(s + 8, len - 8, &id) && add_user(w, month, id)) {
                return -1;
            }
        } else if (s[0] == 'n' && parse_i64(s + 1, len - 1, &id)) {
            bool inserted;
            if (!bytes_map_upsert(&w->new_devices, &id, sizeof id, 0, &inserted))
                return -1;
        } else if (s[0] == 'c' && parse_i64(s + 1, len - 1, &id)) {
            bool inserted;
            if (!bytes_map_upsert(&w->changed_devices, &id, sizeof id, 0, &inserted))
                return -1;
        } else if (s[0] == 'D' && len == 1) {
            w->group_has_dims = true;
        } else {
            log_warn("flush: ignoring unrecognised dirty marker of %zu bytes", len);
        }
    }
    return 0;
}

typedef struct {
    int64_t device;
    uint32_t mask;
} device_mask;

/* Appends the pairs of "device=mask,device=mask" to (*out, *n, *cap).
 * Returns 0; -1 when the value is not in that format (state this process
 * cannot read must stop the flush, never lose a device); -2 when out of
 * memory. */
static int append_device_masks(const char *s, size_t len, device_mask **out, size_t *n, size_t *cap)
{
    const char *p = s, *end = s ? s + len : s;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        int64_t dev, mask;
        if (!eq || !parse_i64(p, (size_t)(eq - p), &dev) ||
            !parse_i64(eq + 1, (size_t)(stop - eq - 1), &mask) || mask < 0 || mask > UINT32_MAX)
            return -1;
        if (grow((void **)out, cap, *n + 1, sizeof **out, 256))
            return -2;
        (*out)[(*n)++] = (device_mask){dev, (uint32_t)mask};
        p = stop + 1;
    }
    return 0;
}

/* Orders browsers: null first, then by bytes; a shorter prefix first. */
static int cmp_browser(opt_str a, opt_str b)
{
    if (a.present != b.present)
        return a.present ? 1 : -1;
    if (!a.present)
        return 0;
    size_t n = a.len < b.len ? a.len : b.len;
    int r = memcmp(a.ptr, b.ptr, n);
    if (r)
        return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

typedef struct {
    opt_str browser;
    uint32_t mask;
} browser_mask;

static int cmp_browser_mask(const void *x, const void *y)
{
    return cmp_browser(((const browser_mask *)x)->browser, ((const browser_mask *)y)->browser);
}

typedef struct {
    int64_t device;
    int32_t month;
    int64_t user;
} waiter;

/* Rows of one user month: its known devices' masks OR-ed per browser. The
 * devices are sorted by browser, so grouping is n log n in the user's
 * devices, whatever their number (a shared or bot id can have thousands). */
static int encode_user_month(flush_payload *p, const user_month_state *um, const device_mask *dm,
                             size_t n, char *const *dev_vals, const size_t *dev_lens,
                             const uint32_t *dev_slot, browser_mask **bm, size_t *bm_cap)
{
    if (rows_encode_user_key(&p->user_keys, um->user_id, um->month))
        return -1;
    p->n_user_keys++;
    size_t nb = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t slot = dev_slot[k];
        device_record dev;
        if (!dev_vals[slot])
            continue; /* unknown device: not in the inner join */
        if (!device_value_decode(dev_vals[slot], dev_lens[slot], &dev)) {
            log_error("flush: device %lld has a malformed stored value (%zu bytes); its "
                      "user rows cannot be built",
                      (long long)dm[k].device, dev_lens[slot]);
            return -1;
        }
        if (grow((void **)bm, bm_cap, nb + 1, sizeof **bm, 64))
            return -1;
        (*bm)[nb++] = (browser_mask){dev.browser_type, dm[k].mask};
    }
    qsort(*bm, nb, sizeof **bm, cmp_browser_mask);
    for (size_t b = 0; b < nb;) {
        user_row row = {um->user_id, um->month, (*bm)[b].browser, 0};
        size_t e = b;
        while (e < nb && cmp_browser((*bm)[e].browser, row.browser_type) == 0)
            row.mask |= (*bm)[e++].mask;
        if (rows_encode_user(&p->users, &row))
            return -1;
        p->n_users++;
        b = e;
    }
    return 0;
}

/* Resolves devices of every flushed user month and encodes the user rows. */
static int build_user_rows(redis_state *rs, flush_work *w, flush_payload *p, errbuf *err)
{
    if (!w->n_users)
        return 0;
    int rc = -1;
    user_month_state *um = calloc(w->n_users, sizeof *um);
    size_t *first = calloc(w->n_users + 1, sizeof *first); /* user i: dm[first[i]..first[i+1]) */
    device_mask *dm = NULL;
    size_t dm_cap = 0;
    uint32_t *dm_slot = NULL; /* dm[k]'s device in dev_ids / dev_vals */
    int64_t *dev_ids = NULL;
    size_t n_dev = 0, cap_dev = 0;
    char **dev_vals = NULL;
    size_t *dev_lens = NULL;
    waiter *wait = NULL;
    size_t n_wait = 0, cap_wait = 0;
    browser_mask *bm = NULL;
    size_t bm_cap = 0;
    bytes_map dev_index;
    bytes_map_init(&dev_index);
    if (!um || !first)
        goto out;
    for (size_t i = 0; i < w->n_users; i++) {
        um[i].user_id = w->users[i].user;
        um[i].month = w->users[i].month;
    }
    if (redis_state_read_user_months(rs, um, w->n_users, err))
        goto out;
    /* Every user's "device=mask,..." value parsed once, into one array. */
    size_t n_dm = 0;
    for (size_t i = 0; i < w->n_users; i++) {
        first[i] = n_dm;
        int pr = append_device_masks(um[i].devices, um[i].devices_len, &dm, &n_dm, &dm_cap);
        if (pr == -1)
            err_set(err, "flush: user %lld has a malformed device list in Redis (%zu bytes)",
                    (long long)um[i].user_id, um[i].devices_len);
        if (pr)
            goto out;
    }
    first[w->n_users] = n_dm;
    if (!(dm_slot = malloc((n_dm ? n_dm : 1) * sizeof *dm_slot)))
        goto out;
    for (size_t k = 0; k < n_dm; k++) {
        bool inserted;
        uint32_t *slot = bytes_map_upsert(&dev_index, &dm[k].device, 8, (uint32_t)n_dev, &inserted);
        if (!slot)
            goto out;
        if (inserted) {
            if (GROW_ONE(dev_ids, n_dev, cap_dev, 256))
                goto out;
            dev_ids[n_dev++] = dm[k].device;
        }
        dm_slot[k] = *slot;
    }
    dev_vals = calloc(n_dev ? n_dev : 1, sizeof *dev_vals);
    dev_lens = calloc(n_dev ? n_dev : 1, sizeof *dev_lens);
    if (!dev_vals || !dev_lens ||
        redis_state_read_devices(rs, dev_ids, n_dev, dev_vals, dev_lens, err))
        goto out;

    /* Users on a device nobody has described yet wait for it; the device's
     * arrival re-flushes them. */
    for (size_t i = 0; i < w->n_users; i++)
        for (size_t k = first[i]; k < first[i + 1]; k++) {
            if (dev_vals[dm_slot[k]])
                continue;
            if (GROW_ONE(wait, n_wait, cap_wait, 256))
                goto out;
            wait[n_wait++] = (waiter){dm[k].device, um[i].month, um[i].user_id};
        }
    if (n_wait) {
        int64_t *wd = malloc(n_wait * sizeof *wd), *wu = malloc(n_wait * sizeof *wu);
        int32_t *wm = malloc(n_wait * sizeof *wm);
        char **again = calloc(n_wait, sizeof *again);
        size_t *again_len = calloc(n_wait, sizeof *again_len);
        int wrc = -1;
        if (wd && wu && wm && again && again_len) {
            for (size_t k = 0; k < n_wait; k++) {
                wd[k] = wait[k].device;
                wu[k] = wait[k].user;
                wm[k] = wait[k].month;
            }
            wrc = redis_state_wait_for_devices(rs, wd, wm, wu, n_wait, again, again_len, err);
        }
        for (size_t k = 0; wrc == 0 && k < n_wait; k++) {
            uint32_t slot = *bytes_map_find(&dev_index, &wd[k], 8);
            if (again[k] && !dev_vals[slot]) {
                dev_vals[slot] = again[k];
                dev_lens[slot] = again_len[k];
                again[k] = NULL;
            }
        }
        for (size_t k = 0; again && k < n_wait; k++)
            free(again[k]);
        free(again);
        free(again_len);
        free(wd);
        free(wu);
        free(wm);
        if (wrc)
            goto out;
    }

    for (size_t i = 0; i < w->n_users; i++) {
        if (!um[i].devices) {
            /* Dirty, yet no state: Redis lost it. Writing would delete
             * the user's rows. */
            w->missing_users++;
            continue;
        }
        if (encode_user_month(p, &um[i], dm + first[i], first[i + 1] - first[i], dev_vals, dev_lens,
                              dm_slot + first[i], &bm, &bm_cap))
            goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; um && i < w->n_users; i++)
        free(um[i].devices);
    for (size_t i = 0; dev_vals && i < n_dev; i++)
        free(dev_vals[i]);
    free(dev_vals);
    free(dev_lens);
    free(dev_ids);
    free(dm_slot);
    free(wait);
    free(dm);
    free(bm);
    free(first);
    free(um);
    bytes_map_free(&dev_index);
    if (rc && !err->msg[0])
        err_set(err, "flush: out of memory");
    return rc;
}

static void work_free(flush_work *w)
{
    for (size_t i = 0; i < w->n_taken; i++)
        redis_strings_free(&w->taken[i]);
    for (uint32_t g = 0; g < KEY_GROUPS; g++)
        redis_strings_free(&w->waiting[g]);
    free(w->days);
    free(w->resolved);
    free(w->resolved_len);
    free(w->resolved_group);
    free(w->taken);
    free(w->hosts);
    free(w->users);
    bytes_map_free(&w->new_devices);
    bytes_map_free(&w->changed_devices);
    bytes_map_free(&w->user_index);
}

/* PostgreSQL holds an older flush token than one Redis saw commit: it went
 * back in time and lost rows that flushes after its state had written.
 * Everything Redis holds is marked dirty and the replay topics' fences are
 * forgotten (every instance told by the epoch); only then does the
 * recorded token come down to PostgreSQL's, so that a crash in between
 * repeats all of it. The next flush rewrites everything. */
static int postgres_went_back(redis_state *rs, const char *const *replay_topics, int64_t held,
                              int64_t committed, errbuf *err)
{
    log_warn("postgres went back in time: activity_flush_fence holds flush token %lld for "
             "'%s', but token %lld had committed (a failover to a lagging replica, or a restore "
             "from a backup?); re-flushing everything redis holds for this prefix",
             (long long)held, redis_state_prefix(rs), (long long)committed);
    size_t hosts, users;
    if (redis_state_mark_all_dirty(rs, &hosts, &users, err))
        return -1;
    log_warn("marked all %zu host-month and %zu user-month hashes dirty for the re-flush", hosts,
             users);
    for (size_t i = 0; replay_topics && replay_topics[i]; i++) {
        log_warn("re-reading %s from the start: postgres lost history that only it keeps",
                 replay_topics[i]);
        if (redis_state_forget_fences(rs, replay_topics[i], err))
            return -1;
    }
    int64_t epoch;
    if (redis_state_epoch(rs, &epoch, true, err) || redis_state_set_pg_token(rs, held, false, err))
        return -1;
    err_set(err, "postgres went back in time (flush token %lld, %lld had committed)",
            (long long)held, (long long)committed);
    return FLUSH_POSTGRES_BEHIND;
}

int flush_once(redis_state *rs, pg_sink *pg, const char *const *replay_topics, flush_stats *stats,
               bool *pg_failed, errbuf *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *pg_failed = false;
    memset(stats, 0, sizeof *stats);
    err->msg[0] = '\0';
    flush_work w;
    memset(&w, 0, sizeof w);
    bytes_map_init(&w.user_index);
    bytes_map_init(&w.new_devices);
    bytes_map_init(&w.changed_devices);
    flush_payload p;
    memset(&p, 0, sizeof p);
    int rc = -1;

    int64_t token, committed, held;
    w.taken = calloc(KEY_GROUPS, sizeof *w.taken);
    if (!w.taken || redis_state_pg_token(rs, &committed, err) ||
        redis_state_flush_token(rs, &token, err))
        goto out;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        bool stale;
        redis_strings *r = &w.taken[g];
        if (redis_state_take_dirty(rs, g, token, r, &stale, err)) {
            /* A newer flush overtook this one: what this one took so far
             * stays in the flushing sets, for that flush or the next. */
            if (stale)
                rc = 1;
            goto out;
        }
        w.n_taken = g + 1;
        if (r->n == 0)
            continue;
        w.groups[w.n_groups++] = g;
        w.group_has_dims = false;
        if (classify(&w, r))
            goto out;
        if (w.group_has_dims)
            w.dim_groups[w.n_dim_groups++] = g;
    }
    failpoint("flush-after-take");
    if (w.n_groups == 0 && !pg_sink_dims_pending(pg)) {
        /* Nothing to write; still, a quiet processor learns here that
         * Redis lost its state (no apply would tell it). */
        int present = redis_state_layout_present(rs, err);
        rc = present < 0 ? -1 : present ? 0 : FLUSH_STATE_MISSING;
        if (rc == FLUSH_STATE_MISSING)
            err_set(err, "the layout marker %s:meta is gone", redis_state_prefix(rs));
        /* ... and that PostgreSQL went back in time. */
        if (rc == 0 && pg_sink_fence_token(pg, redis_state_prefix(rs), &held, err)) {
            *pg_failed = true;
            rc = -1;
        } else if (rc == 0 && held < committed) {
            rc = postgres_went_back(rs, replay_topics, held, committed, err);
        }
        goto out;
    }
    if (w.changed_devices.count &&
        redis_state_users_of_devices(rs, &w.changed_devices, add_user_cb, &w, err))
        goto out;
    if (w.new_devices.count) {
        bool group_has_new[KEY_GROUPS] = {false};
        for (size_t i = 0; i < w.new_devices.cap; i++)
            if (w.new_devices.slots[i].used) {
                int64_t id;
                memcpy(&id, w.new_devices.keys + w.new_devices.slots[i].key_off, sizeof id);
                group_has_new[group_of_device(id)] = true;
            }
        for (uint32_t g = 0; g < KEY_GROUPS; g++) {
            if (!group_has_new[g])
                continue;
            if (redis_state_waiting(rs, g, &w.waiting[g], err) ||
                add_waiting_users(&w, g, &w.waiting[g]))
                goto out;
        }
    }

    if (!(w.days = malloc((w.n_hosts ? w.n_hosts : 1) * sizeof *w.days)) ||
        redis_state_read_host_months(rs, w.hosts, w.days, w.n_hosts, err))
        goto out;
    for (size_t i = 0; i < w.n_hosts; i++) {
        /* Every event adds a hit: a dirty host month without any has lost
         * its state, and writing it would zero the row. */
        bool any = false;
        for (int d = 0; d < 31 && !any; d++)
            any = w.hosts[i].hits[d] != 0;
        if (!any) {
            w.missing_hosts++;
            continue;
        }
        if (rows_encode_host(&p.hosts, &w.hosts[i]))
            goto out;
        p.n_hosts++;
    }
    if (build_user_rows(rs, &w, &p, err) ||
        scd2_collect(rs, w.dim_groups, w.n_dim_groups, p.dims, p.n_dims, err))
        goto out;

    /* Checked after the reads: state wiped while they ran shows here. A
     * flush never writes what lost state would make of the rows. */
    int present = redis_state_layout_present(rs, err);
    if (present < 0)
        goto out;
    if (!present) {
        err_set(err, "the layout marker %s:meta is gone", redis_state_prefix(rs));
        rc = FLUSH_STATE_MISSING;
        goto out;
    }
    if (w.missing_hosts || w.missing_users) {
        err_set(err, "%zu host months and %zu user months are dirty but have no state",
                w.missing_hosts, w.missing_users);
        rc = FLUSH_STATE_PARTIAL;
        goto out;
    }
    int written = pg_sink_write(pg, &p, redis_state_prefix(rs), token, committed, &held, err);
    if (written < 0) {
        *pg_failed = true;
        goto out;
    }
    if (written == PG_SINK_BEHIND) {
        rc = postgres_went_back(rs, replay_topics, held, committed, err);
        goto out;
    }
    if (written > 0) {
        /* Another instance's flush with a newer token committed first; what
         * this one took stays in the flushing sets for the next flush. If
         * Redis lost its token counter, move it past PostgreSQL's. */
        int64_t newest;
        if (pg_sink_fence_token(pg, redis_state_prefix(rs), &newest, err) == 0)
            redis_state_raise_flush_token(rs, newest, err);
        rc = 1;
        goto out;
    }
    failpoint("flush-after-commit");
    if (redis_state_set_pg_token(rs, token, true, err) ||
        redis_state_finish_flush(rs, w.groups, w.n_groups, token, err))
        goto out;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        /* resolved[] is in group order: add_waiting_users ran group by group. */
        size_t first = 0;
        while (first < w.n_resolved && w.resolved_group[first] != g)
            first++;
        size_t last = first;
        while (last < w.n_resolved && w.resolved_group[last] == g)
            last++;
        if (last > first && redis_state_forget_waiting(rs, g, w.resolved + first,
                                                       w.resolved_len + first, last - first, err))
            goto out;
    }
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
    work_free(&w);
    flush_payload_free(&p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    return rc;
}
