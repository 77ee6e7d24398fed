/*
 * dlq.c — dead-letter producer (see dlq.h).
 *
 * A dead letter must fit what the dead-letter topic accepts, or the record
 * it stands for can never be marked done: the processor would stop on it
 * at every restart (a poison pill). The limit is the smaller of this
 * producer's message.max.bytes and the topic's max.message.bytes (read
 * from the broker at start); a record whose key and value do not fit
 * beside the headers is cut to fit, and headers keep its original sizes
 * and SHA-256 digests, so the original can still be found and checked in
 * its source topic.
 */
#include "processors/dlq.h"

#include "consumers/kafka_admin.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes a record costs beyond its key, value and header bytes, at most:
 * the record batch header (61) and the record's and headers' varints. */
#define DLQ_FRAMING 512
/* Kafka's default max.message.bytes, assumed when the topic's cannot be
 * read (e.g. no DescribeConfigs permission). */
#define KAFKA_DEFAULT_MAX_MESSAGE 1048588

struct dlq {
    rd_kafka_t *rk;
    char *topic;
    long long limit; /* most bytes one dead letter may take, framing included */
    uint64_t truncated;
    uint64_t failed; /* delivery failures since the last dlq_wait */
    char first_error[400];
};

static const char *header_text(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) || !v)
        return "?";
    snprintf(buf, size, "%.*s", (int)len, (const char *)v);
    return buf;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dlq *d = opaque;
    if (!m->err)
        return;
    if (d->failed++ == 0) {
        /* The first failure names the record it stood for. */
        rd_kafka_headers_t *h = NULL;
        rd_kafka_message_headers(m, &h);
        char t[256], p[16], o[32];
        snprintf(d->first_error, sizeof d->first_error,
                 "%s (the dead letter of %s [%s] @%s, %zu bytes)", rd_kafka_err2str(m->err),
                 header_text(h, "activity.source.topic", t, sizeof t),
                 header_text(h, "activity.source.partition", p, sizeof p),
                 header_text(h, "activity.source.offset", o, sizeof o), m->len + m->key_len);
    }
}

static long long conf_number(rd_kafka_conf_t *conf, const char *name)
{
    char value[64];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK)
        return -1;
    return strtoll(value, NULL, 10);
}

/* With a short-lived producer on the same settings: creates the topic if
 * needed and reads its max.message.bytes. */
static long long topic_limit(rd_kafka_conf_t *conf, const char *topic, errbuf *err)
{
    rd_kafka_t *probe =
        kafka_client_new(RD_KAFKA_PRODUCER, rd_kafka_conf_dup(conf), "dead-letter producer", err);
    if (!probe)
        return -1;
    long long limit = -1;
    if (kafka_ensure_topic(probe, topic, KAFKA_DEFAULT_PARTITIONS, 1, err) == 0) {
        errbuf why = {{0}};
        limit = kafka_topic_config_number(probe, topic, "max.message.bytes", &why);
        if (limit < 0) {
            log_warn("cannot read max.message.bytes of the dead-letter topic (%s); assuming "
                     "Kafka's default, %d",
                     why.msg, KAFKA_DEFAULT_MAX_MESSAGE);
            limit = KAFKA_DEFAULT_MAX_MESSAGE;
        }
    }
    rd_kafka_destroy(probe);
    return limit;
}

dlq *dlq_new(const common_config *cfg, errbuf *err)
{
    dlq *d = calloc(1, sizeof *d);
    if (!d || !(d->topic = strdup(cfg->dlq_topic))) {
        free(d);
        err_set(err, "out of memory");
        return NULL;
    }
    /* librdkafka retries a failing delivery for message.timeout.ms; the
     * processor waits for it before it moves on, so keep it to a minute
     * (-X message.timeout.ms=… overrides, for every client). */
    static const kafka_prop props[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
        {"message.timeout.ms", "60000"},
    };
    rd_kafka_conf_t *conf = kafka_client_conf(cfg, props, sizeof props / sizeof props[0], err);
    if (!conf) {
        dlq_free(d);
        return NULL;
    }
    long long topic_max = topic_limit(conf, d->topic, err);
    long long producer_max = conf_number(conf, "message.max.bytes");
    if (topic_max < 0) {
        rd_kafka_conf_destroy(conf);
        dlq_free(d);
        return NULL;
    }
    d->limit = producer_max > 0 && producer_max < topic_max ? producer_max : topic_max;
    /* A batch of several dead letters must fit the topic's limit too. */
    char batch[32];
    snprintf(batch, sizeof batch, "%lld", d->limit > 2 * DLQ_FRAMING ? d->limit - DLQ_FRAMING : 1);
    if (conf_number(conf, "batch.size") > d->limit - DLQ_FRAMING &&
        kafka_conf_set(conf, "batch.size", batch, err)) {
        rd_kafka_conf_destroy(conf);
        dlq_free(d);
        return NULL;
    }
    log_debug("dead letters to %s fit %lld bytes (producer message.max.bytes %lld, topic "
              "max.message.bytes %lld)",
              d->topic, d->limit, producer_max, topic_max);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, d);
    if (!(d->rk = kafka_client_new(RD_KAFKA_PRODUCER, conf, "dead-letter producer", err))) {
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

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL))
        n = 0;
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[2 * (n < 32 ? n : 32)] = '\0';
}

