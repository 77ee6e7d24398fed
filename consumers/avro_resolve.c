/*
 * avro_resolve.c — schema parsing, writer→reader plans and the bounded
 * binary decoder (see avro_resolve.h).
 *
 * Three parts:
 *   1. A schema parser (jansson) into a graph of nodes; named types are
 *      shared, so recursive schemas are cycles, not infinite trees.
 *   2. Plan compilation: writer fields in order, each a read into a reader
 *      slot (with a conversion per writer union branch) or a skip.
 *   3. The decoder: varints, lengths and indexes checked against the bytes
 *      left; a recursion bound; an item budget for zero-byte array items.
 */
#include "consumers/avro_resolve.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. schemas -------------------------------------------------------- */

typedef enum {
    AT_NULL,
    AT_BOOLEAN,
    AT_INT,
    AT_LONG,
    AT_FLOAT,
    AT_DOUBLE,
    AT_BYTES,
    AT_STRING,
    AT_RECORD,
    AT_ENUM,
    AT_ARRAY,
    AT_MAP,
    AT_UNION,
    AT_FIXED,
} atype;

enum { LT_NONE, LT_TS_MILLIS, LT_TS_MICROS };

typedef struct node node;
struct node {
    atype t;
    int logical;
    const char *name;   /* full name of a named type (owned by the sch) */
    size_t n;           /* fields, branches, symbols, or fixed size */
    node **sub;         /* field types, branches, or [0] items/values */
    const char **fname; /* field names (borrowed from the JSON) */
    json_t **fjson;     /* field objects (borrowed): default, aliases */
    size_t min_size;    /* fewest bytes a value takes */
    int sizing;         /* 1 while min_size is being computed */
    int sized;          /* min_size is final */
};

struct avro_sch {
    json_t *doc;
    node *root;
    node **all;
    size_t nall, capall;
    char **names; /* owned full names */
    node **named;
    size_t nnamed, capnamed;
};

#define MAX_DEPTH 64

static node *new_node(avro_sch *s, atype t)
{
    if (s->nall == s->capall) {
        size_t nc = s->capall ? s->capall * 2 : 16;
        node **na = realloc(s->all, nc * sizeof *na);
        if (!na)
            return NULL;
        s->all = na;
        s->capall = nc;
    }
    node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->t = t;
    s->all[s->nall++] = n;
    return n;
}

void avro_sch_free(avro_sch *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nall; i++) {
        free(s->all[i]->sub);
        free(s->all[i]->fname);
        free(s->all[i]->fjson);
        free(s->all[i]);
    }
    for (size_t i = 0; i < s->nnamed; i++)
        free(s->names[i]);
    free(s->all);
    free(s->names);
    free(s->named);
    json_decref(s->doc);
    free(s);
}

static const struct {
    const char *name;
    atype t;
} primitives[] = {
    {"null", AT_NULL},   {"boolean", AT_BOOLEAN}, {"int", AT_INT},     {"long", AT_LONG},
    {"float", AT_FLOAT}, {"double", AT_DOUBLE},   {"bytes", AT_BYTES}, {"string", AT_STRING},
};

static int primitive(const char *name, atype *t)
{
    for (size_t i = 0; i < sizeof primitives / sizeof primitives[0]; i++)
        if (strcmp(name, primitives[i].name) == 0) {
            *t = primitives[i].t;
            return 1;
        }
    return 0;
}

static char *full_name(const char *name, const char *ns)
{
    size_t nl = strlen(name), sl = ns && *ns && !strchr(name, '.') ? strlen(ns) : 0;
    char *f = malloc(nl + sl + 2);
    if (!f)
        return NULL;
    if (sl) {
        memcpy(f, ns, sl);
        f[sl] = '.';
        memcpy(f + sl + 1, name, nl + 1);
    } else
        memcpy(f, name, nl + 1);
    return f;
}

static node *lookup(avro_sch *s, const char *full)
{
    for (size_t i = 0; i < s->nnamed; i++)
        if (strcmp(s->names[i], full) == 0)
            return s->named[i];
    return NULL;
}

