/*
 * cmd_dlq.c — `activity dlq`: list the dead-letter topic, and re-drive dead
 * letters to their source topic after a fix.
 *
 * Both read the dead-letter topic from its low to its high watermark as of
 * the start (plain assign, no consumer group, nothing committed), so they
 * can be run any number of times. A dead letter is the original record
 * (value and key, byte for byte) plus headers written by the processor
 * (processors/dlq.c): activity.reason, activity.detail, activity.source.topic,
 * activity.source.partition, activity.source.offset.
 *
 * `redrive` produces the selected records again, unchanged, to their source
 * topic (or --to-topic) with an idempotent producer and the same key, so
 * they land in the same partition as before; each carries a header
 * activity.redriven.from = "<dlq topic>/<partition>/<offset>". Re-driving
 * does not delete anything from the dead-letter topic (Kafka cannot), so a
 * record re-driven twice is processed twice: use the filters (--reason,
 * --source-topic, --from/--to offsets) to pick what the fix covers. A
 * record that is still bad simply dead-letters again.
 */
#include "consumers/kafka_admin.h"
#include "cmd/commands.h"
#include "lib/config.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: activity dlq list    [filters] [--json]\n"
    "       activity dlq redrive [filters] [--to-topic T] [--dry-run]\n"
    "\n"
    "Lists the dead-letter topic (--dlq-topic), or produces its records again,\n"
    "unchanged and with their key, to the topic they came from.\n"
    "\n"
    "Filters:\n"
    "  --reason R          only dead letters with this reason (e.g. unknown-schema-id)\n"
    "  --source-topic T    only those that came from topic T\n"
    "  --from-offset N     only dead-letter offsets >= N (in every DLQ partition)\n"
    "  --to-offset N       only dead-letter offsets < N\n"
    "  --limit N           at most N records\n"
    "list:\n"
    "  --json              one JSON object per line\n"
    "redrive:\n"
    "  --to-topic T        produce to T instead of each record's source topic\n"
    "  --dry-run           say what would be re-driven, produce nothing\n"
    "\n" COMMON_OPTIONS_HELP;

enum {
    OPT_REASON = OPT_COMMON_LAST + 1,
    OPT_SOURCE,
    OPT_FROM,
    OPT_TO,
    OPT_LIMIT,
    OPT_JSON,
    OPT_TO_TOPIC,
    OPT_DRY,
};

typedef struct {
    common_config cfg;
    bool redrive;
    const char *reason;
    const char *source;
    long long from, to, limit;
    bool json;
    const char *to_topic;
    bool dry;
} dlq_args;

typedef struct {
    const char *reason, *detail, *topic, *partition, *offset;
    /* Set when the processor cut the record to fit the topic (processors/dlq.c). */
    const char *truncated, *original_size, *original_sha256;
    size_t detail_len;
} dlq_headers;

#define DLQ_HEADERS 8

