/*
 * kafka_source.c — consumer-group member (see kafka_source.h).
 */
#include "consumers/kafka_source.h"
#include "lib/run_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kafka_source {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer queue: messages and, forwarded, callbacks */
    source_callbacks cb;
    char fatal[512];
    /* Static membership on the consumer protocol: a copy of the configuration and the
     * subscription, to start a new consumer while a killed predecessor still holds our
     * instance id (see kafka_source_poll). */
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *subscription;
    bool ever_assigned;
    bool restart; /* the broker refused our instance id before any assignment */
    int restarts;
};

static void assign_partitions(kafka_source *src, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        errbuf err = {{0}};
        int64_t start;
        /* Without its fences we cannot know where a partition starts;
         * retry rather than guess (Redis may be restarting). */
        int attempt = 0;
        while (src->cb.assign(src->cb.ctx, tp->topic, tp->partition, &start, &err)) {
            if (attempt++ % 10 == 0)
                log_warn("cannot read fences of %s [%d], retrying: %s", tp->topic, tp->partition,
                         err.msg);
            struct timespec ts = {0, 500000000};
            nanosleep(&ts, NULL);
            if (src->cb.recover)
                src->cb.recover(src->cb.ctx, &err);
        }
        tp->offset = start;
        if (start == RD_KAFKA_OFFSET_BEGINNING)
            log_debug("assigned %s [%d] from the beginning", tp->topic, tp->partition);
        else
            log_debug("assigned %s [%d] from its lowest fence, offset %lld", tp->topic,
                      tp->partition, (long long)start);
    }
}

/* "topic [0,1,2], other [3]" for a log line; partitions of one topic are
 * usually listed together. */
static void describe(const rd_kafka_topic_partition_list_t *parts, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && n + 32 < size; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        bool same = i > 0 && strcmp(parts->elems[i - 1].topic, tp->topic) == 0;
        int w = same ? snprintf(buf + n - 1, size - n + 1, ",%d]", tp->partition) - 1
                     : snprintf(buf + n, size - n, "%s%s [%d]", i ? ", " : "", tp->topic,
                                tp->partition);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_source *src = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;
    run_metrics_rebalance(e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS);
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        src->ever_assigned = true;
        assign_partitions(src, parts);
        char what[1024];
        describe(parts, what, sizeof what);
        log_info("assigned %d partition(s), each starting at its lowest fence: %s", parts->cnt,
                 what);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            ret = rd_kafka_assign(rk, parts);
    } else {
        for (int i = 0; i < parts->cnt; i++)
            src->cb.revoke(src->cb.ctx, parts->elems[i].topic, parts->elems[i].partition);
        char what[1024];
        describe(parts, what, sizeof what);
        log_info("revoked %d partition(s): %s", parts->cnt, what);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            ret = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        log_error("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        log_error("rebalance: %s", rd_kafka_err2str(ret));
    }
}

/* A fatal error ends this consumer instance. On the consumer protocol (KIP-848) a static
 * member restarted after a kill -9 is refused with UNRELEASED_INSTANCE_ID until the broker
 * times its predecessor's session out (the classic protocol replaces the old member at
 * once); before we ever had an assignment that is worth waiting out with a new instance,
 * not an exit. Anything else is fatal for the processor too. */
static void note_fatal(kafka_source *src, rd_kafka_t *rk)
{
    char buf[256];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    if (orig == RD_KAFKA_RESP_ERR_UNRELEASED_INSTANCE_ID && !src->ever_assigned && src->conf)
        src->restart = true;
    else if (!src->fatal[0])
        snprintf(src->fatal, sizeof src->fatal, "%s", buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_source *src = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        note_fatal(src, rk);
        return;
    }
    /* Broker restarts and the like: librdkafka retries by itself. */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
        log_warn("kafka: %s", reason);
    else
        log_warn("kafka: %s: %s", rd_kafka_err2name(err), reason);
}

/* librdkafka's statistics (-X statistics.interval.ms, or --metrics-addr):
 * consumer lag for the metrics. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)opaque;
    run_metrics_kafka_stats(json, len);
    return 0; /* librdkafka frees json */
}

