/*
 * kafka_source.h — the consumer-group member that feeds the pipeline.
 *
 * It owns the librdkafka consumer: cooperative-sticky assignment on the
 * classic group protocol (the broker assigns on KIP-848's consumer protocol),
 * optional static membership, and a rebalance callback that asks the stage it
 * feeds (through source_callbacks: the pipeline, in `activity run`) where each
 * newly assigned partition starts (its Redis fences) and tells it which
 * partitions were revoked. Kafka's committed offsets are only for lag
 * monitoring; positions come from the fences.
 */
#ifndef ACTIVITY_KAFKA_SOURCE_H
#define ACTIVITY_KAFKA_SOURCE_H

#include "lib/config.h"

#include <librdkafka/rdkafka.h>

typedef struct {
    const char *group;
    const char *instance_id; /* NULL: dynamic membership */
    size_t prefetch_bytes;   /* librdkafka's fetched-but-unread queue, at most */
} source_options;

/* The client.id prefix of every group member; the deployment check
 * (cmd/deployment.h) reads the Redis prefix each live member serves from it. */
#define KAFKA_SOURCE_CLIENT_ID "activity;prefix="

/* What the source asks of the stage it feeds when the group moves partitions.
 * Both run inside kafka_source_poll. */
typedef struct {
    /* Where a newly assigned partition starts (RD_KAFKA_OFFSET_BEGINNING: from
     * the beginning). Nonzero, with err set, while that cannot be known (Redis
     * restarting): the source does not guess, it waits half a second, calls
     * recover (when set) and asks again. */
    int (*assign)(void *ctx, const char *topic, int32_t partition, int64_t *start, errbuf *err);
    void (*recover)(void *ctx, errbuf *err);
    /* The partition is no longer this member's. */
    void (*revoke)(void *ctx, const char *topic, int32_t partition);
    void *ctx;
} source_callbacks;

typedef struct kafka_source kafka_source;

kafka_source *kafka_source_new(const common_config *cfg, const source_options *opt,
                               const source_callbacks *cb, errbuf *err);
void kafka_source_free(kafka_source *src);

int kafka_source_subscribe(kafka_source *src, const char *const *topics, int n, errbuf *err);

/* Up to `max` messages into msgs (the caller destroys them), waiting up to
 * timeout_ms only when none is ready; 0 after the timeout. One
 * rd_kafka_consume_batch_queue call for many messages instead of one
 * rd_kafka_consumer_poll each. Rebalance callbacks run inside the call;
 * librdkafka purges from the batch the messages of a partition whose
 * assignment or position changed meanwhile, and the pipeline drops those of
 * partitions no longer assigned. Releases without that purge (before 2.1)
 * skip offsets around rebalances; ACTIVITY_MIN_RDKAFKA (lib/config.h) keeps
 * them out of the build. */
size_t kafka_source_poll(kafka_source *src, rd_kafka_message_t **msgs, size_t max, int timeout_ms);

/* Stores applied positions (the offsets in the list; librdkafka sets each
 * entry's err) for the periodic commit (lag monitoring). */
void kafka_source_store_positions(kafka_source *src, rd_kafka_topic_partition_list_t *positions);
/* Commits the stored positions. The periodic commit is asynchronous: a
 * synchronous one waits out a whole rebalance (seconds, while a dead member
 * times out), and positions come from the fences anyway. The last one, on
 * exit, waits. */
int kafka_source_commit(kafka_source *src, bool wait, errbuf *err);
int kafka_source_seek(kafka_source *src, rd_kafka_topic_partition_list_t *where, errbuf *err);
/* Pauses / resumes fetching of every assigned partition (Redis outage). */
void kafka_source_pause(kafka_source *src, bool pause);
/* A set error means a failure the consumer cannot recover from. */
const char *kafka_source_fatal(kafka_source *src);
/* Leaves the group cleanly (revokes, so the callback drops batches). */
void kafka_source_close(kafka_source *src);

rd_kafka_t *kafka_source_handle(kafka_source *src);

#endif
