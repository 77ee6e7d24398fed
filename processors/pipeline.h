/*
 * pipeline.h — the processor's per-partition state and the path of a
 * record from Kafka message to applied Redis state.
 *
 * For each assigned partition the pipeline keeps the fences read from Redis
 * (next offset each key group still needs), the position (next offset to
 * process) and a batch being folded. A record is decoded, validated (bad
 * ones go to the dead-letter topic), and folded into its partition's batch
 * minus the parts whose key group has already applied that offset. Then
 * pipeline_apply() sends each partition's batch to Redis, fenced.
 */
#ifndef ACTIVITY_PIPELINE_H
#define ACTIVITY_PIPELINE_H

#include "consumers/avro_codec.h"
#include "processors/batch.h"
#include "processors/redis_state.h"
#include "processors/validate.h"
#include "processors/dlq.h"

#include <librdkafka/rdkafka.h>

typedef struct {
    char *topic;
    int32_t partition;
    enum record_kind kind;
    int64_t fences[KEY_GROUPS];
    int64_t position; /* next offset to process; -1 before the first record */
    int64_t applied;  /* everything below is applied in Redis */
    bool assigned;
    uint32_t generation; /* bumped on every assignment and revocation */
    batch b;
    bool pending; /* b has records (or skipped ones) not yet applied */
    /* The batch sent to Redis and not yet acknowledged (see
     * pipeline_apply_begin). */
    batch inflight_b;
    bool inflight;
    apply_ticket ticket;
    int ticket_rc; /* what redis_state_apply_recv answered (pipeline_apply_end) */
    int64_t inflight_position;
    /* For the log: the first offset and record count of the batch being
     * folded, and of the one in flight. */
    int64_t first_offset, inflight_first;
    /* The highest fence when the batch being folded began (fences do not
     * move while one is folded): records at or past it skip the per-group
     * fence lookups, which is every record once a partition is under way. */
    int64_t fence_max;
    uint64_t n_records, inflight_records;
    /* Of those, dead letters (for the applied-records metric). */
    uint64_t n_dead, inflight_dead;
    uint32_t inflight_generation;
    /* After Redis lost state: where this partition stood then. Until it
     * has applied that far again, Redis holds a partial rebuild and
     * flushes wait (pipeline_rebuilding); 0 when not rebuilding. */
    int64_t rebuild_to;
    /* The latest event time this process has folded from the partition
     * (INT64_MIN: none): every apply and fence advance carries it, so each
     * key group's watermark covers every batch up to its fence. */
    int64_t max_event_ms;
} partition_state;

typedef struct {
    uint64_t records;      /* consumed and handled */
    uint64_t events;       /* web events folded */
    uint64_t devices;      /* device records folded */
    uint64_t profiles;     /* user profile records folded */
    uint64_t tombstones;   /* null values on the devices and profiles topics */
    uint64_t dead_letters; /* sent to the DLQ */
    uint64_t fence_conflicts;
    uint64_t late_events;  /* older than their partition's watermark */
    uint64_t out_of_range; /* events skipped by the event-time range (backfill) */
} pipeline_stats;

typedef struct {
    avro_codec *codec;
    redis_state *redis;       /* fences, flush and everything synchronous */
    redis_state *apply_redis; /* batch applies only: replies may be pending */
    dlq *dead_letters;
    validation_rules rules;
    int64_t lateness_ms; /* the allowed lateness (late events are counted) */
    const char *events_topic;
    const char *devices_topic;
    const char *profiles_topic; /* NULL: not consumed */
    partition_state **parts;
    size_t n_parts, cap_parts;
    bool dlq_pending;
    /* `activity backfill --from/--to`: only events with event_time in
     * [range_from_ms, range_to_ms) are folded, the others are counted in
     * stats.out_of_range; and dead letters are counted, not sent again (the
     * live processor sent them when it read those records). */
    bool range;
    int64_t range_from_ms, range_to_ms;
    pipeline_stats stats;
} pipeline;

void pipeline_init(pipeline *p, avro_codec *codec, redis_state *redis, redis_state *apply_redis,
                   dlq *dead_letters, const char *events_topic, const char *devices_topic);