/* A consumer instance from CONF (which it takes, also on failure). */
static int start_consumer(kafka_source *src, rd_kafka_conf_t *conf, errbuf *err)
{
    if (!(src->rk = kafka_client_new(RD_KAFKA_CONSUMER, conf, "kafka consumer", err)))
        return -1;
    rd_kafka_poll_set_consumer(src->rk);
    src->queue = rd_kafka_queue_get_consumer(src->rk);
    return 0;
}

kafka_source *kafka_source_new(const common_config *cfg, const source_options *opt,
                               const source_callbacks *cb, errbuf *err)
{
    kafka_source *src = calloc(1, sizeof *src);
    if (!src) {
        err_set(err, "out of memory");
        return NULL;
    }
    src->cb = *cb;
    /* The group protocol is librdkafka's default (classic) unless -X group.protocol=consumer
     * asks for KIP-848's. There the broker assigns partitions (always incrementally) and owns
     * the session timeout and heartbeat interval, and librdkafka refuses a client-side
     * assignor, so the cooperative-sticky one is named for classic groups only. */
    const char *protocol = config_kafka_value(cfg, "group.protocol");
    bool classic = !protocol || strcmp(protocol, "classic") == 0;
    /* The prefetch queue's share of the memory budget (--max-memory), P. librdkafka
     * bounds it by record count and by payload bytes, both counted over the whole consumer
     * queue. Each queued record also costs ~500 bytes of librdkafka's bookkeeping (measured
     * with heaptrack), so for our ~100-byte events the count bound (P / 1024) is the one
     * that holds, and the byte bound (P / 2) the one for large records. A fetch response
     * may land on top of a full queue: fetch.max.bytes is P / 8 (compressed), at least
     * librdkafka's 1 MB message.max.bytes. */
    size_t p = opt->prefetch_bytes;
    size_t fetch_bytes = p / 8 > 1048576 ? p / 8 : 1048576;
    char prefetch_kb[32], prefetch_msgs[32], fetch_max[32], part_max[32];
    snprintf(prefetch_kb, sizeof prefetch_kb, "%zu", p / 2 / 1024);
    snprintf(prefetch_msgs, sizeof prefetch_msgs, "%zu", p / 1024);
    snprintf(fetch_max, sizeof fetch_max, "%zu", fetch_bytes);
    snprintf(part_max, sizeof part_max, "%zu", fetch_bytes / 2);
    /* The prefix in the client.id tells the ownership check which prefix
     * each live member serves (KAFKA_SOURCE_CLIENT_ID). */
    char client_id[512];
    snprintf(client_id, sizeof client_id, "%s%s", KAFKA_SOURCE_CLIENT_ID, cfg->redis_prefix);
    const kafka_prop props[] = {
        {"client.id", client_id},
        {"group.id", opt->group},
        {"partition.assignment.strategy", classic ? "cooperative-sticky" : NULL},
        {"auto.offset.reset", "earliest"},
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"enable.partition.eof", "false"},
        {"queued.max.messages.kbytes", prefetch_kb},
        {"queued.min.messages", prefetch_msgs},
        {"fetch.max.bytes", fetch_max},
        {"max.partition.fetch.bytes", part_max},
        /* A small queue reaches its bounds often; librdkafka's default waits 1 s before
         * fetching again after that, which stalled the processor more than the budget
         * bounds it. */
        {"fetch.queue.backoff.ms", "10"},
        /* Partitions added to a topic are noticed at the next metadata
         * refresh: 10 s rather than librdkafka's 5 minutes (-X overrides). */
        {"topic.metadata.refresh.interval.ms", "10000"},
        {"group.instance.id", opt->instance_id},
    };
    rd_kafka_conf_t *conf = kafka_client_conf(cfg, props, sizeof props / sizeof props[0], err);
    if (!conf) {
        free(src);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_opaque(conf, src);
    if (opt->instance_id && !classic)
        src->conf = rd_kafka_conf_dup(conf);
    if (start_consumer(src, conf, err)) {
        kafka_source_free(src);
        return NULL;
    }
    return src;
}

void kafka_source_free(kafka_source *src)
{
    if (!src)
        return;
    if (src->queue)
        rd_kafka_queue_destroy(src->queue);
    if (src->rk)
        rd_kafka_destroy(src->rk);
    if (src->conf)
        rd_kafka_conf_destroy(src->conf);
    if (src->subscription)
        rd_kafka_topic_partition_list_destroy(src->subscription);
    free(src);
}