static int add_named(avro_sch *s, char *full, node *n, errbuf *err)
{
    if (lookup(s, full)) {
        err_set(err, "type %s is defined twice", full);
        free(full);
        return -1;
    }
    if (s->nnamed == s->capnamed) {
        size_t nc = s->capnamed ? s->capnamed * 2 : 8;
        char **nn = realloc(s->names, nc * sizeof *nn);
        if (!nn) {
            free(full);
            return -1;
        }
        s->names = nn;
        node **nd = realloc(s->named, nc * sizeof *nd);
        if (!nd) {
            free(full);
            return -1;
        }
        s->named = nd;
        s->capnamed = nc;
    }
    s->names[s->nnamed] = full;
    s->named[s->nnamed++] = n;
    n->name = full;
    return 0;
}

static node *parse(avro_sch *s, json_t *j, const char *ns, int depth, errbuf *err);

static node *parse_name_ref(avro_sch *s, const char *name, const char *ns, errbuf *err)
{
    atype t;
    if (primitive(name, &t))
        return new_node(s, t);
    node *n = NULL;
    if (!strchr(name, '.') && ns && *ns) {
        char *f = full_name(name, ns);
        if (!f)
            return NULL;
        n = lookup(s, f);
        free(f);
    }
    if (!n)
        n = lookup(s, name);
    if (!n)
        err_set(err, "unknown type '%.100s'", name);
    return n;
}

static const char *str_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Registers a named type's node under its full name; returns the
 * namespace its members are resolved in (borrowed from n->name). */
static int name_node(avro_sch *s, json_t *j, node *n, const char *ns, char *nsbuf, size_t nscap,
                     errbuf *err)
{
    const char *name = str_member(j, "name");
    if (!name || !*name) {
        err_set(err, "a named type has no name");
        return -1;
    }
    const char *own_ns = str_member(j, "namespace");
    char *full = full_name(name, own_ns ? own_ns : ns);
    if (!full)
        return -1;
    if (add_named(s, full, n, err))
        return -1;
    const char *dot = strrchr(n->name, '.');
    size_t l = dot ? (size_t)(dot - n->name) : 0;
    if (l >= nscap) {
        err_set(err, "namespace of %.64s... is longer than %zu bytes", n->name, nscap - 1);
        return -1;
    }
    memcpy(nsbuf, n->name, l);
    nsbuf[l] = '\0';
    return 0;
}

static node *parse_record(avro_sch *s, json_t *j, const char *ns, int depth, errbuf *err)
{
    node *n = new_node(s, AT_RECORD);
    char inner[256];
    if (!n || name_node(s, j, n, ns, inner, sizeof inner, err))
        return NULL;
    json_t *fields = json_object_get(j, "fields");
    if (!json_is_array(fields)) {
        err_set(err, "record %s has no fields array", n->name);
        return NULL;
    }
    size_t nf = json_array_size(fields);
    n->n = nf;
    n->sub = calloc(nf ? nf : 1, sizeof *n->sub);
    n->fname = calloc(nf ? nf : 1, sizeof *n->fname);
    n->fjson = calloc(nf ? nf : 1, sizeof *n->fjson);
    if (!n->sub || !n->fname || !n->fjson)
        return NULL;
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(fields, i);
        const char *fname = json_is_object(f) ? str_member(f, "name") : NULL;
        if (!fname) {
            err_set(err, "field %zu of record %s has no name", i, n->name);
            return NULL;
        }
        n->fname[i] = fname;
        n->fjson[i] = f;
        json_t *ft = json_object_get(f, "type");
        if (!ft) {
            err_set(err, "field %s of record %s has no type", fname, n->name);
            return NULL;
        }
        if (!(n->sub[i] = parse(s, ft, inner, depth + 1, err)))
            return NULL;
    }
    return n;
}

