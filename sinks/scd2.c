/*
 * scd2.c — SCD2 flush support (see scd2.h): tracking configuration, the
 * merge SQL expanded from the sinks/sql/scd2.sql template, staging rows.
 */
#include "sinks/scd2.h"

#include "lib/embedded.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define TEMPLATE "sinks/sql/scd2.sql"
#define STAGE_MARK "-- ==== stage ====\n"
#define APPLY_MARK "-- ==== apply ====\n"

void scd2_config_defaults(scd2_config *c)
{
    memset(c, 0, sizeof *c);
    for (int k = 0; k < DIM_COUNT; k++)
        for (size_t i = 0; i < dim_tables[k].nattrs; i++)
            c->tracked[k][i] = true;
}

int scd2_config_parse(scd2_config *c, enum dim_kind kind, const char *list, errbuf *err)
{
    const dim_table *t = &dim_tables[kind];
    bool tracked[DIM_MAX_ATTRS] = {false};
    bool any = false;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        const char *name = p;
        size_t len = n;
        while (len && (*name == ' ' || *name == '\t'))
            name++, len--;
        while (len && (name[len - 1] == ' ' || name[len - 1] == '\t'))
            len--;
        if (len == 3 && strncmp(name, "all", 3) == 0) {
            for (size_t i = 0; i < t->nattrs; i++)
                tracked[i] = true;
            any = true;
        } else if (len) {
            size_t i = 0;
            while (i < t->nattrs &&
                   !(strlen(t->attrs[i]) == len && !strncmp(t->attrs[i], name, len)))
                i++;
            if (i == t->nattrs) {
                err_set(err, "%s has no attribute '%.*s' (it has", t->table, (int)len, name);
                for (size_t k = 0; k < t->nattrs; k++) {
                    size_t used = strlen(err->msg);
                    snprintf(err->msg + used, sizeof err->msg - used, "%s%s", k ? ", " : " ",
                             t->attrs[k]);
                }
                size_t used = strlen(err->msg);
                snprintf(err->msg + used, sizeof err->msg - used, ")");
                return -1;
            }
            tracked[i] = any = true;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!any) {
        err_set(err, "%s needs at least one tracked attribute (or 'all')", t->table);
        return -1;
    }
    memcpy(c->tracked[kind], tracked, sizeof tracked);
    return 0;
}

void scd2_config_format(const scd2_config *c, enum dim_kind kind, char *buf, size_t size)
{
    size_t pos = 0;
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < dim_tables[kind].nattrs; i++)
        if (c->tracked[kind][i] && pos < size) {
            int n =
                snprintf(buf + pos, size - pos, "%s%s", pos ? "," : "", dim_tables[kind].attrs[i]);
            pos += n > 0 ? (size_t)n : 0;
        }
}

/* ---- the template ------------------------------------------------------ */

typedef struct {
    const dim_table *t;
    const bool *tracked; /* NULL: every attribute */
} expand_ctx;

static bool is_tracked(const expand_ctx *x, size_t i)
{
    return !x->tracked || x->tracked[i];
}

/* Appends a list over the attributes: each item is fmt with the prefix(es)
 * and the name, items joined by ", ". which: 0 all, 1 tracked only. */
static int attr_list(strbuf *out, const expand_ctx *x, int which, const char *fmt, const char *p1,
                     const char *p2)
{
    bool first = true;
    for (size_t i = 0; i < x->t->nattrs; i++) {
        if (which == 1 && !is_tracked(x, i))
            continue;
        const char *a = x->t->attrs[i];
        int rc = first ? 0 : strbuf_append(out, ", ", 2);
        first = false;
        if (strcmp(fmt, "pick") == 0)
            rc = rc || strbuf_printf(out, "%s%s", is_tracked(x, i) ? p1 : p2, a);
        else if (strcmp(fmt, "set") == 0)
            rc = rc || strbuf_printf(out, "%s = %s%s", a, p1, a);
        else if (strcmp(fmt, "min") == 0)
            rc = rc || strbuf_printf(out, "min(%s%s) AS %s", p1, a, a);
        else if (strcmp(fmt, "defs") == 0)
            rc = rc || strbuf_printf(out, "%s text", a);
        else if (strcmp(fmt, "names") == 0)
            rc = rc || strbuf_printf(out, "'%s'", a);
        else
            rc = rc || strbuf_printf(out, "%s%s", p1, a);
        if (rc)
            return -1;
    }
    return 0;
}

