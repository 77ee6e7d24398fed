/*
 * flush_plan.c — one flush's plan: dirty markers → Redis reads → rows
 * (see flush_plan.h).
 */
#include "processors/flush_plan.h"

#include "processors/batch.h"
#include "processors/dirty_marker.h"
#include "processors/state_rehydrate.h"
#include "lib/civil_time.h"
#include "lib/failpoint.h"
#include "lib/grow.h"

#include <stdlib.h>
#include <string.h>

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

dirty_marker dirty_marker_parse(const char *s, size_t len)
{
    dirty_marker m = {DIRTY_UNKNOWN, 0, 0, NULL, 0};
    if (len == 0)
        return m;
    if ((s[0] == DIRTY_TAG_HOST || s[0] == DIRTY_TAG_USER) && len > 8 && s[7] == ':' &&
        parse_month(s + 1, 6, &m.month)) {
        if (s[0] == DIRTY_TAG_HOST) {
            m.kind = DIRTY_HOST_MONTH;
            m.name = s + 8;
            m.name_len = len - 8;
        } else if (parse_i64(s + 8, len - 8, &m.id)) {
            m.kind = DIRTY_USER_MONTH;
        }
    } else if (s[0] == DIRTY_TAG_NEW_DEVICE && parse_i64(s + 1, len - 1, &m.id)) {
        m.kind = DIRTY_NEW_DEVICE;
    } else if (s[0] == DIRTY_TAG_DEVICE_CHANGED && parse_i64(s + 1, len - 1, &m.id)) {
        m.kind = DIRTY_DEVICE_CHANGED;
    } else if (s[0] == DIRTY_TAG_DIMENSIONS && len == 1) {
        m.kind = DIRTY_DIMENSIONS;
    }
    return m;
}

bool dirty_waiting_parse(const char *s, size_t len, int64_t *device, int32_t *month, int64_t *user)
{
    const char *bar = memchr(s, DIRTY_WAITING_SEP, len);
    if (!bar || !parse_i64(s, (size_t)(bar - s), device))
        return false;
    size_t rest = len - (size_t)(bar + 1 - s);
    return rest >= 8 && parse_month(bar + 1, 6, month) && bar[7] == ':' &&
           parse_i64(bar + 8, rest - 7, user);
}

struct flush_work {
    /* host months to flush, and their values */
    size_t cap_hosts;
    host_days *days;
    /* user months to flush, deduplicated */
    size_t cap_users;
    bytes_map user_index;
    size_t cap_rows, cap_masks;
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
    redis_strings taken[KEY_GROUPS];
    uint32_t groups[KEY_GROUPS];
    /* groups whose flushing set holds "D": they took dimension changes */
    uint32_t dim_groups[KEY_GROUPS];
    size_t n_dim_groups;
    redis_strings dim_buffers[KEY_GROUPS];
    size_t cap_dims;
    /* device values the user rows' browsers point into */
    char **dev_vals;
    size_t n_dev;
    /* user values, where the browsers of "~" entries were decoded */
    char **user_vals;
    size_t n_user_vals;
    /* dirty entities Redis holds no state for (it lost it, or another
     * instance evicted their month since this flush read their marker) */
    size_t missing_hosts, missing_users;
    bool *user_missing; /* [n_user_keys]: user_keys[i] has no state */
    size_t n_days;      /* days read, released by flush_plan_free */
};

static int add_user(flush_plan *p, int32_t month, int64_t user)
{
    flush_work *w = p->w;
    unsigned char key[12];
    memcpy(key, &month, 4);
    memcpy(key + 4, &user, 8);
    bool inserted;
    if (!bytes_map_upsert(&w->user_index, key, sizeof key, 0, &inserted))
        return -1;
    if (!inserted)
        return 0;
    if (GROW_ONE(p->user_keys, p->n_user_keys, w->cap_users, 256))
        return -1;
    p->user_keys[p->n_user_keys++] = (user_month){user, month, 0};
    return 0;
}

static int add_user_cb(void *ctx, int32_t month, int64_t user)
{
    return add_user(ctx, month, user);
}

/* Members "device|YYYYMM:user" of a waiting set: the ones whose device has
 * just arrived re-flush their user month. */