/* The headers the truncation adds, at most (names and values). */
#define TRUNCATION_HEADERS                                                                         \
    (sizeof "activity.truncated" + 4 + 2 * (sizeof "activity.original.key.sha256" + 64) +          \
     2 * (sizeof "activity.original.key.size" + 20))

int dlq_fit(long long limit, size_t header_bytes, size_t key_len, size_t value_len,
            size_t *key_keep, size_t *value_keep)
{
    long long room = limit - DLQ_FRAMING - (long long)header_bytes;
    *key_keep = key_len;
    *value_keep = value_len;
    if ((long long)(key_len + value_len) <= room)
        return 0;
    room -= (long long)TRUNCATION_HEADERS;
    if (room < 2)
        return -1;
    /* The key keeps up to half the room, the value the rest. */
    if ((long long)key_len > room / 2)
        *key_keep = (size_t)(room / 2);
    if ((long long)(*key_keep + value_len) > room)
        *value_keep = (size_t)(room - (long long)*key_keep);
    return 1;
}

int dlq_send(dlq *d, const rd_kafka_message_t *src, const char *reason, const char *detail,
             errbuf *err)
{
    char partition[16], offset[32];
    snprintf(partition, sizeof partition, "%d", src->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)src->offset);
    const char *topic = rd_kafka_topic_name(src->rkt);
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    rd_kafka_header_add(h, "activity.reason", -1, reason, -1);
    rd_kafka_header_add(h, "activity.detail", -1, detail, -1);
    rd_kafka_header_add(h, "activity.source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "activity.source.partition", -1, partition, -1);
    rd_kafka_header_add(h, "activity.source.offset", -1, offset, -1);
    size_t key_len, value_len;
    /* 128: the five header names. */
    size_t header_bytes =
        strlen(reason) + strlen(detail) + strlen(topic) + strlen(partition) + strlen(offset) + 128;
    int fit = dlq_fit(d->limit, header_bytes, src->key_len, src->len, &key_len, &value_len);
    if (fit < 0) {
        rd_kafka_headers_destroy(h);
        err_set(err,
                "the dead letter of %s [%d] @%lld cannot fit the %lld bytes the "
                "dead-letter topic %s accepts, even truncated: raise its max.message.bytes",
                topic, src->partition, (long long)src->offset, d->limit, d->topic);
        return -1;
    }
    if (fit == 1) {
        char size[24], hash[65];
        rd_kafka_header_add(h, "activity.truncated", -1, "true", -1);
        snprintf(size, sizeof size, "%zu", src->len);
        sha256_hex(src->payload, src->len, hash);
        rd_kafka_header_add(h, "activity.original.size", -1, size, -1);
        rd_kafka_header_add(h, "activity.original.sha256", -1, hash, -1);
        if (key_len < src->key_len) {
            snprintf(size, sizeof size, "%zu", src->key_len);
            sha256_hex(src->key, src->key_len, hash);
            rd_kafka_header_add(h, "activity.original.key.size", -1, size, -1);
            rd_kafka_header_add(h, "activity.original.key.sha256", -1, hash, -1);
        }
        d->truncated++;
        log_warn("the dead letter of %s [%d] @%lld (%s) is truncated from %zu to %zu bytes to "
                 "fit the dead-letter topic %s (%lld bytes); headers keep the original size "
                 "and SHA-256",
                 topic, src->partition, (long long)src->offset, reason, src->key_len + src->len,
                 key_len + value_len, d->topic, d->limit);
    }
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(src->payload, value_len), RD_KAFKA_V_KEY(src->key, key_len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            break; /* the message owns the headers now */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_headers_destroy(h);
            err_set(err,
                    "the dead letter of %s [%d] @%lld was refused by the dead-letter "
                    "producer for %s: %s",
                    topic, src->partition, (long long)src->offset, d->topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(d->rk, 100);
    }
    rd_kafka_poll(d->rk, 0);
    return 0;
}

int dlq_wait(dlq *d, errbuf *err)
{
    while (rd_kafka_outq_len(d->rk) > 0)
        rd_kafka_flush(d->rk, 1000);
    if (d->failed) {
        err_set(err,
                "%llu dead letter(s) could not be delivered to the dead-letter topic %s: %s. "
                "Their records are not marked done (a restart retries them): check that the "
                "topic exists, that this client may write to it, and its max.message.bytes",
                (unsigned long long)d->failed, d->topic, d->first_error);
        d->failed = 0;
        return -1;
    }
    return 0;
}

uint64_t dlq_truncated(const dlq *d)
{
    return d->truncated;
}