static node *parse(avro_sch *s, json_t *j, const char *ns, int depth, errbuf *err)
{
    if (depth > MAX_DEPTH) {
        err_set(err, "schema nests deeper than %d levels", MAX_DEPTH);
        return NULL;
    }
    if (json_is_string(j))
        return parse_name_ref(s, json_string_value(j), ns, err);
    if (json_is_array(j)) {
        size_t nb = json_array_size(j);
        if (nb == 0) {
            err_set(err, "empty union");
            return NULL;
        }
        node *n = new_node(s, AT_UNION);
        if (!n || !(n->sub = calloc(nb, sizeof *n->sub)))
            return NULL;
        n->n = nb;
        for (size_t i = 0; i < nb; i++) {
            if (!(n->sub[i] = parse(s, json_array_get(j, i), ns, depth + 1, err)))
                return NULL;
            if (n->sub[i]->t == AT_UNION) {
                err_set(err, "a union directly inside a union");
                return NULL;
            }
        }
        return n;
    }
    if (!json_is_object(j)) {
        err_set(err, "a schema must be a string, an array or an object");
        return NULL;
    }
    json_t *tj = json_object_get(j, "type");
    if (!tj) {
        err_set(err, "a schema object has no type");
        return NULL;
    }
    if (!json_is_string(tj))
        return parse(s, tj, ns, depth + 1, err);
    const char *type = json_string_value(tj);
    atype t;
    if (primitive(type, &t)) {
        node *n = new_node(s, t);
        const char *lt = str_member(j, "logicalType");
        if (n && lt && t == AT_LONG)
            n->logical = strcmp(lt, "timestamp-millis") == 0   ? LT_TS_MILLIS
                         : strcmp(lt, "timestamp-micros") == 0 ? LT_TS_MICROS
                                                               : LT_NONE;
        return n;
    }
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0)
        return parse_record(s, j, ns, depth, err);
    if (strcmp(type, "enum") == 0) {
        node *n = new_node(s, AT_ENUM);
        char inner[256];
        if (!n || name_node(s, j, n, ns, inner, sizeof inner, err))
            return NULL;
        json_t *sym = json_object_get(j, "symbols");
        if (!json_is_array(sym) || json_array_size(sym) == 0) {
            err_set(err, "enum %s has no symbols", n->name);
            return NULL;
        }
        n->n = json_array_size(sym);
        return n;
    }
    if (strcmp(type, "fixed") == 0) {
        node *n = new_node(s, AT_FIXED);
        char inner[256];
        if (!n || name_node(s, j, n, ns, inner, sizeof inner, err))
            return NULL;
        json_t *size = json_object_get(j, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0 ||
            json_integer_value(size) > (1 << 30)) {
            err_set(err, "fixed %s has no valid size", n->name);
            return NULL;
        }
        n->n = (size_t)json_integer_value(size);
        return n;
    }
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        bool arr = type[0] == 'a';
        node *n = new_node(s, arr ? AT_ARRAY : AT_MAP);
        if (!n || !(n->sub = calloc(1, sizeof *n->sub)))
            return NULL;
        json_t *items = json_object_get(j, arr ? "items" : "values");
        if (!items) {
            err_set(err, "%s has no %s", type, arr ? "items" : "values");
            return NULL;
        }
        n->n = 1;
        if (!(n->sub[0] = parse(s, items, ns, depth + 1, err)))
            return NULL;
        return n;
    }
    return parse_name_ref(s, type, ns, err);
}

static size_t min_size(node *n)
{
    if (n->sizing)
        return 0; /* a cycle: 0 is a safe lower bound */
    switch (n->t) {
    case AT_NULL:
        return 0;
    case AT_FLOAT:
        return 4;
    case AT_DOUBLE:
        return 8;
    case AT_FIXED:
        return n->n;
    case AT_RECORD: {
        if (n->sized)
            return n->min_size;
        n->sizing = 1;
        size_t sum = 0;
        for (size_t i = 0; i < n->n; i++) {
            size_t m = min_size(n->sub[i]);
            sum = sum + m < sum ? (size_t)-2 : sum + m;
        }
        n->sizing = 0;
        n->sized = 1;
        n->min_size = sum;
        return sum;
    }
    default:
        return 1; /* a varint, a length, a block count, a branch index */
    }
}

