/*
 * kafka_admin.c — topic creation and metadata look-ups (see kafka_admin.h).
 */
#include "consumers/kafka_admin.h"

#include "lib/config.h"
#include "lib/grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

long long kafka_topic_config_number(rd_kafka_t *rk, const char *topic, const char *name,
                                    errbuf *err)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    long long value = -1;
    const rd_kafka_DescribeConfigs_result_t *result =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    if (!ev) {
        err_set(err, "describing topic %s timed out", topic);
    } else if (rd_kafka_event_error(ev) || !result) {
        err_set(err, "describing topic %s: %s", topic,
                rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev) : "no result");
    } else {
        size_t n_res, n_cfg;
        const rd_kafka_ConfigResource_t **rs =
            rd_kafka_DescribeConfigs_result_resources(result, &n_res);
        if (n_res != 1 || rd_kafka_ConfigResource_error(rs[0])) {
            err_set(err, "describing topic %s: %s", topic,
                    n_res == 1 ? rd_kafka_ConfigResource_error_string(rs[0]) : "no resource");
        } else {
            const rd_kafka_ConfigEntry_t **cfg = rd_kafka_ConfigResource_configs(rs[0], &n_cfg);
            for (size_t i = 0; i < n_cfg; i++) {
                const char *v = rd_kafka_ConfigEntry_value(cfg[i]);
                if (strcmp(rd_kafka_ConfigEntry_name(cfg[i]), name) == 0 && v)
                    value = strtoll(v, NULL, 10);
            }
            if (value < 0)
                err_set(err, "topic %s has no numeric setting %s", topic, name);
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return value;
}

int kafka_group_members(rd_kafka_t *rk, const char *group, char ***client_ids, char ***member_ids,
                        errbuf *err)
{
    const struct rd_kafka_group_list *list = NULL;
    *client_ids = NULL;
    if (member_ids)
        *member_ids = NULL;
    /* A group-level error (the coordinator loading after a broker
     * restart, or no permission) is retried for a few seconds, then
     * reported: an error is never read as "no members". */
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 5; attempt++) {
        if (list)
            rd_kafka_group_list_destroy(list);
        list = NULL;
        e = rd_kafka_list_groups(rk, group, &list, 10000);
        for (int i = 0; !e && i < list->group_cnt; i++)
            if (strcmp(list->groups[i].group, group) == 0 && list->groups[i].err)
                e = list->groups[i].err;
        if (!e)
            break;
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    if (e) {
        if (list)
            rd_kafka_group_list_destroy(list);
        err_set(err, "describing consumer group %s: %s", group, rd_kafka_err2str(e));
        return -1;
    }
    int n = 0;
    for (int i = 0; i < list->group_cnt; i++)
        if (strcmp(list->groups[i].group, group) == 0)
            n += list->groups[i].member_cnt;
    char **ids = calloc((size_t)n + 1, sizeof *ids);
    char **mids = calloc((size_t)n + 1, sizeof *mids);
    int k = 0;
    for (int i = 0; ids && mids && i < list->group_cnt; i++) {
        const struct rd_kafka_group_info *g = &list->groups[i];
        if (strcmp(g->group, group) != 0)
            continue;
        for (int m = 0; m < g->member_cnt; m++, k++) {
            const struct rd_kafka_group_member_info *mi = &g->members[m];
            ids[k] = strdup(mi->client_id ? mi->client_id : "");
            mids[k] = strdup(mi->member_id ? mi->member_id : "");
            if (!ids[k] || !mids[k]) {
                free(ids[k]);
                free(mids[k]);
                ids[k] = mids[k] = NULL;
                n = -1;
                break;
            }
        }
    }
    rd_kafka_group_list_destroy(list);
    if (!ids || !mids || n < 0) {
        strings_free(ids);
        strings_free(mids);
        err_set(err, "out of memory");
        return -1;
    }
    *client_ids = ids;
    if (member_ids)
        *member_ids = mids;
    else
        strings_free(mids);
    return n;
}
