/*
 * dlq.h — the dead-letter topic: records we cannot use, kept unchanged.
 *
 * A record that fails to decode or validate is produced byte-for-byte to
 * the dead-letter topic with headers naming the reason, the detail, and
 * where it came from (topic, partition, offset). The processor waits for
 * those deliveries before it treats the source offsets as done, so a dead
 * letter is never lost to a crash (it may be written twice after one).
 * One too large for the dead-letter topic is truncated to fit, with
 * headers activity.truncated=true, activity.original.size and
 * activity.original.sha256 (and activity.original.key.size/.sha256 when
 * the key is cut too).
 */
#ifndef ACTIVITY_DLQ_H
#define ACTIVITY_DLQ_H

#include "lib/config.h"
#include "lib/log.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct dlq dlq;

dlq *dlq_new(const common_config *cfg, errbuf *err);
void dlq_free(dlq *d);

int dlq_send(dlq *d, const rd_kafka_message_t *src, const char *reason, const char *detail,
             errbuf *err);
/* Waits until every record sent so far is acknowledged (librdkafka
 * retries for message.timeout.ms, 60 s); -1 if any failed, err naming
 * the dead-letter topic, the broker's reason and the first record. */
int dlq_wait(dlq *d, errbuf *err);

/* How much of a record's key and value a dead letter keeps to fit limit
 * bytes beside header_bytes of headers (names and values) and the
 * framing: 0 when both fit whole; 1 when cut (the key keeps at most half
 * of the room left by the truncation headers, the value the rest); -1 if
 * not even the headers fit. */
int dlq_fit(long long limit, size_t header_bytes, size_t key_len, size_t value_len,
            size_t *key_keep, size_t *value_keep);

uint64_t dlq_truncated(const dlq *d);

#endif