avro_sch *avro_sch_parse(const char *json, size_t len, errbuf *err)
{
    avro_sch *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, "out of memory");
        return NULL;
    }
    json_error_t jerr;
    s->doc = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (!s->doc) {
        err_set(err, "schema is not JSON: %s", jerr.text);
        avro_sch_free(s);
        return NULL;
    }
    errbuf why = {{0}};
    s->root = parse(s, s->doc, "", 0, &why);
    if (!s->root) {
        err_set(err, "invalid schema: %s", why.msg[0] ? why.msg : "out of memory");
        avro_sch_free(s);
        return NULL;
    }
    for (size_t i = 0; i < s->nall; i++)
        s->all[i]->min_size = min_size(s->all[i]);
    return s;
}

const char *avro_sch_record_name(const avro_sch *s)
{
    return s && s->root->t == AT_RECORD ? s->root->name : NULL;
}

/* ---- 2. readers and plans ---------------------------------------------- */

int reader_schema_init(reader_schema *r, enum record_kind kind, const char *json, size_t len,
                       const char *const *fields, int nfields, errbuf *err)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    if (nfields > READER_MAX_FIELDS) {
        err_set(err, "too many reader fields");
        return -1;
    }
    if (!(r->schema = avro_sch_parse(json, len, err)))
        return -1;
    node *root = r->schema->root;
    if (root->t != AT_RECORD) {
        err_set(err, "reader schema is not a record");
        goto fail;
    }
    r->nfields = nfields;
    for (int k = 0; k < nfields; k++) {
        size_t i;
        for (i = 0; i < root->n; i++)
            if (strcmp(root->fname[i], fields[k]) == 0)
                break;
        if (i == root->n) {
            err_set(err, "reader schema %s has no field %s", root->name, fields[k]);
            goto fail;
        }
        r->names[k] = root->fname[i];
        node *ft = root->sub[i];
        json_t *def = json_object_get(root->fjson[i], "default");
        if (ft->t == AT_STRING || ft->t == AT_LONG) {
            r->types[k] = ft->t == AT_STRING ? READER_STRING : READER_LONG;
            if (def && ft->t == AT_STRING && json_is_string(def)) {
                r->has_default[k] = true;
                r->def_str[k] = (opt_str){json_string_value(def), json_string_length(def), true};
            } else if (def && ft->t == AT_LONG && json_is_integer(def)) {
                r->has_default[k] = true;
                r->def_long[k] = (opt_long){json_integer_value(def), true};
            }
        } else if (ft->t == AT_UNION && ft->n == 2 &&
                   (ft->sub[0]->t == AT_NULL || ft->sub[1]->t == AT_NULL)) {
            node *first = ft->sub[0], *other = ft->sub[first->t == AT_NULL ? 1 : 0];
            if (other->t != AT_STRING && other->t != AT_LONG) {
                err_set(err, "reader field %s is a union this decoder does not read", fields[k]);
                goto fail;
            }
            r->types[k] = other->t == AT_STRING ? READER_OPT_STRING : READER_OPT_LONG;
            /* A union's default is of its first branch. */
            if (def && first->t == AT_NULL && json_is_null(def))
                r->has_default[k] = true;
            else if (def && first->t == AT_STRING && json_is_string(def)) {
                r->has_default[k] = true;
                r->def_str[k] = (opt_str){json_string_value(def), json_string_length(def), true};
            } else if (def && first->t == AT_LONG && json_is_integer(def)) {
                r->has_default[k] = true;
                r->def_long[k] = (opt_long){json_integer_value(def), true};
            }
        } else {
            err_set(err, "reader field %s has a type this decoder does not read", fields[k]);
            goto fail;
        }
        json_t *al = json_object_get(root->fjson[i], "aliases");
        for (size_t a = 0; json_is_array(al) && a < json_array_size(al) && a < 4; a++)
            if (json_is_string(json_array_get(al, a)))
                r->aliases[k][a] = json_string_value(json_array_get(al, a));
    }
    return 0;
fail:
    reader_schema_free(r);
    return -1;
}

void reader_schema_free(reader_schema *r)
{
    avro_sch_free(r->schema);
    memset(r, 0, sizeof *r);
}

