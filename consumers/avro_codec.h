/*
 * avro_codec.h — Avro encode/decode of our record types, with framing.
 *
 * The codec owns the parsed schemas, avro-c value instances that are reused
 * for every record (no allocation per record once warmed up), and the
 * memory reader/writer. Decoding returns structs whose strings point into
 * the codec's value; they stay valid until the next decode call.
 *
 * Schema ids: until a schema registry is configured, id 1 is
 * schemas/web_event.avsc and id 2 is schemas/device.avsc.
 */
#ifndef ACTIVITY_AVRO_CODEC_H
#define ACTIVITY_AVRO_CODEC_H

#include "consumers/records.h"
#include "src/log.h"

typedef struct avro_codec avro_codec;

avro_codec *avro_codec_new(errbuf *err);
void avro_codec_free(avro_codec *codec);

/* The schema id records of a kind are written with. */
uint32_t avro_codec_schema_id(enum record_kind kind);

/* Encodes a framed record; *out points into codec-owned memory valid until
 * the next encode. Returns 0, or -1 with err set. */
int avro_codec_encode_event(avro_codec *codec, const web_event *ev, const void **out, size_t *len,
                            errbuf *err);
int avro_codec_encode_device(avro_codec *codec, const device_record *dev, const void **out,
                             size_t *len, errbuf *err);

/* Why a record could not be decoded; the names go into dead-letter headers. */
enum decode_status {
    DECODE_OK = 0,
    DECODE_TOO_SHORT,
    DECODE_BAD_MAGIC,
    DECODE_UNKNOWN_SCHEMA,
    DECODE_BAD_BODY,
    DECODE_TRAILING_BYTES,
};

const char *decode_status_name(enum decode_status status);

/* Decodes a framed record; expect_kind (RECORD_NONE for any) rejects a
 * record of another type with DECODE_UNKNOWN_SCHEMA. */
enum decode_status avro_codec_decode(avro_codec *codec, const void *buf, size_t len,
                                     enum record_kind expect_kind, decoded_record *out,
                                     errbuf *err);

#endif
