/*
 * framing.h — the Confluent wire framing around an Avro body.
 *
 * Every record on our topics is: magic byte 0, a 4-byte big-endian schema
 * id, then the Avro binary body. Keeping it in one place means the producer
 * (`activity load`) and the consumer can never disagree about it.
 */
#ifndef ACTIVITY_FRAMING_H
#define ACTIVITY_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAMING_HEADER_SIZE 5
#define FRAMING_MAGIC 0

void framing_write_header(unsigned char *dst, uint32_t schema_id);

enum framing_status {
    FRAMING_OK = 0,
    FRAMING_TOO_SHORT,
    FRAMING_BAD_MAGIC,
};

/* On FRAMING_OK sets the schema id and the body span. */
enum framing_status framing_parse(const void *buf, size_t len, uint32_t *schema_id,
                                  const unsigned char **body, size_t *body_len);

#endif