/* How one writer value (of a non-union type) lands in a reader slot. */
enum conv {
    C_FAIL,   /* the reader cannot take this branch */
    C_NULL,   /* writer null → absent */
    C_INT,    /* zigzag int (32-bit checked) → long */
    C_LONG,   /* zigzag long */
    C_MICROS, /* timestamp-micros long → millis */
    C_STRING, /* string or bytes */
};

typedef struct {
    const node *w;        /* writer type */
    int slot;             /* -1: skip */
    uint8_t conv;         /* when w is not a union */
    uint8_t *branch_conv; /* when w is a union */
} op;

struct avro_plan {
    const reader_schema *reader;
    avro_sch *writer;
    bool own;
    op *ops;
    size_t nops;
    decoded_slots defaults;
    uint8_t reader_micros_ok[READER_MAX_FIELDS];
};

static uint8_t conv_for(const node *w, enum reader_type rt)
{
    switch (w->t) {
    case AT_NULL:
        return rt == READER_OPT_STRING || rt == READER_OPT_LONG ? C_NULL : C_FAIL;
    case AT_INT:
        return rt == READER_LONG || rt == READER_OPT_LONG ? C_INT : C_FAIL;
    case AT_LONG:
        if (rt != READER_LONG && rt != READER_OPT_LONG)
            return C_FAIL;
        return w->logical == LT_TS_MICROS ? C_MICROS : C_LONG;
    case AT_STRING:
    case AT_BYTES:
        return rt == READER_STRING || rt == READER_OPT_STRING ? C_STRING : C_FAIL;
    default:
        return C_FAIL;
    }
}

static int reader_slot_for(const reader_schema *r, const char *wname)
{
    for (int k = 0; k < r->nfields; k++) {
        if (strcmp(r->names[k], wname) == 0)
            return k;
        for (int a = 0; a < 4 && r->aliases[k][a]; a++)
            if (strcmp(r->aliases[k][a], wname) == 0)
                return k;
    }
    return -1;
}

static const char *reader_type_name(enum reader_type t)
{
    switch (t) {
    case READER_STRING:
        return "string";
    case READER_LONG:
        return "long";
    case READER_OPT_STRING:
        return "[null, string]";
    case READER_OPT_LONG:
        return "[null, long]";
    }
    return "?";
}

void avro_plan_free(avro_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nops; i++)
        free(p->ops[i].branch_conv);
    free(p->ops);
    if (p->own)
        avro_sch_free(p->writer);
    free(p);
}

avro_plan *avro_plan_new(const reader_schema *r, avro_sch *w, bool own, errbuf *err)
{
    avro_plan *p = calloc(1, sizeof *p);
    if (!p) {
        err_set(err, "out of memory");
        if (own)
            avro_sch_free(w);
        return NULL;
    }
    p->reader = r;
    p->writer = w;
    p->own = own;
    const node *root = w->root;
    if (root->t != AT_RECORD) {
        err_set(err, "writer schema is not a record");
        goto fail;
    }
    p->ops = calloc(root->n ? root->n : 1, sizeof *p->ops);
    if (!p->ops) {
        err_set(err, "out of memory");
        goto fail;
    }
    p->nops = root->n;
    bool provided[READER_MAX_FIELDS] = {false};
    for (size_t i = 0; i < root->n; i++) {
        op *o = &p->ops[i];
        o->w = root->sub[i];
        o->slot = reader_slot_for(r, root->fname[i]);
        if (o->slot < 0)
            continue;
        enum reader_type rt = r->types[o->slot];
        if (o->w->t == AT_UNION) {
            o->branch_conv = calloc(o->w->n, 1);
            if (!o->branch_conv) {
                err_set(err, "out of memory");
                goto fail;
            }
            bool any = false;
            for (size_t b = 0; b < o->w->n; b++) {
                o->branch_conv[b] = conv_for(o->w->sub[b], rt);
                any |= o->branch_conv[b] != C_FAIL;
            }
            if (!any) {
                err_set(err, "writer field %s: no branch of its union reads as %s", root->fname[i],
                        reader_type_name(rt));
                goto fail;
            }
        } else {
            o->conv = conv_for(o->w, rt);
            if (o->conv == C_FAIL) {
                err_set(err, "writer field %s cannot be read as %s", root->fname[i],
                        reader_type_name(rt));
                goto fail;
            }
        }
        provided[o->slot] = true;
    }
    for (int k = 0; k < r->nfields; k++) {
        if (provided[k])
            continue;
        if (!r->has_default[k]) {
            err_set(err, "writer schema lacks field %s, which has no default in the reader",
                    r->names[k]);
            goto fail;
        }
        p->defaults.s[k] = r->def_str[k];
        p->defaults.l[k] = r->def_long[k];
    }
    return p;
fail:
    avro_plan_free(p);
    return NULL;
}