static int add_waiting_users(flush_plan *p, uint32_t group, const redis_strings *members)
{
    flush_work *w = p->w;
    for (size_t i = 0; i < members->n; i++) {
        const redis_str *m = &members->v[i];
        int64_t device, user;
        int32_t month;
        if (!dirty_waiting_parse(m->ptr, m->len, &device, &month, &user) ||
            !bytes_map_find(&w->new_devices, &device, sizeof device))
            continue;
        if (add_user(p, month, user))
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

/* Sorts the markers of one taken set into the plan. */
static int classify(flush_plan *p, const redis_strings *set, bool *has_dims)
{
    flush_work *w = p->w;
    for (size_t i = 0; i < set->n; i++) {
        dirty_marker m = dirty_marker_parse(set->v[i].ptr, set->v[i].len);
        bool inserted;
        switch (m.kind) {
        case DIRTY_HOST_MONTH:
            if (GROW_ONE(p->hosts, p->n_hosts, w->cap_hosts, 256))
                return -1;
            p->hosts[p->n_hosts++] =
                (host_row){m.name, m.name_len, m.month, NULL, NULL, NULL, NULL};
            break;
        case DIRTY_USER_MONTH:
            if (add_user(p, m.month, m.id))
                return -1;
            break;
        case DIRTY_NEW_DEVICE:
            if (!bytes_map_upsert(&w->new_devices, &m.id, sizeof m.id, 0, &inserted))
                return -1;
            break;
        case DIRTY_DEVICE_CHANGED:
            if (!bytes_map_upsert(&w->changed_devices, &m.id, sizeof m.id, 0, &inserted))
                return -1;
            break;
        case DIRTY_DIMENSIONS:
            *has_dims = true;
            break;
        case DIRTY_UNKNOWN:
            log_warn("flush: ignoring unrecognised dirty marker of %zu bytes", set->v[i].len);
            break;
        }
    }
    return 0;
}

typedef struct {
    int64_t device;
    uint32_t mask;
    bool null; /* the device "null": events without a device_id */
    /* A browser entry "~<hex>" or "~-" (NULL browser): a user-month brought
     * back from PostgreSQL per browser (README "Lateness and eviction"),
     * already resolved; browser points into the user's value, decoded in
     * place. */
    bool resolved;
    opt_str browser;
} device_mask;

/* A null device has no slot: it is never looked up, waited on or joined. */
#define NO_SLOT UINT32_MAX

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the browser of a "~..." entry (hex from p + 1 to eq) in place at
 * p + 1; false when it is neither "~-" nor lower-case hex. */
static bool decode_browser(char *p, const char *eq, opt_str *out)
{
    size_t n = (size_t)(eq - p - 1);
    if (n == 1 && p[1] == '-') {
        *out = (opt_str){NULL, 0, false};
        return true;
    }
    if (n % 2)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(p[1 + 2 * i]), lo = hex_digit(p[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        p[1 + i] = (char)(hi << 4 | lo);
    }
    *out = (opt_str){p + 1, n / 2, true};
    return true;
}

/* Appends the pairs of "device=mask,device=mask" to (*out, *n, *cap); the
 * device may be "null" (events without a device_id), or a browser entry
 * "~<hex>" / "~-" (decoded in place: s is the user's own copy).
 * Returns 0; -1 when the value is not in that format (state this process
 * cannot read must stop the flush, never lose a device); -2 when out of
 * memory. */
static int append_device_masks(char *s, size_t len, device_mask **out, size_t *n, size_t *cap)
{
    char *p = s, *end = s ? s + len : s;
    while (p < end) {
        char *comma = memchr(p, ',', (size_t)(end - p));
        char *stop = comma ? comma : end;
        char *eq = memchr(p, '=', (size_t)(stop - p));
        int64_t dev = 0, mask;
        bool null = eq && eq - p == 4 && memcmp(p, "null", 4) == 0;
        bool resolved = eq && *p == '~';
        opt_str browser = {NULL, 0, false};
        if (!eq || (resolved && !decode_browser(p, eq, &browser)) ||
            (!null && !resolved && !parse_i64(p, (size_t)(eq - p), &dev)) ||
            !parse_i64(eq + 1, (size_t)(stop - eq - 1), &mask) || mask < 0 || mask > UINT32_MAX)
            return -1;
        if (grow((void **)out, cap, *n + 1, sizeof **out, 256))
            return -2;
        (*out)[(*n)++] = (device_mask){dev, (uint32_t)mask, null, resolved, browser};
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

/* Rows of one user month (key: p->user_keys[i]): its users_cumulated mask,
 * the OR of every device's (described, unknown or null); and its
 * user_devices_cumulated rows, the described devices' masks OR-ed per
 * browser. The devices are sorted by browser, so grouping is n log n in
 * the user's devices, whatever their number (a shared or bot id can have
 * thousands). */
static int user_month_rows(flush_plan *p, size_t i, const user_month_state *um,
                           const device_mask *dm, size_t n, char *const *dev_vals,
                           const size_t *dev_lens, const uint32_t *dev_slot, browser_mask **bm,
                           size_t *bm_cap)
{
    for (size_t k = 0; k < n; k++) {
        p->user_keys[i].mask |= dm[k].mask;
        /* Every entry as it is, for activity_user_masks (rehydration). */
        if (GROW_ONE(p->masks, p->n_masks, p->w->cap_masks, 256))
            return -1;
        p->masks[p->n_masks++] = (user_mask_row){
            um->user_id,  um->month,     dm[k].resolved ? 'b' : dm[k].null ? 'n' : 'd',
            dm[k].device, dm[k].browser, dm[k].mask,
        };
    }
    size_t nb = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t slot = dev_slot[k];
        device_record dev;
        if (dm[k].resolved) {
            if (grow((void **)bm, bm_cap, nb + 1, sizeof **bm, 64))
                return -1;
            (*bm)[nb++] = (browser_mask){dm[k].browser, dm[k].mask};
            continue;
        }
        if (slot == NO_SLOT || !dev_vals[slot])
            continue; /* null or unknown device: not in the inner join */
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
        if (GROW_ONE(p->users, p->n_users, p->w->cap_rows, 256))
            return -1;
        p->users[p->n_users++] = row;
        b = e;
    }
    return 0;
}

/* Resolves devices of every flushed user month and builds the user rows. */
static int build_user_rows(redis_state *rs, flush_plan *p, errbuf *err)
{
    flush_work *w = p->w;
    size_t n_users = p->n_user_keys;
    if (!n_users)
        return 0;
    int rc = -1;
    user_month_state *um = calloc(n_users, sizeof *um);
    size_t *first = calloc(n_users + 1, sizeof *first); /* user i: dm[first[i]..first[i+1]) */
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
    for (size_t i = 0; i < n_users; i++) {
        um[i].user_id = p->user_keys[i].user_id;
        um[i].month = p->user_keys[i].month;
    }
    if (redis_state_read_user_months(rs, um, n_users, err))
        goto out;
    /* Every user's "device=mask,..." value parsed once, into one array. */
    size_t n_dm = 0;
    for (size_t i = 0; i < n_users; i++) {
        first[i] = n_dm;
        int pr = append_device_masks(um[i].devices, um[i].devices_len, &dm, &n_dm, &dm_cap);
        if (pr == -1)
            err_set(err, "flush: user %lld has a malformed device list in Redis (%zu bytes)",
                    (long long)um[i].user_id, um[i].devices_len);
        if (pr)
            goto out;
    }
    first[n_users] = n_dm;
    if (!(dm_slot = malloc((n_dm ? n_dm : 1) * sizeof *dm_slot)))
        goto out;
    for (size_t k = 0; k < n_dm; k++) {
        bool inserted;
        if (dm[k].null || dm[k].resolved) {
            dm_slot[k] = NO_SLOT;
            continue;
        }
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
    for (size_t i = 0; i < n_users; i++)
        for (size_t k = first[i]; k < first[i + 1]; k++) {
            if (dm_slot[k] == NO_SLOT || dev_vals[dm_slot[k]])
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

    if (!(w->user_missing = calloc(n_users, sizeof *w->user_missing)))
        goto out;
    for (size_t i = 0; i < n_users; i++) {
        if (!um[i].devices) {
            /* Dirty, yet no state: Redis lost it, or its month was evicted
             * since (drop_evicted). Writing would delete the user's rows. */
            w->missing_users++;
            w->user_missing[i] = true;
            continue;
        }
        if (user_month_rows(p, i, &um[i], dm + first[i], first[i + 1] - first[i], dev_vals,
                            dev_lens, dm_slot + first[i], &bm, &bm_cap))
            goto out;
    }
    rc = 0;
out:
    /* The rows' browsers point into the device values and the user values:
     * the plan keeps them. */
    if (um && (w->user_vals = malloc(n_users * sizeof *w->user_vals))) {
        for (size_t i = 0; i < n_users; i++)
            w->user_vals[i] = um[i].devices;
        w->n_user_vals = n_users;
    } else {
        for (size_t i = 0; um && i < n_users; i++)
            free(um[i].devices);
        if (rc == 0 && um) {
            rc = -1; /* rows may point into them */
            err->msg[0] = '\0';
        }
    }
    w->dev_vals = dev_vals;
    w->n_dev = n_dev;
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

int flush_plan_take(redis_state *rs, flush_plan *p, errbuf *err)
{
    memset(p, 0, sizeof *p);
    if (!(p->w = calloc(1, sizeof *p->w))) {
        err_set(err, "flush: out of memory");
        return -1;
    }
    flush_work *w = p->w;
    bytes_map_init(&w->user_index);
    bytes_map_init(&w->new_devices);
    bytes_map_init(&w->changed_devices);
    if (redis_state_pg_token(rs, &p->committed, err) || redis_state_flush_token(rs, &p->token, err))
        return -1;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        bool stale;
        if (redis_state_take_dirty(rs, g, p->token, &w->taken[g], &stale, err))
            /* A newer flush overtook this one: what this one took so far
             * stays in the flushing sets, for that flush or the next. */
            return stale ? 1 : -1;
        if (w->taken[g].n == 0)
            continue;
        w->groups[p->n_groups++] = g;
        bool has_dims = false;
        if (classify(p, &w->taken[g], &has_dims)) {
            err_set(err, "flush: out of memory");
            return -1;
        }
        if (has_dims)
            w->dim_groups[w->n_dim_groups++] = g;
    }
    return 0;
}

int flush_plan_dims_from_buffer(const redis_strings *pairs, dim_change **out, size_t *n,
                                size_t *cap, size_t counts[DIM_COUNT])
{
    size_t skipped = 0;
    for (size_t f = 0; f + 1 < pairs->n; f += 2) {
        const redis_str *field = &pairs->v[f], *val = &pairs->v[f + 1];
        dim_change c;
        memset(&c, 0, sizeof c);
        if (!dim_field_parse(field->ptr, field->len, &c.kind, &c.id)) {
            skipped++;
            continue;
        }
        size_t pos = 0;
        dim_entry e;
        int r;
        while ((r = dim_entries_next(val->ptr, val->len, &pos, &e)) == 1) {
            c.updated_at_ms = e.updated_at_ms;
            if (!dim_payload_decode(c.kind, e.payload, e.payload_len, &c)) {
                skipped++;
                continue;
            }
            if (grow((void **)out, cap, *n + 1, sizeof **out, 256))
                return -1;
            (*out)[(*n)++] = c;
            counts[c.kind]++;
        }
        if (r < 0)
            skipped++;
    }
    if (skipped)
        log_warn("flush: skipped %zu malformed dimension buffer entries", skipped);
    return 0;
}

/* Whether host row h has no hits: every event adds one, so its state is
 * gone. */
static bool host_missing(const host_row *h)
{
    for (int d = 0; d < 31; d++)
        if (h->hits[d] != 0)
            return false;
    return true;
}

/* Entities without state whose month their key group records evicted are
 * left out of the flush: another instance's flush committed the month's
 * final state and evicted it after this flush read their dirty marker or
 * waiting entry (processors/evict.lua runs only once no marker of the
 * month is dirty or flushing, so PostgreSQL holds them final). Writing
 * them would delete their rows. Any other entity without state stays
 * missing: lost state. A wipe takes the evicted records with it, so it is
 * still told apart (and the layout marker is checked after this). */
static int drop_evicted(redis_state *rs, flush_plan *p, errbuf *err)
{
    flush_work *w = p->w;
    month_set ev[KEY_GROUPS];
    if (redis_state_read_evicted(rs, ev, err))
        return -1;
    size_t hosts = 0, users = 0, keep = 0;
    for (size_t i = 0; i < p->n_hosts; i++) {
        const host_row *h = &p->hosts[i];
        if (host_missing(h) && month_set_has(&ev[group_of_host(h->host, h->host_len)], h->month)) {
            hosts++;
            continue;
        }
        p->hosts[keep++] = *h; /* its days stay where they were read */
    }
    p->n_hosts = keep;
    keep = 0;
    for (size_t i = 0; i < p->n_user_keys; i++) {
        const user_month *u = &p->user_keys[i];
        if (w->user_missing[i] && month_set_has(&ev[group_of_user(u->user_id)], u->month)) {
            users++;
            continue;
        }
        w->user_missing[keep] = w->user_missing[i];
        p->user_keys[keep++] = *u;
    }
    p->n_user_keys = keep;
    month_sets_free(ev);
    w->missing_hosts -= hosts;
    w->missing_users -= users;
    p->evicted_skipped += hosts + users;
    if (hosts || users)
        log_debug("flush: %zu host months and %zu user months are gone from redis because "
                  "another instance evicted their month (final in postgresql): left out",
                  hosts, users);
    return 0;
}

int flush_plan_build(redis_state *rs, flush_plan *p, errbuf *err)
{
    flush_work *w = p->w;
    if (w->changed_devices.count &&
        redis_state_users_of_devices(rs, &w->changed_devices, add_user_cb, p, err))
        return -1;
    /* Users of evicted months first described or changed devices reach
     * come back from PostgreSQL (README "Lateness and eviction"). */
    if ((w->new_devices.count || w->changed_devices.count) &&
        redis_state_evicted_users_of_devices(rs, &w->new_devices, &w->changed_devices, add_user_cb,
                                             p, err))
        return -1;
    if (w->new_devices.count) {
        bool group_has_new[KEY_GROUPS] = {false};
        for (size_t i = 0; i < w->new_devices.cap; i++)
            if (w->new_devices.slots[i].used) {
                int64_t id;
                memcpy(&id, w->new_devices.keys + w->new_devices.slots[i].key_off, sizeof id);
                group_has_new[group_of_device(id)] = true;
            }
        for (uint32_t g = 0; g < KEY_GROUPS; g++) {
            if (!group_has_new[g])
                continue;
            if (redis_state_waiting(rs, g, &w->waiting[g], err))
                return -1;
            if (add_waiting_users(p, g, &w->waiting[g])) {
                err_set(err, "flush: out of memory");
                return -1;
            }
        }
    }

    delaypoint("flush-before-reads");
    /* calloc: every sketch pointer starts NULL, for flush_plan_free. */
    if (!(w->days = calloc(p->n_hosts ? p->n_hosts : 1, sizeof *w->days))) {
        err_set(err, "flush: out of memory");
        return -1;
    }
    if (redis_state_read_host_months(rs, p->hosts, w->days, p->n_hosts, err))
        return -1;
    w->n_days = p->n_hosts;
    for (size_t i = 0; i < p->n_hosts; i++)
        /* A dirty host month without hits has lost its state, and writing
         * it would zero the row. */
        if (host_missing(&p->hosts[i]))
            w->missing_hosts++;
    if (build_user_rows(rs, p, err))
        return -1;
    if (w->n_dim_groups) {
        if (redis_state_read_dims(rs, w->dim_groups, w->n_dim_groups, w->dim_buffers, err))
            return -1;
        for (size_t i = 0; i < w->n_dim_groups; i++)
            if (flush_plan_dims_from_buffer(&w->dim_buffers[i], &p->dims, &p->n_dims, &w->cap_dims,
                                            p->n_dims_by_kind)) {
                err_set(err, "flush: out of memory");
                return -1;
            }
    }

    if ((w->missing_hosts || w->missing_users) && drop_evicted(rs, p, err))
        return -1;
    /* Checked after the reads (and the evicted months'): state wiped while
     * they ran shows here. A flush never writes what lost state would make
     * of the rows. */
    int present = redis_state_layout_present(rs, err);
    if (present < 0)
        return -1;
    if (!present) {
        err_set(err, "the layout marker %s:meta is gone", redis_state_prefix(rs));
        return FLUSH_STATE_MISSING;
    }
    if (w->missing_hosts || w->missing_users) {
        err_set(err, "%zu host months and %zu user months are dirty but have no state",
                w->missing_hosts, w->missing_users);
        return FLUSH_STATE_PARTIAL;
    }
    return 0;
}

int flush_plan_finish(redis_state *rs, const flush_plan *p, errbuf *err)
{
    const flush_work *w = p->w;
    if (redis_state_set_pg_token(rs, p->token, true, err) ||
        redis_state_finish_flush(rs, w->groups, p->n_groups, p->token, err))
        return -1;
    for (uint32_t g = 0; g < KEY_GROUPS; g++) {
        /* resolved[] is in group order: add_waiting_users ran group by group. */
        size_t first = 0;
        while (first < w->n_resolved && w->resolved_group[first] != g)
            first++;
        size_t last = first;
        while (last < w->n_resolved && w->resolved_group[last] == g)
            last++;
        if (last > first && redis_state_forget_waiting(rs, g, w->resolved + first,
                                                       w->resolved_len + first, last - first, err))
            return -1;
    }
    return 0;
}

/* PostgreSQL holds an older flush token than one Redis saw commit: it went
 * back in time and lost rows that flushes after its state had written.
 * Everything Redis holds is marked dirty, the replay topics' fences are
 * forgotten (every instance told by the epoch) and the months evicted
 * since are recorded lost; only then does the recorded token come down to
 * PostgreSQL's, so that a crash in between repeats all of it. The next
 * flush rewrites everything Redis holds; the lost months need a range
 * backfill (cmd/runner.c reports them). */
int flush_plan_replay_all(redis_state *rs, const char *const *replay_topics, int64_t held,
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
    /* Months evicted after the state PostgreSQL went back to are in
     * neither store: recorded before the token comes down (a crash in
     * between repeats this), they stay recorded until a range backfill has
     * rebuilt them from the topics (README "Lateness and eviction"). */
    size_t lost;
    if (redis_state_record_lost_months(rs, held, &lost, err))
        return -1;
    if (lost)
        log_error("postgres went back to before the eviction of %zu months: they are in neither "
                  "store until they are rebuilt from the topics",
                  lost);
    int64_t epoch;
    if (redis_state_epoch(rs, &epoch, true, err) || redis_state_set_pg_token(rs, held, false, err))
        return -1;
    err_set(err, "postgres went back in time (flush token %lld, %lld had committed)",
            (long long)held, (long long)committed);
    return FLUSH_POSTGRES_BEHIND;
}

void flush_plan_free(flush_plan *p)
{
    flush_work *w = p->w;
    if (w) {
        for (uint32_t g = 0; g < KEY_GROUPS; g++) {
            redis_strings_free(&w->taken[g]);
            redis_strings_free(&w->waiting[g]);
            redis_strings_free(&w->dim_buffers[g]);
        }
        for (size_t i = 0; w->dev_vals && i < w->n_dev; i++)
            free(w->dev_vals[i]);
        free(w->dev_vals);
        for (size_t i = 0; w->user_vals && i < w->n_user_vals; i++)
            free(w->user_vals[i]);
        free(w->user_vals);
        free(w->resolved);
        free(w->resolved_len);
        free(w->resolved_group);
        for (size_t i = 0; w->days && i < w->n_days; i++)
            host_days_release(&w->days[i]);
        free(w->user_missing);
        free(w->days);
        bytes_map_free(&w->new_devices);
        bytes_map_free(&w->changed_devices);
        bytes_map_free(&w->user_index);
        free(w);
    }
    free(p->hosts);
    free(p->user_keys);
    free(p->users);
    free(p->masks);
    free(p->dims);
    memset(p, 0, sizeof *p);
}
