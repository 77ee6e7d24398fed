/*
 * kafka_times.h — where a time starts in a topic: for `activity backfill
 * --from/--to`, which reads a range of event times without a consumer
 * group's positions or the live fences.
 */
#ifndef ACTIVITY_KAFKA_TIMES_H
#define ACTIVITY_KAFKA_TIMES_H

#include "lib/log.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct {
    int32_t partition;
    int64_t low, high; /* watermarks: the first retained offset, the end */
    /* The first offset whose record timestamp is at or after the time
     * (rd_kafka_offsets_for_times); high when no record is. */
    int64_t start;
} kafka_time_start;

/* One entry per partition of topic into *out (caller frees), *n of them.
 * Returns 0, or -1 with err set (an unknown topic included). */
int kafka_offsets_for_time(rd_kafka_t *rk, const char *topic, int64_t ts_ms, kafka_time_start **out,
                           int *n, errbuf *err);

#endif