int kafka_source_subscribe(kafka_source *src, const char *const *topics, int n, errbuf *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(src->rk, list);
    if (src->subscription)
        rd_kafka_topic_partition_list_destroy(src->subscription);
    src->subscription = list;
    if (e) {
        err_set(err, "subscribe: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* The consumer was refused our static instance id (note_fatal): a new instance joins
 * again a second later. Nothing was assigned yet, so the pipeline has nothing to drop. */
static void restart_consumer(kafka_source *src)
{
    if (src->restarts++ % 10 == 0)
        log_warn("kafka: instance id still held by a previous member of the group (killed "
                 "before it left?); joining again every second until the broker times its "
                 "session out");
    rd_kafka_queue_destroy(src->queue);
    src->queue = NULL;
    rd_kafka_destroy(src->rk);
    src->rk = NULL;
    src->restart = false;
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    errbuf err = {{0}};
    rd_kafka_resp_err_t e;
    if (start_consumer(src, rd_kafka_conf_dup(src->conf), &err))
        snprintf(src->fatal, sizeof src->fatal, "restarting the consumer: %.400s", err.msg);
    else if ((e = rd_kafka_subscribe(src->rk, src->subscription)))
        snprintf(src->fatal, sizeof src->fatal, "subscribe: %s", rd_kafka_err2str(e));
}

size_t kafka_source_poll(kafka_source *src, rd_kafka_message_t **msgs, size_t max, int timeout_ms)
{
    if (src->restart)
        restart_consumer(src);
    if (src->fatal[0])
        return 0;
    /* The batch call waits until it has `max` messages or the timeout passed: ask for
     * what is there, and only if that is nothing, wait for one. */
    ssize_t got = rd_kafka_consume_batch_queue(src->queue, 0, msgs, max);
    if (got == 0 && timeout_ms > 0)
        got = rd_kafka_consume_batch_queue(src->queue, timeout_ms, msgs, 1);
    /* A fatal error also arrives as an error message: keep it out of the batch. */
    size_t n = 0;
    for (ssize_t i = 0; i < got; i++) {
        if (msgs[i]->err == RD_KAFKA_RESP_ERR__FATAL) {
            note_fatal(src, src->rk);
            rd_kafka_message_destroy(msgs[i]);
        } else {
            msgs[n++] = msgs[i];
        }
    }
    return n;
}

void kafka_source_store_positions(kafka_source *src, rd_kafka_topic_partition_list_t *positions)
{
    if (positions->cnt)
        rd_kafka_offsets_store(src->rk, positions);
}

int kafka_source_commit(kafka_source *src, bool wait, errbuf *err)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(src->rk, NULL, wait ? 0 : 1);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        err_set(err, "commit: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int kafka_source_seek(kafka_source *src, rd_kafka_topic_partition_list_t *where, errbuf *err)
{
    /* An infinite timeout: a seek is a local operation that completes at
     * once; with a finite one, a seek that is merely slow would be reported
     * as timed out with its outcome unknown. */
    rd_kafka_error_t *e = rd_kafka_seek_partitions(src->rk, where, -1);
    if (e) {
        err_set(err, "seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return -1;
    }
    for (int i = 0; i < where->cnt; i++)
        if (where->elems[i].err) {
            err_set(err, "seek %s [%d]: %s", where->elems[i].topic, where->elems[i].partition,
                    rd_kafka_err2str(where->elems[i].err));
            return -1;
        }
    return 0;
}

void kafka_source_pause(kafka_source *src, bool pause)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    if (rd_kafka_assignment(src->rk, &list) || !list)
        return;
    if (pause)
        rd_kafka_pause_partitions(src->rk, list);
    else
        rd_kafka_resume_partitions(src->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
}

const char *kafka_source_fatal(kafka_source *src)
{
    return src->fatal[0] ? src->fatal : NULL;
}

void kafka_source_close(kafka_source *src)
{
    if (!src->rk) /* a failed restart left none */
        return;
    rd_kafka_consumer_close(src->rk);
}

rd_kafka_t *kafka_source_handle(kafka_source *src)
{
    return src->rk;
}
