/*
 * avro_flatten.h — reads nested records as flat fields.
 *
 * The Avro binary encoding of a record is its fields' encodings back to
 * back, with nothing around them, so a record field (not inside a union)
 * encodes exactly like its own fields would in its place. Flattening a
 * schema replaces every such field with its record's fields, named
 * "<field>_<subfield>" (recursively): the flat schema reads the same bytes.
 * This lets the flat reader of avro_resolve.h decode user profiles
 * ({user_id, name {first, last, title}, address {...}, contact {...},
 * updated_at}) as name_first, name_last, ..., contact_value, whichever
 * schema version wrote them.
 *
 * Not flattened: a record inside a union (["null", {record}]) — the union
 * index precedes it, so it is not the same bytes — and a record referred
 * to by name after its definition (the reference would dangle). A schema
 * using either simply cannot be read as our flat reader, which the decoder
 * reports as an incompatible schema.
 */
#ifndef ACTIVITY_AVRO_FLATTEN_H
#define ACTIVITY_AVRO_FLATTEN_H

#include "lib/log.h"

#include <stddef.h>

/* Returns the flattened schema text (malloc'd, NUL-terminated, *out_len
 * set), or NULL with err set when json is not a JSON value. Schemas
 * without nested records come back unchanged (re-serialised). */
char *avro_flatten(const char *json, size_t len, size_t *out_len, errbuf *err);

#endif