void pipeline_free(pipeline *p);
/* Records of this topic are user profiles (dim_users' changes). */
void pipeline_set_profiles_topic(pipeline *p, const char *topic);
/* Folds only the events with event_time in [from_ms, to_ms) and sends no
 * dead letters (see pipeline.range). */
void pipeline_set_event_range(pipeline *p, int64_t from_ms, int64_t to_ms);

partition_state *pipeline_find(pipeline *p, const char *topic, int32_t partition);

/* On assignment: reads the partition's fences and returns the offset to
 * start from (the lowest fence; RD_KAFKA_OFFSET_BEGINNING if some group has
 * never applied anything from it). */
int pipeline_assign(pipeline *p, const char *topic, int32_t partition, int64_t *start, errbuf *err);
/* On revocation: drops the partition's unapplied batch; the next owner
 * starts from the fences, so nothing is lost. */
void pipeline_revoke(pipeline *p, const char *topic, int32_t partition);

/* Handles one consumed message. Returns -1 only for errors that stop the
 * processor (e.g. out of memory); bad records go to the DLQ. */
int pipeline_handle(pipeline *p, const rd_kafka_message_t *m, errbuf *err);

/* Applies every pending batch in two halves, so Redis applies one batch
 * while the next is polled and folded: _begin waits for the dead letters,
 * then sends each partition's batch (fences advanced optimistically) on
 * the apply connection; _end reads the replies. _end returns 0; or
 * PIPELINE_FENCE_MOVED if some partition's fence had moved forward
 * (another instance applied it), PIPELINE_STATE_LOST if one went back or
 * vanished (Redis lost state): in both cases every assigned partition is
 * resynced (pipeline_resync, *reseek lists where to seek, caller frees);
 * or -1 on a Redis error, after which the caller resyncs once Redis is
 * back. pipeline_apply does both. _begin (and pipeline_apply) return
 * PIPELINE_DLQ_FAILED when a dead letter could not be delivered: not a
 * Redis failure, and not one that waiting for Redis would fix (err names
 * the dead-letter topic and the reason). */
#define PIPELINE_FENCE_MOVED 1
#define PIPELINE_STATE_LOST 2
#define PIPELINE_DLQ_FAILED (-2)
int pipeline_apply_begin(pipeline *p, errbuf *err);
int pipeline_apply_end(pipeline *p, rd_kafka_topic_partition_list_t **reseek, errbuf *err);
int pipeline_apply(pipeline *p, rd_kafka_topic_partition_list_t **reseek, errbuf *err);
bool pipeline_in_flight(const pipeline *p);
/* The applied position of every assigned partition that has one, for the
 * consumer's lag-monitoring commit (the caller destroys the list). */
rd_kafka_topic_partition_list_t *pipeline_positions(const pipeline *p);
/* Bytes the batches being folded hold (batch_bytes over the partitions). */
size_t pipeline_pending_bytes(const pipeline *p);
/* Gives back the memory of idle batches (neither being folded nor in
 * flight), largest first, until every batch together holds at most
 * `keep` bytes (batch_capacity), or none is idle. A batch keeps its
 * capacity across resets, so partitions that each once took a large batch
 * would otherwise hold it all at once. Returns the bytes released. */
size_t pipeline_release_batches(pipeline *p, size_t keep);

/* After a Redis failure, when whether the last batches applied is unknown,
 * or after a fence moved: drops every batch (no reply may be pending on
 * the apply connection), re-reads the fences of every assigned partition
 * and lists where to seek. state_lost: Redis lost this prefix's state, so
 * each partition records where it stood (rebuild_to). */
int pipeline_resync(pipeline *p, rd_kafka_topic_partition_list_t **reseek, bool state_lost,
                    errbuf *err);

/* True while some assigned partition has not applied again up to where it
 * stood when Redis lost state: flushing then would write a partial
 * rebuild over good rows. */
bool pipeline_rebuilding(pipeline *p);

/* Advances quiet groups' fences to each partition's position. A fence
 * found moved resyncs every partition: same return values as
 * pipeline_apply_end. */
int pipeline_advance_fences(pipeline *p, rd_kafka_topic_partition_list_t **reseek, errbuf *err);

#endif
