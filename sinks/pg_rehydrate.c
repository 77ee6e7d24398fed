/*
 * pg_rehydrate.c — the committed rows of some hosts or users of one month,
 * read for rehydration (sinks/pg_rehydrate.h). One query per table for all
 * the entities a late batch asks for, the entities passed as one array.
 */
#include "sinks/pg_rehydrate.h"
#include "lib/civil_time.h"
#include "lib/grow.h"
#include "sinks/pg_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* host_activity_reduced: the days with hits. */
static const char host_hits_sql[] =
    "SELECT h.ord, d.i, d.hits FROM unnest($1::text[]) WITH ORDINALITY AS h(host, ord) "
    "JOIN host_activity_reduced r ON r.host = h.host AND r.month_start = $2::date "
    "CROSS JOIN LATERAL unnest(r.hit_array) WITH ORDINALITY AS d(hits, i) WHERE d.hits <> 0";
/* host_daily_uniques: the day's sketch in text form ("\x" and hex, for the
 * hll type and for its bytea fallback alike). */
static const char host_sketch_sql[] =
    "SELECT h.ord, extract(day FROM u.day)::int, u.users::text "
    "FROM unnest($1::text[]) WITH ORDINALITY AS h(host, ord) "
    "JOIN host_daily_uniques u ON u.host = h.host AND u.day >= $2::date "
    "AND u.day < ($2::date + interval '1 month')::date";
static const char user_entry_sql[] =
    "SELECT x.ord, m.entry, m.datelist_int "
    "FROM unnest($1::bigint[]) WITH ORDINALITY AS x(id, ord) "
    "JOIN activity_user_masks m ON m.user_id = x.id AND m.month_start = $2::date "
    "ORDER BY x.ord, m.entry";
static const char user_browser_sql[] =
    "SELECT x.ord, d.browser_type, d.datelist_int "
    "FROM unnest($1::bigint[]) WITH ORDINALITY AS x(id, ord) "
    "JOIN user_devices_cumulated d ON d.user_id = x.id AND d.month_start = $2::date "
    "ORDER BY x.ord, d.browser_type NULLS FIRST";
static const char user_all_sql[] =
    "SELECT x.ord, u.datelist_int FROM unnest($1::bigint[]) WITH ORDINALITY AS x(id, ord) "
    "JOIN users_cumulated u ON u.user_id = x.id AND u.month_start = $2::date";

typedef struct {
    rehydrate_rows *rows;
    size_t n;
    int which;           /* 0 hits, 1 sketches, 2 browsers, 3 all, 4 entries */
    size_t with_entries; /* users that had activity_user_masks rows */
    size_t last_ord;
    unsigned char *buf;
    size_t cap;
} read_ctx;

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int on_row(void *ctx, const char *const *v, const size_t *lens, int ncols, errbuf *err)
{
    read_ctx *c = ctx;
    long long ord = v[0] ? strtoll(v[0], NULL, 10) : 0;
    if (ord < 1 || (size_t)ord > c->n || ncols < 2 || !v[ncols - 1]) {
        err_set(err, "postgres: rehydration read an unexpected row");
        return -1;
    }
    size_t i = (size_t)ord - 1;
    int rc = 0;
    switch (c->which) {
    case 0:
        rc = rehydrate_rows_host_hits(c->rows, i, atoi(v[1]), strtoll(v[2], NULL, 10));
        break;
    case 1: {
        /* "\x<hex>" */
        size_t n = lens[2] >= 2 ? (lens[2] - 2) / 2 : 0;
        if (lens[2] < 2 || v[2][0] != '\\' || v[2][1] != 'x' || lens[2] % 2 ||
            grow((void **)&c->buf, &c->cap, n + 1, 1, 4096)) {
            err_set(err, "postgres: a stored sketch of host_daily_uniques is not in hex form");
            return -1;
        }
        for (size_t k = 0; k < n; k++) {
            int hi = hexval(v[2][2 + 2 * k]), lo = hexval(v[2][3 + 2 * k]);
            if (hi < 0 || lo < 0) {
                err_set(err, "postgres: a stored sketch of host_daily_uniques is not in hex form");
                return -1;
            }
            c->buf[k] = (unsigned char)(hi << 4 | lo);
        }
        rc = rehydrate_rows_host_sketch(c->rows, i, atoi(v[1]), c->buf, n);
        break;
    }
    case 2:
        rc = rehydrate_rows_user_browser(c->rows, i, v[1], v[1] ? lens[1] : 0,
                                         strtoll(v[2], NULL, 10));
        break;
    case 3:
        rc = rehydrate_rows_user_all(c->rows, i, strtoll(v[1], NULL, 10));
        break;
    default:
        if (!v[1]) {
            err_set(err, "postgres: activity_user_masks holds a NULL entry");
            return -1;
        }
        c->with_entries += (size_t)ord != c->last_ord;
        c->last_ord = (size_t)ord;
        rc = rehydrate_rows_user_entry(c->rows, i, v[1], lens[1], strtoll(v[2], NULL, 10));
    }
    if (rc)
        err_set(err, "rehydration: a row of day %s does not fit its month, or out of memory",
                v[1] ? v[1] : "?");
    return rc;
}