/* Expands one {{name args}} token. */
static int expand_token(strbuf *out, const expand_ctx *x, const char *tok, size_t len, errbuf *err)
{
    char buf[64], *args[3] = {NULL, NULL, NULL};
    if (len >= sizeof buf)
        goto bad;
    memcpy(buf, tok, len);
    buf[len] = '\0';
    int n = 0;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && n < 3;
         w = strtok_r(NULL, " ", &save))
        args[n++] = w;
    if (n == 0)
        goto bad;
    const char *name = args[0], *p1 = args[1] ? args[1] : "", *p2 = args[2] ? args[2] : "";
    int rc;
    if (strcmp(name, "dim") == 0)
        rc = strbuf_printf(out, "%s", x->t->table);
    else if (strcmp(name, "key") == 0)
        rc = strbuf_printf(out, "%s", x->t->key);
    else if (strcmp(name, "changes") == 0)
        rc = strbuf_printf(out, "%s", x->t->changes);
    else if (strcmp(name, "attrs") == 0)
        rc = attr_list(out, x, 0, "attrs", p1, p2);
    else if (strcmp(name, "tracked") == 0)
        rc = attr_list(out, x, 1, "attrs", p1, p2);
    else if (strcmp(name, "tracked_names") == 0)
        rc = attr_list(out, x, 1, "names", p1, p2);
    else if (strcmp(name, "pick") == 0 || strcmp(name, "set") == 0 || strcmp(name, "min") == 0 ||
             strcmp(name, "defs") == 0)
        rc = attr_list(out, x, 0, name, p1, p2);
    else
        goto bad;
    if (rc)
        err_set(err, "out of memory");
    return rc;
bad:
    err_set(err, "%s: unknown template token {{%.*s}}", TEMPLATE, (int)(len < 40 ? len : 40), tok);
    return -1;
}

/* Expands the template section after mark (up to the next "-- ====" line
 * or the end) for one dimension. */
static int expand(strbuf *out, const expand_ctx *x, const char *mark, errbuf *err)
{
    size_t len;
    const char *text = embedded_file(TEMPLATE, &len);
    const char *start = text ? strstr(text, mark) : NULL;
    if (!start) {
        err_set(err, "%s is not embedded in this build (or lacks %.*s)", TEMPLATE,
                (int)strlen(mark) - 1, mark);
        return -1;
    }
    start += strlen(mark);
    const char *end = strstr(start, "-- ====");
    if (!end)
        end = text + len;
    for (const char *p = start; p < end;) {
        const char *open = strstr(p, "{{");
        if (!open || open >= end) {
            if (strbuf_append(out, p, (size_t)(end - p))) {
                err_set(err, "out of memory");
                return -1;
            }
            break;
        }
        const char *close = strstr(open + 2, "}}");
        if (!close || close >= end) {
            err_set(err, "%s: unterminated {{", TEMPLATE);
            return -1;
        }
        if (strbuf_append(out, p, (size_t)(open - p)) ||
            expand_token(out, x, open + 2, (size_t)(close - open - 2), err)) {
            if (!err->msg[0])
                err_set(err, "out of memory");
            return -1;
        }
        p = close + 2;
    }
    return 0;
}

int scd2_stage_sql(strbuf *out, errbuf *err)
{
    err->msg[0] = '\0';
    for (int k = 0; k < DIM_COUNT; k++) {
        expand_ctx x = {&dim_tables[k], NULL};
        if (expand(out, &x, STAGE_MARK, err))
            return -1;
    }
    return 0;
}

int scd2_apply_sql(const scd2_config *c, enum dim_kind kind, strbuf *out, errbuf *err)
{
    err->msg[0] = '\0';
    expand_ctx x = {&dim_tables[kind], c->tracked[kind]};
    return expand(out, &x, APPLY_MARK, err);
}

/* ---- staging rows ------------------------------------------------------ */

int scd2_encode_row(strbuf *sb, const dim_change *c)
{
    if (strbuf_printf(sb, "%" PRId64 "\t%" PRId64 "\t%c", c->id, c->updated_at_ms,
                      c->tombstone ? 't' : 'f'))
        return -1;
    for (size_t i = 0; i < dim_tables[c->kind].nattrs; i++) {
        const opt_str *a = &c->attrs[i];
        if (strbuf_append(sb, "\t", 1) ||
            (a->present ? strbuf_copy_text(sb, a->ptr, a->len) : strbuf_append(sb, "\\N", 2)))
            return -1;
    }
    return strbuf_append(sb, "\n", 1);
}
