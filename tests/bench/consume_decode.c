/*
 * consume_decode.c — the throughput ceiling for `make bench`: a bare
 * librdkafka consume + Avro decode loop over a topic, with nothing else.
 *
 * It reads every partition of the topic from the beginning to the high
 * watermark seen at start (plain assign, no group), decodes each record
 * with the processor's own codec, and prints records/s. The ratio of the
 * processor's rate to this one says how much our own work costs.
 *
 * usage: consume_decode BROKERS TOPIC [tuned] [batch]
 *
 * Plain, it runs with librdkafka's defaults (a raw loop); with "tuned" it
 * gets a deep prefetch (the processor's before --max-memory bounded it: 128 MB,
 * 500,000 records), which lets librdkafka fetch far ahead of a loop this
 * cheap, so the ceiling is not held down by the processor's memory budget.
 * It reads with rd_kafka_consumer_poll; "batch" uses
 * rd_kafka_consume_batch_queue instead, as the processor does since
 * librdkafka 2.12 (see consumers/kafka_source.h).
 */
#include "consumers/avro_codec.h"
#include "consumers/kafka_admin.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    bool tuned = false, batch = false, bad = argc < 3;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "tuned") == 0)
            tuned = true;
        else if (strcmp(argv[i], "batch") == 0)
            batch = true;
        else
            bad = true;
    }
    if (bad) {
        fprintf(stderr, "usage: consume_decode BROKERS TOPIC [tuned] [batch]\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", "bench-ceiling", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    if (tuned) {
        /* A deep prefetch, unbounded by any memory budget. */
        rd_kafka_conf_set(conf, "fetch.max.bytes", "104857600", errstr, sizeof errstr);
        rd_kafka_conf_set(conf, "max.partition.fetch.bytes", "10485760", errstr, sizeof errstr);
        rd_kafka_conf_set(conf, "queued.min.messages", "500000", errstr, sizeof errstr);
        rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "131072", errstr, sizeof errstr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "consumer: %s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    errbuf err = {{0}};
    int parts = kafka_partition_count(rk, argv[2], &err);
    if (parts <= 0) {
        fprintf(stderr, "topic %s: %s\n", argv[2], parts < 0 ? err.msg : "does not exist");
        return 1;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    long long total = 0;
    for (int p = 0; p < parts; p++) {
        int64_t low, high;
        rd_kafka_query_watermark_offsets(rk, argv[2], p, &low, &high, 10000);
        total += high - low;
        rd_kafka_topic_partition_list_add(list, argv[2], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    avro_codec *codec = avro_codec_new(&err);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *msgs[10000];
    long long seen = 0, decoded = 0;
    double start = 0;
    while (seen < total) {
        ssize_t n;
        if (batch) {
            n = rd_kafka_consume_batch_queue(q, 1000, msgs, 10000);
        } else {
            for (n = 0; n < 10000; n++)
                if (!(msgs[n] = rd_kafka_consumer_poll(rk, n ? 0 : 1000)))
                    break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (!msgs[i]->err) {
                if (!start)
                    start = now();
                seen++;
                decoded_record rec;
                if (avro_codec_decode(codec, msgs[i]->payload, msgs[i]->len, RECORD_NONE, &rec,
                                      &err) == DECODE_OK)
                    decoded++;
            }
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    double secs = now() - start;
    printf("consume_decode records=%lld decoded=%lld seconds=%.3f rate=%.0f\n", seen, decoded, secs,
           seen / secs);
    rd_kafka_queue_destroy(q);
    avro_codec_free(codec);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