/* ---- 3. decoding ------------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
    size_t zero_items; /* budget for array/map items that take no bytes */
    errbuf *err;
} cursor;

#define ZERO_ITEM_BUDGET (1u << 16)

static inline int read_long(cursor *c, int64_t *out)
{
    const unsigned char *p = c->p;
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        if (p == c->end) {
            err_set(c->err, "truncated varint");
            return -1;
        }
        unsigned char b = *p++;
        if (shift == 63 && b > 1) {
            err_set(c->err, "varint longer than 64 bits");
            return -1;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
    c->p = p;
    return 0;
}

static inline int read_int(cursor *c, int64_t *out)
{
    if (read_long(c, out))
        return -1;
    if (*out < INT32_MIN || *out > INT32_MAX) {
        err_set(c->err, "int value %lld does not fit 32 bits", (long long)*out);
        return -1;
    }
    return 0;
}

static inline int need(cursor *c, int64_t n, const char *what)
{
    if (n < 0 || (uint64_t)n > (uint64_t)(c->end - c->p)) {
        err_set(c->err, "%s of %lld bytes, but %td bytes are left", what, (long long)n,
                c->end - c->p);
        return -1;
    }
    return 0;
}

static int skip(cursor *c, const node *n, int depth);

static int skip_blocks(cursor *c, const node *item, bool map, int depth)
{
    size_t isize = item->min_size + (map ? 1 : 0);
    for (;;) {
        int64_t count;
        if (read_long(c, &count))
            return -1;
        if (count == 0)
            return 0;
        if (count < 0) {
            int64_t bytes;
            if (count == INT64_MIN || read_long(c, &bytes) || need(c, bytes, "block"))
                return -1;
            c->p += bytes; /* a sized block can be skipped whole */
            continue;
        }
        if (isize > 0) {
            if ((uint64_t)count > (uint64_t)(c->end - c->p) / isize) {
                err_set(c->err, "block of %lld items cannot fit in %td bytes", (long long)count,
                        c->end - c->p);
                return -1;
            }
        } else {
            if ((uint64_t)count > c->zero_items) {
                err_set(c->err, "too many empty items (%lld)", (long long)count);
                return -1;
            }
            c->zero_items -= (size_t)count;
        }
        for (int64_t i = 0; i < count; i++) {
            if (map) {
                int64_t kl;
                if (read_long(c, &kl) || need(c, kl, "map key"))
                    return -1;
                c->p += kl;
            }
            if (skip(c, item, depth + 1))
                return -1;
        }
    }
}

static int skip(cursor *c, const node *n, int depth)
{
    if (depth > MAX_DEPTH) {
        err_set(c->err, "value nests deeper than %d levels", MAX_DEPTH);
        return -1;
    }
    int64_t v;
    switch (n->t) {
    case AT_NULL:
        return 0;
    case AT_BOOLEAN:
        if (need(c, 1, "boolean"))
            return -1;
        if (*c->p > 1) {
            err_set(c->err, "boolean byte 0x%02x", *c->p);
            return -1;
        }
        c->p++;
        return 0;
    case AT_INT:
        return read_int(c, &v);
    case AT_LONG:
        return read_long(c, &v);
    case AT_FLOAT:
        if (need(c, 4, "float"))
            return -1;
        c->p += 4;
        return 0;
    case AT_DOUBLE:
        if (need(c, 8, "double"))
            return -1;
        c->p += 8;
        return 0;
    case AT_BYTES:
    case AT_STRING:
        if (read_long(c, &v) || need(c, v, "string"))
            return -1;
        c->p += v;
        return 0;
    case AT_FIXED:
        if (need(c, (int64_t)n->n, "fixed"))
            return -1;
        c->p += n->n;
        return 0;
    case AT_ENUM:
        if (read_int(c, &v))
            return -1;
        if (v < 0 || (uint64_t)v >= n->n) {
            err_set(c->err, "enum index %lld out of range", (long long)v);
            return -1;
        }
        return 0;
    case AT_UNION:
        if (read_long(c, &v))
            return -1;
        if (v < 0 || (uint64_t)v >= n->n) {
            err_set(c->err, "union branch %lld out of range", (long long)v);
            return -1;
        }
        return skip(c, n->sub[v], depth + 1);
    case AT_RECORD:
        for (size_t i = 0; i < n->n; i++)
            if (skip(c, n->sub[i], depth + 1))
                return -1;
        return 0;
    case AT_ARRAY:
        return skip_blocks(c, n->sub[0], false, depth);
    case AT_MAP:
        return skip_blocks(c, n->sub[0], true, depth);
    }
    err_set(c->err, "unknown type");
    return -1;
}

/* Reads a value of conversion cv into slot k. */
static inline int read_conv(cursor *c, uint8_t cv, int k, decoded_slots *out)
{
    int64_t v;
    switch (cv) {
    case C_NULL:
        out->s[k] = (opt_str){0};
        out->l[k] = (opt_long){0};
        return 0;
    case C_INT:
        if (read_int(c, &v))
            return -1;
        out->l[k] = (opt_long){v, true};
        return 0;
    case C_LONG:
        if (read_long(c, &v))
            return -1;
        out->l[k] = (opt_long){v, true};
        return 0;
    case C_MICROS:
        if (read_long(c, &v))
            return -1;
        out->l[k] = (opt_long){v / 1000 - (v % 1000 < 0), true};
        return 0;
    case C_STRING:
        if (read_long(c, &v) || need(c, v, "string"))
            return -1;
        out->s[k] = (opt_str){(const char *)c->p, (size_t)v, true};
        c->p += v;
        return 0;
    }
    return -1;
}

enum avro_res_status avro_plan_decode(const avro_plan *p, const unsigned char *buf, size_t len,
                                      decoded_slots *out, errbuf *err)
{
    cursor c = {buf, buf + len, ZERO_ITEM_BUDGET, err};
    *out = p->defaults;
    for (size_t i = 0; i < p->nops; i++) {
        const op *o = &p->ops[i];
        if (o->slot < 0) {
            if (skip(&c, o->w, 1))
                return AVRO_RES_BAD_BODY;
            continue;
        }
        if (!o->branch_conv) {
            if (read_conv(&c, o->conv, o->slot, out))
                return AVRO_RES_BAD_BODY;
            continue;
        }
        int64_t b;
        if (read_long(&c, &b))
            return AVRO_RES_BAD_BODY;
        if (b < 0 || (uint64_t)b >= o->w->n) {
            err_set(err, "union branch %lld out of range for field %s", (long long)b,
                    p->reader->names[o->slot]);
            return AVRO_RES_BAD_BODY;
        }
        uint8_t cv = o->branch_conv[b];
        if (cv == C_FAIL) {
            /* Still check the bytes, so a bad body is reported as one. */
            if (skip(&c, o->w->sub[b], 2))
                return AVRO_RES_BAD_BODY;
            err_set(err,
                    "field %s holds a value of union branch %lld, which the reader's %s "
                    "cannot take",
                    p->reader->names[o->slot], (long long)b,
                    reader_type_name(p->reader->types[o->slot]));
            return AVRO_RES_MISMATCH;
        }
        if (read_conv(&c, cv, o->slot, out))
            return AVRO_RES_BAD_BODY;
    }
    if (c.p != c.end) {
        err_set(err, "%td bytes left after the record", c.end - c.p);
        return AVRO_RES_TRAILING;
    }
    return AVRO_RES_OK;
}
