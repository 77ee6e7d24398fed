/*
 * dlq.c — dead-letter producer (see dlq.h).
 */
#include "sinks/dlq.h"

#include "consumers/kafka_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dlq {
    rd_kafka_t *rk;
    char *topic;
    uint64_t sent;
    uint64_t failed; /* delivery failures since the last dlq_wait */
    char last_error[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dlq *d = opaque;
    if (m->err) {
        d->failed++;
        snprintf(d->last_error, sizeof d->last_error, "%s", rd_kafka_err2str(m->err));
    }
}

dlq *dlq_new(const common_config *cfg, errbuf *err)
{
    dlq *d = calloc(1, sizeof *d);
    if (!d || !(d->topic = strdup(cfg->dlq_topic))) {
        free(d);
        err_set(err, "out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    if (kafka_conf_set(conf, "enable.idempotence", "true", err) ||
        kafka_conf_set(conf, "linger.ms", "5", err) || config_apply_kafka(cfg, conf, err)) {
        rd_kafka_conf_destroy(conf);
        dlq_free(d);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, d);
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!d->rk) {
        err_set(err, "dead-letter producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        dlq_free(d);
        return NULL;
    }
    if (kafka_ensure_topic(d->rk, d->topic, KAFKA_DEFAULT_PARTITIONS, 1, err)) {
        dlq_free(d);
        return NULL;
    }
    return d;
}

void dlq_free(dlq *d)
{
    if (!d)
        return;
    if (d->rk) {
        rd_kafka_flush(d->rk, 10000);
        rd_kafka_destroy(d->rk);
    }
    free(d->topic);
    free(d);
}

int dlq_send(dlq *d, const rd_kafka_message_t *src, const char *reason, const char *detail,
             errbuf *err)
{
    char partition[16], offset[32];
    snprintf(partition, sizeof partition, "%d", src->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)src->offset);
    const char *topic = rd_kafka_topic_name(src->rkt);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(src->payload, src->len), RD_KAFKA_V_KEY(src->key, src->key_len),
            RD_KAFKA_V_HEADER("activity.reason", reason, -1),
            RD_KAFKA_V_HEADER("activity.detail", detail, -1),
            RD_KAFKA_V_HEADER("activity.source.topic", topic, -1),
            RD_KAFKA_V_HEADER("activity.source.partition", partition, -1),
            RD_KAFKA_V_HEADER("activity.source.offset", offset, -1), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            err_set(err, "dead-letter produce to %s: %s", d->topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(d->rk, 100);
    }
    d->sent++;
    rd_kafka_poll(d->rk, 0);
    return 0;
}

int dlq_wait(dlq *d, errbuf *err)
{
    while (rd_kafka_outq_len(d->rk) > 0)
        rd_kafka_flush(d->rk, 1000);
    if (d->failed) {
        err_set(err, "%llu dead letters were not delivered to %s: %s",
                (unsigned long long)d->failed, d->topic, d->last_error);
        d->failed = 0;
        return -1;
    }
    return 0;
}

uint64_t dlq_count(const dlq *d)
{
    return d->sent;
}