/* Appends one element to an array literal being built in sb ("{" first,
 * "}" and a NUL by array_close): quoted, with '"' and '\' escaped, when
 * quote (any host name survives), else as it is (numbers, dates). */
static int array_add(strbuf *sb, const char *elem, size_t len, bool quote)
{
    if (strbuf_append(sb, sb->len ? "," : "{", 1) || (quote && strbuf_append(sb, "\"", 1)))
        return -1;
    for (size_t k = 0; k < len; k++)
        if ((quote && (elem[k] == '"' || elem[k] == '\\') && strbuf_append(sb, "\\", 1)) ||
            strbuf_append(sb, &elem[k], 1))
            return -1;
    return quote && strbuf_append(sb, "\"", 1) ? -1 : 0;
}

/* Ends the literal (an empty one is "{}") as a C string. */
static int array_close(strbuf *sb)
{
    return (sb->len == 0 && strbuf_append(sb, "{", 1)) || strbuf_append(sb, "}", 2) ? -1 : 0;
}

int pg_rehydrate_read(void *ctx, char kind, int year, int month, const char *const *entities,
                      const size_t *lens, size_t n, rehydrate_rows *rows, errbuf *err)
{
    pg_sink *pg = ctx;
    char first[16];
    snprintf(first, sizeof first, "%04d-%02d-01", year, month);
    strbuf list = {0};
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        bad = array_add(&list, entities[i], lens[i], kind == 'h');
    if (bad || array_close(&list)) {
        strbuf_free(&list);
        err_set(err, "out of memory");
        return -1;
    }
    const char *params[2] = {list.data, first};
    read_ctx c = {.rows = rows, .n = n};
    int rc;
    if (kind == 'h') {
        rc = pg_sink_read_rows(pg, host_hits_sql, 2, params, "rehydration: hits", on_row, &c, err);
        c.which = 1;
        rc = rc ? rc
                : pg_sink_read_rows(pg, host_sketch_sql, 2, params, "rehydration: daily sketches",
                                    on_row, &c, err);
    } else {
        c.which = 4;
        rc = pg_sink_read_rows(pg, user_entry_sql, 2, params, "rehydration: user masks", on_row, &c,
                               err);
        /* Users flushed before activity_user_masks existed come back per
         * browser (README "Lateness and eviction"). */
        if (rc || c.with_entries == n)
            goto done;
        c.which = 2;
        rc = pg_sink_read_rows(pg, user_browser_sql, 2, params, "rehydration: browsers", on_row, &c,
                               err);
        c.which = 3;
        rc = rc ? rc
                : pg_sink_read_rows(pg, user_all_sql, 2, params, "rehydration: users", on_row, &c,
                                    err);
    }
done:
    strbuf_free(&list);
    free(c.buf);
    return rc;
}

static const char device_users_sql[] =
    "SELECT DISTINCT user_id, extract(year FROM month_start)::int, "
    "extract(month FROM month_start)::int FROM activity_user_masks "
    "WHERE device_id = ANY($1::bigint[]) AND month_start = ANY($2::date[])";

typedef struct {
    int (*fn)(void *, int64_t, int32_t);
    void *fctx;
} device_users_ctx;

static int on_device_user(void *ctx, const char *const *v, const size_t *lens, int ncols,
                          errbuf *err)
{
    (void)lens;
    device_users_ctx *c = ctx;
    if (ncols != 3 || !v[0] || !v[1] || !v[2]) {
        err_set(err, "postgres: activity_user_masks read an unexpected row");
        return -1;
    }
    if (c->fn(c->fctx, strtoll(v[0], NULL, 10), month_index(atoi(v[1]), atoi(v[2])))) {
        err_set(err, "out of memory");
        return -1;
    }
    return 0;
}

int pg_rehydrate_device_users(void *ctx, const int64_t *devices, size_t n, const int32_t *months,
                              size_t nmonths, int (*fn)(void *fctx, int64_t user, int32_t month),
                              void *fctx, errbuf *err)
{
    strbuf ids = {0}, ms = {0};
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        char t[32];
        int k = snprintf(t, sizeof t, "%lld", (long long)devices[i]);
        if (array_add(&ids, t, (size_t)k, false))
            goto out;
    }
    for (size_t i = 0; i < nmonths; i++) {
        int y, m;
        month_from_index(months[i], &y, &m);
        char t[32];
        int k = snprintf(t, sizeof t, "%04d-%02d-01", y, m);
        if (array_add(&ms, t, (size_t)k, false))
            goto out;
    }
    if (array_close(&ids) || array_close(&ms))
        goto out;
    const char *params[2] = {ids.data, ms.data};
    device_users_ctx c = {fn, fctx};
    rc = pg_sink_read_rows(ctx, device_users_sql, 2, params, "users of devices in evicted months",
                           on_device_user, &c, err);
out:
    if (rc && !err->msg[0])
        err_set(err, "out of memory");
    strbuf_free(&ids);
    strbuf_free(&ms);
    return rc;
}
