/*
 * avro_resolve.h — Avro schema resolution and a bounded binary decoder for
 * our reader records.
 *
 * Records on a topic may be written with any version of a schema: older
 * (fields we added since are missing), newer (fields we do not know), with
 * int where we read long, or with wider unions. Avro's schema resolution
 * says how such a record reads into the reader schema; this module applies
 * it. A writer schema (JSON) is compiled once, against one reader schema,
 * into a plan: for each writer field in order, either "read it into reader
 * field k, converting like this" or "skip a value of this type". Reader
 * fields the writer lacks take their defaults; a reader field without a
 * default that the writer lacks makes the schema incompatible.
 *
 * Decoding a body then walks the plan over the bytes. It never allocates:
 * strings point into the body (valid as long as the caller's buffer is),
 * every length is checked against the bytes that remain before it is used,
 * varints are at most 10 bytes, int values must fit 32 bits, nesting is
 * bounded, and arrays and maps of zero-byte items cannot spin on a huge
 * count. Hostile bytes cost at most a pass over themselves.
 *
 * Supported writer types: every Avro type (primitives, record, enum, array,
 * map, union, fixed, named references, logical types as their base type).
 * Reader fields, as our reader schemas use them: "string", "long",
 * ["null","string"], ["null","long"] (the null branch may come second).
 * Conversions: int->long, bytes->string, a non-union writer into a reader
 * union, a writer union into anything (checked per record: a branch the
 * reader cannot take fails that record with AVRO_RES_MISMATCH).
 */
#ifndef ACTIVITY_AVRO_RESOLVE_H
#define ACTIVITY_AVRO_RESOLVE_H

#include "consumers/records.h"
#include "lib/log.h"

#include <stddef.h>
#include <stdint.h>

/* A parsed schema (any Avro schema). */
typedef struct avro_sch avro_sch;

/* Parses schema JSON; NULL with err set when it is not a valid schema. */
avro_sch *avro_sch_parse(const char *json, size_t len, errbuf *err);
void avro_sch_free(avro_sch *s);
/* The top-level record's full name ("activity.WebEvent"), or NULL if the
 * schema is not a record. */
const char *avro_sch_record_name(const avro_sch *s);

/* The shape of a reader field. */
enum reader_type {
    READER_STRING,
    READER_LONG,
    READER_OPT_STRING,
    READER_OPT_LONG,
};

#define READER_MAX_FIELDS 12 /* a user profile read flat has 12 */

/* One reader record: field names in the order the caller wants them in a
 * decoded_slots, their types and defaults, read from the reader schema. */
typedef struct {
    enum record_kind kind;
    int nfields;
    const char *names[READER_MAX_FIELDS];
    enum reader_type types[READER_MAX_FIELDS];
    bool has_default[READER_MAX_FIELDS];
    opt_str def_str[READER_MAX_FIELDS]; /* points into the reader schema */
    opt_long def_long[READER_MAX_FIELDS];
    const char *aliases[READER_MAX_FIELDS][4];
    avro_sch *schema; /* owns the strings above */
} reader_schema;

/* Builds a reader from a reader schema and the field names the caller
 * needs (in slot order). Fails when a field is missing or has a shape this
 * decoder does not read. */
int reader_schema_init(reader_schema *r, enum record_kind kind, const char *json, size_t len,
                       const char *const *fields, int nfields, errbuf *err);
void reader_schema_free(reader_schema *r);

/* A compiled writer → reader plan. */
typedef struct avro_plan avro_plan;

/* Compiles the plan; NULL with err set if the writer schema cannot be read
 * as the reader (not a record, a required field missing, a field of a type
 * that cannot convert). The plan keeps a reference to w (do not free the
 * writer schema before the plan) — or pass own=true to hand it over. */
avro_plan *avro_plan_new(const reader_schema *r, avro_sch *w, bool own, errbuf *err);
void avro_plan_free(avro_plan *p);

typedef struct {
    opt_str s[READER_MAX_FIELDS];
    opt_long l[READER_MAX_FIELDS];
} decoded_slots;

enum avro_res_status {
    AVRO_RES_OK = 0,
    AVRO_RES_BAD_BODY, /* truncated, bad length, bad varint, bad index */
    AVRO_RES_TRAILING, /* bytes left after the record */
    AVRO_RES_MISMATCH, /* a union branch the reader cannot take */
};

/* Decodes one body; slots get the reader fields (strings point into buf). */
enum avro_res_status avro_plan_decode(const avro_plan *p, const unsigned char *buf, size_t len,
                                      decoded_slots *out, errbuf *err);

#endif
