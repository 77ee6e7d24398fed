/*
 * kafka_times.c — offsets for a time, with the watermarks around them (see
 * kafka_times.h).
 */
#include "consumers/kafka_times.h"

#include "consumers/kafka_admin.h"
#include "lib/config.h"

#include <stdio.h>
#include <stdlib.h>

int kafka_offsets_for_time(rd_kafka_t *rk, const char *topic, int64_t ts_ms, kafka_time_start **out,
                           int *n, errbuf *err)
{
    *out = NULL;
    *n = 0;
    int parts = kafka_partition_count(rk, topic, err);
    if (parts < 0)
        return -1;
    if (parts == 0) {
        err_set(err, "topic %s does not exist", topic);
        return -1;
    }
    kafka_time_start *s = calloc((size_t)parts, sizeof *s);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    if (!s || !l) {
        free(s);
        if (l)
            rd_kafka_topic_partition_list_destroy(l);
        err_set(err, "out of memory");
        return -1;
    }
    char what[300];
    for (int p = 0; p < parts; p++) {
        s[p].partition = p;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            rk, topic, p, &s[p].low, &s[p].high, config_broker_timeout_ms());
        if (e) {
            snprintf(what, sizeof what, "read the offsets of %s [%d]", topic, p);
            config_broker_error(rk, e, what, err);
            goto fail;
        }
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = ts_ms;
    }
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, config_broker_timeout_ms());
    if (e) {
        snprintf(what, sizeof what, "look up the offsets of time %lld ms in %s", (long long)ts_ms,
                 topic);
        config_broker_error(rk, e, what, err);
        goto fail;
    }
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err) {
            snprintf(what, sizeof what, "look up the offset of time %lld ms in %s [%d]",
                     (long long)ts_ms, topic, tp->partition);
            config_broker_error(rk, tp->err, what, err);
            goto fail;
        }
        kafka_time_start *ps = &s[tp->partition];
        /* -1 (RD_KAFKA_OFFSET_END): no record at or after the time. */
        ps->start = tp->offset < 0 ? ps->high : tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    *out = s;
    *n = parts;
    return 0;
fail:
    rd_kafka_topic_partition_list_destroy(l);
    free(s);
    return -1;
}