static const char *header(rd_kafka_headers_t *h, const char *name, size_t *len)
{
    const void *v;
    size_t l;
    if (!h || rd_kafka_header_get_last(h, name, &v, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
        return NULL;
    if (len)
        *len = l;
    return v;
}

/* Header values are not NUL-terminated: copy each into its own buffer. */
static void read_headers(rd_kafka_message_t *m, char buf[DLQ_HEADERS][512], dlq_headers *out)
{
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    static const char *const names[DLQ_HEADERS] = {
        "activity.reason",           "activity.detail",         "activity.source.topic",
        "activity.source.partition", "activity.source.offset",  "activity.truncated",
        "activity.original.size",    "activity.original.sha256"};
    const char **dst[DLQ_HEADERS] = {&out->reason,        &out->detail,         &out->topic,
                                     &out->partition,     &out->offset,         &out->truncated,
                                     &out->original_size, &out->original_sha256};
    for (int i = 0; i < DLQ_HEADERS; i++) {
        size_t l = 0;
        const char *v = header(h, names[i], &l);
        if (l > 511)
            l = 511;
        if (v)
            memcpy(buf[i], v, l);
        buf[i][v ? l : 0] = '\0';
        *dst[i] = v ? buf[i] : "";
    }
}

static int parse_args(int argc, char **argv, dlq_args *a)
{
    static const struct option opts[] = {COMMON_LONG_OPTIONS,
                                         {"reason", required_argument, 0, OPT_REASON},
                                         {"source-topic", required_argument, 0, OPT_SOURCE},
                                         {"from-offset", required_argument, 0, OPT_FROM},
                                         {"to-offset", required_argument, 0, OPT_TO},
                                         {"limit", required_argument, 0, OPT_LIMIT},
                                         {"json", no_argument, 0, OPT_JSON},
                                         {"to-topic", required_argument, 0, OPT_TO_TOPIC},
                                         {"dry-run", no_argument, 0, OPT_DRY},
                                         {0, 0, 0, 0}};
    config_defaults(&a->cfg);
    a->from = 0;
    a->to = -1;
    a->limit = -1;
    if (argc < 2 || argv[1][0] == '-') {
        bool h = argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
        fputs(help, h ? stdout : stderr);
        return h ? 1 : -1;
    }
    if (strcmp(argv[1], "list") == 0)
        a->redrive = false;
    else if (strcmp(argv[1], "redrive") == 0)
        a->redrive = true;
    else {
        log_error("unknown action '%s' (list or redrive)", argv[1]);
        return -1;
    }
    argc--;
    argv++;
    int opt;
    if (config_start(&a->cfg, "dlq", opts, &argc, &argv))
        return -1;
    while ((opt = config_next_option(argc, argv, opts, help)) != -1) {
        switch (opt) {
        case CONFIG_HELP:
            return 1;
        case OPT_REASON:
            a->reason = optarg;
            break;
        case OPT_SOURCE:
            a->source = optarg;
            break;
        case OPT_FROM:
        case OPT_TO:
        case OPT_LIMIT: {
            long long v;
            if (!option_long(optarg, 0, LLONG_MAX, &v)) {
                log_error("expected a count >= 0, got '%s'", optarg);
                return -1;
            }
            *(opt == OPT_FROM ? &a->from : opt == OPT_TO ? &a->to : &a->limit) = v;
            break;
        }
        case OPT_JSON:
            a->json = true;
            break;
        case OPT_TO_TOPIC:
            a->to_topic = optarg;
            break;
        case OPT_DRY:
            a->dry = true;
            break;
        default:
            if (config_common_option_or_complain(&a->cfg, "dlq", opt, optarg, NULL))
                return -1;
        }
    }
    if (config_no_more_args("dlq", argc, argv, optind))
        return -1;
    return 0;
}

static void print_record(const dlq_args *a, rd_kafka_message_t *m, const dlq_headers *h)
{
    if (!a->json) {
        printf("%d:%lld\t%s\t%s[%s]@%s\t%zu bytes%s%s%s\t%s\n", m->partition, (long long)m->offset,
               h->reason, h->topic, h->partition, h->offset, m->len,
               *h->truncated ? " (truncated from " : "", h->original_size, *h->truncated ? ")" : "",
               h->detail);
        return;
    }
    json_t *o =
        json_pack("{s:i,s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "dlq_partition", (int)m->partition,
                  "dlq_offset", (json_int_t)m->offset, "reason", h->reason, "detail", h->detail,
                  "source_topic", h->topic, "source_partition", h->partition, "source_offset",
                  h->offset, "bytes", (json_int_t)m->len, "truncated", *h->truncated != 0);
    if (o && *h->truncated) {
        json_object_set_new(o, "original_bytes", json_integer(strtoll(h->original_size, NULL, 10)));
        json_object_set_new(o, "original_sha256", json_string(h->original_sha256));
    }
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (line)
        puts(line);
    free(line);
    json_decref(o);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    long *failed = opaque;
    if (m->err) {
        (*failed)++;
        log_error("re-drive to %s failed: %s", rd_kafka_topic_name(m->rkt),
                  rd_kafka_err2str(m->err));
    }
}

static rd_kafka_t *make_client(const dlq_args *a, rd_kafka_type_t type, long *failed, errbuf *err)
{
    static const kafka_prop consumer[] = {
        {"group.id", "activity-dlq-tool"},
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "false"},
    };
    static const kafka_prop producer[] = {
        {"enable.idempotence", "true"},
        {"partitioner", "murmur2_random"},
    };
    rd_kafka_conf_t *conf =
        type == RD_KAFKA_CONSUMER
            ? kafka_client_conf(&a->cfg, consumer, sizeof consumer / sizeof consumer[0], err)
            : kafka_client_conf(&a->cfg, producer, sizeof producer / sizeof producer[0], err);
    if (!conf)
        return NULL;
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, failed);
    }
    return kafka_client_new(type, conf, "kafka", err);
}

