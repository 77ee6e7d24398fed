/*
 * avro_codec.h — Avro encode/decode of our record types, with framing.
 *
 * Encoding (used by `activity load`) goes through avro-c with the reader
 * schemas in schemas/. Decoding (the processor's hot path) does not: it
 * resolves the record's writer schema against our reader schema once per
 * schema id (avro_resolve.h) and then decodes bodies with a bounded,
 * allocation-free decoder whose strings point into the message. Decoded
 * structs stay valid as long as the buffer passed to avro_codec_decode.
 *
 * Schema ids: without a schema registry, id 1 is schemas/web_event.avsc,
 * id 2 schemas/device.avsc and id 3 schemas/user_profile.avsc (whose
 * nested records are read as flat fields, see avro_flatten.h; plus any added with
 * avro_codec_add_schema). With a registry, every id is looked up there
 * once (GET /schemas/ids/{id}) and the parsed schema and plan are cached;
 * ids the registry does not know are cached as unknown too (bounded).
 */
#ifndef ACTIVITY_AVRO_CODEC_H
#define ACTIVITY_AVRO_CODEC_H

#include "consumers/records.h"
#include "consumers/schema_registry.h"
#include "lib/log.h"

#include <stddef.h>

typedef struct avro_codec avro_codec;

avro_codec *avro_codec_new(errbuf *err);
void avro_codec_free(avro_codec *codec);

/* Looks schema ids up in this registry from now on (borrowed; NULL goes
 * back to local ids). Drops every cached id. */
void avro_codec_set_registry(avro_codec *codec, schema_registry *registry);

/* Adds (or replaces) a local writer schema under an id: records framed
 * with it decode by schema resolution. Used without a registry. */
int avro_codec_add_schema(avro_codec *codec, uint32_t id, const char *json, size_t len,
                          errbuf *err);

/* The reader schema text of a kind (schemas/<kind>.avsc), for registering. */
const char *avro_codec_schema_text(enum record_kind kind, size_t *len);

/* Records of a kind are written with the local schema id (1, 2, 3) unless
 * this sets the id a registry gave. */
void avro_codec_set_write_id(avro_codec *codec, enum record_kind kind, uint32_t id);

/* Encodes a framed record; *out points into codec-owned memory valid until
 * the next encode. Returns 0, or -1 with err set. */
int avro_codec_encode_event(avro_codec *codec, const web_event *ev, const void **out, size_t *len,
                            errbuf *err);
int avro_codec_encode_device(avro_codec *codec, const device_record *dev, const void **out,
                             size_t *len, errbuf *err);
int avro_codec_encode_profile(avro_codec *codec, const profile_record *p, const void **out,
                              size_t *len, errbuf *err);

/* Why a record could not be decoded; the names go into dead-letter headers.
 * DECODE_REGISTRY_UNAVAILABLE is not about the record: the caller must
 * retry later, not dead-letter it. */
enum decode_status {
    DECODE_OK = 0,
    DECODE_TOO_SHORT,
    DECODE_BAD_MAGIC,
    DECODE_UNKNOWN_SCHEMA,
    DECODE_BAD_BODY,
    DECODE_TRAILING_BYTES,
    DECODE_INCOMPATIBLE_SCHEMA, /* writer schema cannot be read as the topic's reader schema */
    DECODE_SCHEMA_MISMATCH,     /* a union branch the reader cannot take, in this record */
    DECODE_REGISTRY_UNAVAILABLE,
};

const char *decode_status_name(enum decode_status status);

/* Decodes a framed record; expect_kind (RECORD_NONE for any) is the reader
 * schema to resolve into (with RECORD_NONE, the writer record's name picks
 * it: WebEvent, Device or UserProfile). */
enum decode_status avro_codec_decode(avro_codec *codec, const void *buf, size_t len,
                                     enum record_kind expect_kind, decoded_record *out,
                                     errbuf *err);

/* Ids looked up in the registry so far (cache misses), for stats/tests. */
unsigned long avro_codec_registry_lookups(const avro_codec *codec);

#endif
