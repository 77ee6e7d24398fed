/*
 * kafka_admin.c — topic creation and metadata look-ups (see kafka_admin.h).
 */
#include "consumers/kafka_admin.h"

#include "src/config.h"

#include <stdio.h>
#include <string.h>

int kafka_partition_count(rd_kafka_t *rk, const char *topic, errbuf *err)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, config_broker_timeout_ms());
    rd_kafka_topic_destroy(t);
    if (e) {
        char what[300];
        snprintf(what, sizeof what, "look up topic %s", topic);
        config_broker_error(rk, e, what, err);
        return -1;
    }
    int n = 0;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
    else if (md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        err_set(err, "metadata for topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        n = -1;
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

int kafka_ensure_topic(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                       errbuf *err)
{
    int have = kafka_partition_count(rk, topic, err);
    if (have != 0)
        return have > 0 ? 0 : -1;
    char errstr[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(topic, partitions, replication, errstr, sizeof errstr);
    if (!nt) {
        err_set(err, "topic %s: %s", topic, errstr);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = 0;
    if (!ev) {
        err_set(err, "creating topic %s timed out", topic);
        rc = -1;
    } else if (rd_kafka_event_error(ev)) {
        err_set(err, "creating topic %s: %s", topic, rd_kafka_event_error_string(ev));
        rc = -1;
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                err_set(err, "creating topic %s: %s", topic,
                        rd_kafka_topic_result_error_string(res[i]));
                rc = -1;
            }
        }
        if (rc == 0)
            log_info("created topic %s with %d partitions", topic, partitions);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}