static int redrive_one(rd_kafka_t *prod, const dlq_args *a, rd_kafka_message_t *m,
                       const dlq_headers *h, errbuf *err)
{
    const char *topic = a->to_topic ? a->to_topic : h->topic;
    if (!*topic) {
        log_warn("dlq %d:%lld has no source topic header; skipped (use --to-topic)", m->partition,
                 (long long)m->offset);
        return 1;
    }
    if (*h->truncated) {
        log_warn("dlq %d:%lld was truncated to fit the dead-letter topic (originally %s bytes, "
                 "sha256 %s): not re-driven; the original is %s [%s] @%s, if still retained",
                 m->partition, (long long)m->offset, h->original_size, h->original_sha256, h->topic,
                 h->partition, h->offset);
        return 1;
    }
    char from[600];
    snprintf(from, sizeof from, "%s/%d/%lld", a->cfg.dlq_topic, m->partition, (long long)m->offset);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_HEADER("activity.redriven.from", from, -1), RD_KAFKA_V_END);
        if (!e)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            err_set(err, "produce to %s: %s", topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(prod, 100);
    }
}

int cmd_dlq(int argc, char **argv)
{
    dlq_args a;
    memset(&a, 0, sizeof a);
    int pr = parse_args(argc, argv, &a);
    if (pr) {
        config_free(&a.cfg);
        return pr > 0 ? 0 : 2;
    }
    errbuf err = {{0}};
    long failed = 0;
    int status = 1;
    rd_kafka_t *cons = make_client(&a, RD_KAFKA_CONSUMER, &failed, &err);
    rd_kafka_t *prod = NULL;
    rd_kafka_queue_t *q = NULL;
    int64_t *high = NULL;
    long matched = 0, seen = 0, sent = 0;
    if (!cons)
        goto out;
    if (a.redrive && !a.dry && !(prod = make_client(&a, RD_KAFKA_PRODUCER, &failed, &err)))
        goto out;
    int parts = kafka_partition_count(cons, a.cfg.dlq_topic, &err);
    if (parts < 0)
        goto out;
    if (parts == 0) {
        log_info("dead-letter topic %s does not exist: nothing to do", a.cfg.dlq_topic);
        status = 0;
        goto out;
    }
    high = calloc((size_t)parts, sizeof *high);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    int remaining = 0;
    for (int p = 0; p < parts; p++) {
        int64_t low, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(cons, a.cfg.dlq_topic, p, &low,
                                                                 &hi, config_broker_timeout_ms());
        if (e) {
            char what[300];
            snprintf(what, sizeof what, "read the offsets of %s [%d]", a.cfg.dlq_topic, p);
            config_broker_error(cons, e, what, &err);
            rd_kafka_topic_partition_list_destroy(list);
            goto out;
        }
        int64_t start = low > a.from ? low : a.from;
        high[p] = a.to >= 0 && a.to < hi ? a.to : hi;
        if (start < high[p]) {
            rd_kafka_topic_partition_list_add(list, a.cfg.dlq_topic, p)->offset = start;
            remaining++;
        }
    }
    rd_kafka_assign(cons, list);
    rd_kafka_topic_partition_list_destroy(list);
    q = rd_kafka_queue_get_consumer(cons);
    while (remaining > 0 && (a.limit < 0 || matched < a.limit)) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, config_broker_timeout_ms());
        if (!m) {
            char what[300];
            snprintf(what, sizeof what, "read %s (no progress)", a.cfg.dlq_topic);
            config_broker_error(cons, RD_KAFKA_RESP_ERR__TIMED_OUT, what, &err);
            goto out;
        }
        if (m->err) {
            log_warn("kafka: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        seen++;
        if (m->offset + 1 >= high[m->partition])
            remaining--;
        if (m->offset >= high[m->partition]) {
            rd_kafka_message_destroy(m);
            continue;
        }
        char buf[DLQ_HEADERS][512];
        dlq_headers h;
        read_headers(m, buf, &h);
        if ((a.reason && strcmp(a.reason, h.reason) != 0) ||
            (a.source && strcmp(a.source, h.topic) != 0)) {
            rd_kafka_message_destroy(m);
            continue;
        }
        matched++;
        int r = 0;
        if (!a.redrive || a.dry)
            print_record(&a, m, &h);
        else if ((r = redrive_one(prod, &a, m, &h, &err)) == 0)
            sent++;
        rd_kafka_message_destroy(m);
        if (r < 0)
            goto out;
        if (prod)
            rd_kafka_poll(prod, 0);
    }
    if (prod) {
        while (rd_kafka_outq_len(prod) > 0)
            rd_kafka_flush(prod, 1000);
        if (failed) {
            err_set(&err, "%ld re-driven records were not delivered", failed);
            goto out;
        }
        log_info("re-drove %ld of %ld dead letters", sent, seen);
    } else if (a.redrive)
        log_info("dry run: %ld of %ld dead letters would be re-driven", matched, seen);
    status = 0;
out:
    if (status && err.msg[0])
        log_error("%s", err.msg);
    if (q)
        rd_kafka_queue_destroy(q);
    free(high);
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    if (prod)
        rd_kafka_destroy(prod);
    config_free(&a.cfg);
    return status;
}
