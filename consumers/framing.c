/*
 * framing.c — Confluent wire framing (see framing.h).
 */
#include "consumers/framing.h"

void framing_write_header(unsigned char *dst, uint32_t schema_id)
{
    dst[0] = FRAMING_MAGIC;
    dst[1] = (unsigned char)(schema_id >> 24);
    dst[2] = (unsigned char)(schema_id >> 16);
    dst[3] = (unsigned char)(schema_id >> 8);
    dst[4] = (unsigned char)schema_id;
}

enum framing_status framing_parse(const void *buf, size_t len, uint32_t *schema_id,
                                  const unsigned char **body, size_t *body_len)
{
    const unsigned char *p = buf;
    if (!p || len < FRAMING_HEADER_SIZE)
        return FRAMING_TOO_SHORT;
    if (p[0] != FRAMING_MAGIC)
        return FRAMING_BAD_MAGIC;
    *schema_id = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | p[4];
    *body = p + FRAMING_HEADER_SIZE;
    *body_len = len - FRAMING_HEADER_SIZE;
    return FRAMING_OK;
}
