/*
 * cmd_load.c — `activity load`: CSV / JSON-lines files → framed Avro records
 * on a Kafka topic.
 *
 * Owns the loader's loop: read a record, validate and convert it
 * (text_records), encode it (avro_codec), hand it to an idempotent
 * librdkafka producer, and account for every input line. The accounting is
 * the point of the tool: a malformed line is reported as FILE:LINE and
 * skipped, while a record that was accepted but not acknowledged by the
 * broker makes the run fail, so exit status 0 means "every good line is in
 * the topic". The idempotent producer keeps broker retries from writing a
 * record twice or out of order within a run; loading a file twice does
 * write it twice (the processor's offset fences do not deduplicate input).
 *
 * Records are keyed by user_id (events) or device_id (devices) with the
 * Java-compatible murmur2 partitioner, so one user's events stay ordered in
 * one partition whichever client produced them. When the producer queue is
 * full the loop serves delivery reports and retries; nothing is dropped.
 */
#include "consumers/avro_codec.h"
#include "consumers/csv_reader.h"
#include "consumers/kafka_admin.h"
#include "consumers/text_records.h"
#include "processors/dims.h"
#include "cmd/commands.h"
#include "lib/config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char help[] =
    "usage: activity load [--topic T] [--schema web_event|device|user_profile]\n"
    "                     [--format csv|jsonl]\n"
    "                     [--partitions N] [--replication-factor N] FILE...\n"
    "\n"
    "Produces the records of CSV or JSON-lines files (FILE '-' is stdin) to a Kafka\n"
    "topic as framed Avro values, keyed by user_id (events, user profiles) or\n"
    "device_id (devices).\n"
    "Malformed lines are reported as FILE:LINE: reason and skipped.\n"
    "\n"
    "  --topic T                topic to produce to (default: --events-topic for events,\n"
    "                           --devices-topic for devices, --profiles-topic for user\n"
    "                           profiles); created if missing\n"
    "  --schema S               web_event, device or user_profile (default: recognised\n"
    "                           from the CSV\n"
    "                           header or the first JSON object's keys)\n"
    "  --format F               csv or jsonl (default: jsonl for .jsonl/.json/.ndjson\n"
    "                           files, csv otherwise)\n"
    "  --partitions N           partitions of a created topic (default: 6)\n"
    "  --replication-factor N   replication factor of a created topic (default: 1)\n"
    "  --schema-registry URL    register the schema under <topic>-value in this registry\n"
    "                           and frame records with the id it gives\n"
    "                           [$ACTIVITY_SCHEMA_REGISTRY_URL]\n"
    "  --schema-registry-user-info USER:PASS  [$ACTIVITY_SCHEMA_REGISTRY_USER_INFO]\n"
    "  --max-rejects N          exit 3 when more than N lines were rejected (default: 0,\n"
    "                           so any rejected line does; the valid lines are loaded\n"
    "                           either way)\n"
    "  --dry-run                read, validate and encode everything, produce nothing (no\n"
    "                           Kafka, no registry); the summary and exit status say what\n"
    "                           a real load would have rejected\n"
    "  --progress SEC           report progress on stderr every SEC seconds (default: 5;\n"
    "                           0: never), so only inputs that take longer show it\n"
    "\n"
    "Event CSV header: url,referrer,user_id,device_id,host,event_time (any order, extra\n"
    "columns ignored); device CSV header: device_id,browser_type,os_type,device_type\n"
    "[,updated_at][,deleted]; user profile CSV header: user_id,first_name,last_name,title,\n"
    "street,city,state,country,zip,contact_type,contact_value[,updated_at][,deleted]\n"
    "(JSON: user_id, name {first,last,title}, address {street,city,state,country,zip},\n"
    "contact {type,value}, updated_at, deleted). A record with deleted=true is produced\n"
    "as a tombstone: a null value for its key, its updated_at in the header\n"
    "activity.updated_at. Exit status: 0 when every accepted record was delivered and\n"
    "at most --max-rejects lines were rejected, 1 on delivery, connection or file\n"
    "errors, 2 on usage errors, 3 when more lines were rejected than --max-rejects.\n"
    "\n" COMMON_OPTIONS_HELP;

enum {
    OPT_TOPIC = OPT_COMMON_LAST + 1,
    OPT_SCHEMA,
    OPT_FORMAT,
    OPT_PARTITIONS,
    OPT_REPLICATION,
    OPT_REGISTRY,
    OPT_REGISTRY_AUTH,
    OPT_MAX_REJECTS,
    OPT_DRY_RUN,
    OPT_PROGRESS,
};

enum input_format { FORMAT_AUTO, FORMAT_CSV, FORMAT_JSONL };

/* Rejected lines printed per file; the rest are only counted. */
#define MAX_SHOWN_REJECTS 20
/* Delivery errors logged one by one before they are only counted. */
#define MAX_SHOWN_DELIVERY_ERRORS 10

typedef struct {
    common_config cfg;
    const char *topic_flag;
    enum record_kind kind; /* RECORD_NONE until --schema or the first input says */
    bool kind_fixed;       /* from --schema */
    enum input_format format;
    int partitions;
    int replication;
    registry_options registry;
    long max_rejects;
    bool dry_run;
    double progress_every; /* seconds; 0: no progress lines */
    double next_progress;
    long validated; /* --dry-run: records that would have been produced */

    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt; /* set once the topic exists */
    const char *topic;
    avro_codec *codec;
    int flush_timeout_ms;

    long produced;  /* accepted by rd_kafka_produce */
    long delivered; /* acknowledged by the broker */
    long failed;    /* delivery reports with an error */
    long refused;   /* records rd_kafka_produce refused on their own (too large) */
    long rejected;  /* malformed input lines */
    int shown_delivery_errors;
    bool fatal; /* the producer hit a fatal (idempotence) error */

    /* Per file */
    char **paths; /* argv: delivery reports name the file by its index */
    int file_index;
    const char *name;
    long file_rejected;
} loader;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Kafka callbacks (served by rd_kafka_poll/flush on this thread) ------ */

/* Each message carries where it came from, (file index << 40) | line, so
 * a failed delivery can be traced to its input line. */
static void *origin(const loader *L, long line)
{
    return (void *)(uintptr_t)(((uint64_t)L->file_index << 40) | (uint64_t)line);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    loader *L = opaque;
    if (!m->err) {
        L->delivered++;
        return;
    }
    L->failed++;
    uint64_t from = (uint64_t)(uintptr_t)m->_private;
    const char *path = L->paths[from >> 40];
    if (L->shown_delivery_errors < MAX_SHOWN_DELIVERY_ERRORS)
        log_error("%s:%llu: delivery to %s failed: %s", strcmp(path, "-") == 0 ? "<stdin>" : path,
                  (unsigned long long)(from & ((1ull << 40) - 1)), rd_kafka_topic_name(m->rkt),
                  rd_kafka_err2str(m->err));
    else if (L->shown_delivery_errors == MAX_SHOWN_DELIVERY_ERRORS)
        log_error("further delivery errors are counted, not shown");
    L->shown_delivery_errors++;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    loader *L = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        log_error("kafka producer failed: %s", why);
        L->fatal = true;
        return;
    }
    log_warn("kafka: %s", reason);
}

/* librdkafka's own log lines are mostly transient, retried conditions
 * ("coordinator load in progress"); what matters reaches error_cb or a
 * delivery report, so its log is only shown with --verbose. */
static rd_kafka_t *producer_new(loader *L, errbuf *err)
{
    /* Ours first, then bootstrap.servers and -X, so users can override any
     * of these. */
    static const kafka_prop props[] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "20"},
        {"batch.num.messages", "10000"},
        {"compression.type", "lz4"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
        {"partitioner", "murmur2_random"},
    };
    rd_kafka_conf_t *conf = kafka_client_conf(&L->cfg, props, sizeof props / sizeof props[0], err);
    if (!conf)
        return NULL;
    /* Wait for as long as librdkafka may keep retrying a message, plus a
     * margin, so "undelivered" at the end really means failed. */
    char value[64];
    size_t size = sizeof value;
    long timeout_ms = 300000;
    if (rd_kafka_conf_get(conf, "message.timeout.ms", value, &size) == RD_KAFKA_CONF_OK)
        timeout_ms = strtol(value, NULL, 10);
    L->flush_timeout_ms =
        timeout_ms > 0 && timeout_ms < 3600000 ? (int)timeout_ms + 30000 : 3630000;
    rd_kafka_conf_set_opaque(conf, L);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    return kafka_client_new(RD_KAFKA_PRODUCER, conf, "cannot create the Kafka producer", err);
}

/* Registers the record type's schema under "<topic>-value" (the Confluent
 * TopicNameStrategy) and frames records with the id the registry gives. */
static int register_schema(loader *L, errbuf *err)
{
    schema_registry *reg = schema_registry_new(&L->registry, err);
    if (!reg)
        return -1;
    size_t len;
    const char *text = avro_codec_schema_text(L->kind, &len);
    char *schema = strndup(text, len);
    char subject[512];
    snprintf(subject, sizeof subject, "%s-value", L->topic);
    uint32_t id = 0;
    int rc = 0;
    if (!schema) {
        err_set(err, "out of memory");
        rc = -1;
    } else if (schema_registry_register(reg, subject, schema, &id, err) != REGISTRY_OK) {
        rc = -1;
    } else {
        avro_codec_set_write_id(L->codec, L->kind, id);
        log_info("schema registered under %s with id %u", subject, id);
    }
    free(schema);
    schema_registry_free(reg);
    return rc;
}

/* Settles the record type and creates the topic the first time a file
 * tells what it holds. */
static int set_kind(loader *L, enum record_kind kind, errbuf *err)
{
    if (L->rkt || (L->dry_run && L->topic)) {
        if (kind != L->kind) {
            err_set(err,
                    "holds %s records, but earlier input held %s records (load them "
                    "separately)",
                    text_kind_name(kind), text_kind_name(L->kind));
            return -1;
        }
        return 0;
    }
    L->kind = kind;
    L->topic = L->topic_flag                 ? L->topic_flag
               : kind == RECORD_WEB_EVENT    ? L->cfg.events_topic
               : kind == RECORD_USER_PROFILE ? L->cfg.profiles_topic
                                             : L->cfg.devices_topic;
    if (L->dry_run)
        return 0;
    if (kafka_ensure_topic(L->rk, L->topic, L->partitions, L->replication, err))
        return -1;
    if (L->registry.url && register_schema(L, err))
        return -1;
    L->rkt = rd_kafka_topic_new(L->rk, L->topic, NULL);
    if (!L->rkt) {
        err_set(err, "topic %s: %s", L->topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    return 0;
}

static void reject(loader *L, long line, const char *reason)
{
    L->rejected++;
    L->file_rejected++;
    if (L->file_rejected <= MAX_SHOWN_REJECTS)
        log_warn("%s:%ld: %s", L->name, line, reason);
    else if (L->file_rejected == MAX_SHOWN_REJECTS + 1)
        log_warn("%s: more rejected lines are counted, not shown", L->name);
}

/* Every --progress seconds, where loading stands (checked every 4096
 * records: a clock read per record would cost more than the rest). */
static void report_progress(loader *L, long line)
{
    if (!L->progress_every || ((L->produced + L->validated) & 4095) != 4095)
        return;
    double now = now_s();
    if (now < L->next_progress)
        return;
    L->next_progress = now + L->progress_every;
    if (L->dry_run)
        log_info("%s: at line %ld, %ld records valid, %ld lines rejected", L->name, line,
                 L->validated, L->rejected);
    else
        log_info("%s: at line %ld, %ld records produced, %ld delivered, %ld lines rejected",
                 L->name, line, L->produced, L->delivered, L->rejected);
}

/* Hands one encoded record to librdkafka, waiting while its queue is full.
 * Returns 0; 1 if this record alone cannot be produced (reported, counted
 * as failed); -1 when producing must stop (err set). */
static int produce(loader *L, long line, const void *val, size_t len, const char *key,
                   size_t keylen, rd_kafka_headers_t *headers, errbuf *err)
{
    report_progress(L, line);
    if (L->dry_run) {
        if (headers)
            rd_kafka_headers_destroy(headers);
        L->validated++;
        return 0;
    }
    for (;;) {
        /* On success librdkafka owns the headers; on failure we still do. */
        rd_kafka_resp_err_t e = rd_kafka_producev(
            L->rk, RD_KAFKA_V_RKT(L->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)val, len),
            RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_OPAQUE(origin(L, line)),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            L->produced++;
            if ((L->produced & 1023) == 0)
                rd_kafka_poll(L->rk, 0);
            return 0;
        }
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !L->fatal && !interrupted) {
            rd_kafka_poll(L->rk, 100);
            continue;
        }
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            /* Counted as undelivered, not rejected: the line is valid, the
             * topic cannot take it, and the run must say so by failing. */
            log_warn("%s:%ld: cannot produce the record: %s", L->name, line, rd_kafka_err2str(e));
            L->refused++;
            return 1;
        }
        if (interrupted)
            err_set(err, "interrupted");
        else
            err_set(err, "cannot produce to %s: %s", L->topic, rd_kafka_err2str(e));
        return -1;
    }
}

static size_t format_key(char *buf, size_t size, int64_t v)
{
    return (size_t)snprintf(buf, size, "%" PRId64, v);
}

/* A deleted device or profile: a null value for its key, with its
 * updated_at (when given) in a header, since a tombstone has no body. */
static int emit_tombstone(loader *L, long line, int64_t id, opt_long updated_at, errbuf *err)
{
    char key[24], when[24];
    size_t keylen = format_key(key, sizeof key, id);
    rd_kafka_headers_t *h = NULL;
    if (updated_at.present) {
        h = rd_kafka_headers_new(1);
        size_t n = format_key(when, sizeof when, updated_at.value);
        rd_kafka_header_add(h, DIM_TOMBSTONE_TIME_HEADER, -1, when, (ssize_t)n);
    }
    int rc = produce(L, line, NULL, 0, key, keylen, h, err);
    if (rc && h)
        rd_kafka_headers_destroy(h);
    return rc;
}

/* Encodes and produces an event, a device or a user profile. Same returns
 * as produce(). */
static int emit(loader *L, long line, const decoded_record *rec, errbuf *err)
{
    const void *val;
    size_t len;
    char key[24];
    size_t keylen = 0;
    errbuf why;
    int rc;
    if (rec->kind == RECORD_WEB_EVENT) {
        rc = avro_codec_encode_event(L->codec, &rec->u.event, &val, &len, &why);
        if (rec->u.event.user_id.present)
            keylen = format_key(key, sizeof key, rec->u.event.user_id.value);
    } else if (rec->kind == RECORD_USER_PROFILE) {
        const profile_record *p = &rec->u.profile;
        if (p->deleted)
            return emit_tombstone(L, line, p->user_id, p->updated_at_ms, err);
        rc = avro_codec_encode_profile(L->codec, p, &val, &len, &why);
        keylen = format_key(key, sizeof key, p->user_id);
    } else {
        const device_record *d = &rec->u.device;
        if (d->deleted)
            return emit_tombstone(L, line, d->device_id, d->updated_at_ms, err);
        rc = avro_codec_encode_device(L->codec, d, &val, &len, &why);
        keylen = format_key(key, sizeof key, d->device_id);
    }
    if (rc) {
        reject(L, line, why.msg);
        return 1;
    }
    return produce(L, line, val, len, keylen ? key : NULL, keylen, NULL, err);
}

static bool stop_reading(const loader *L)
{
    return interrupted || L->fatal;
}

/* ---- CSV --------------------------------------------------------------- */

static int load_csv(loader *L, FILE *f, errbuf *err)
{
    csv_reader *r = csv_reader_from_file(f);
    if (!r) {
        err_set(err, "out of memory");
        return -1;
    }
    csv_record rec;
    errbuf why;
    int rc = 0;
    enum csv_status st = csv_reader_next(r, &rec, &why);
    if (st == CSV_EOF) {
        log_warn("%s: empty file, nothing to load", L->name);
        goto out;
    }
    if (st != CSV_OK) {
        err_set(err, "line %ld: cannot read the header: %s", rec.line, why.msg);
        rc = -1;
        goto out;
    }
    enum record_kind kind = L->kind_fixed ? L->kind : text_kind_from_csv_header(&rec);
    if (kind == RECORD_NONE) {
        err_set(err, "cannot tell the record type from the header (events have host and "
                     "event_time columns, devices device_id and browser_type, user profiles "
                     "user_id and first_name); use --schema");
        rc = -1;
        goto out;
    }
    text_csv_header header;
    if (text_csv_header_init(&header, kind, &rec, &why)) {
        err_set(err, "line %ld: %s", rec.line, why.msg);
        rc = -1;
        goto out;
    }
    if (set_kind(L, kind, err)) {
        rc = -1;
        goto out;
    }
    decoded_record out = {.kind = kind};
    while (!stop_reading(L)) {
        st = csv_reader_next(r, &rec, &why);
        if (st == CSV_EOF)
            break;
        if (st == CSV_IO_ERROR) {
            err_set(err, "%s", why.msg);
            rc = -1;
            break;
        }
        if (st == CSV_BAD_RECORD) {
            reject(L, rec.line, why.msg);
            continue;
        }
        int bad = kind == RECORD_WEB_EVENT ? text_event_from_csv(&header, &rec, &out.u.event, &why)
                  : kind == RECORD_USER_PROFILE
                      ? text_profile_from_csv(&header, &rec, &out.u.profile, &why)
                      : text_device_from_csv(&header, &rec, &out.u.device, &why);
        if (bad) {
            reject(L, rec.line, why.msg);
            continue;
        }
        if (emit(L, rec.line, &out, err) < 0) {
            rc = -1;
            break;
        }
    }
out:
    csv_reader_free(r);
    return rc;
}

/* ---- JSON lines -------------------------------------------------------- */

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static int load_jsonl(loader *L, FILE *f, errbuf *err)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long line = 0;
    int rc = 0;
    errbuf why;
    while (!stop_reading(L) && (n = getline(&buf, &cap, f)) >= 0) {
        line++;
        if (blank(buf, (size_t)n))
            continue;
        json_error_t jerr;
        json_t *obj = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj) {
            snprintf(why.msg, sizeof why.msg, "not valid JSON: %s (column %d)", jerr.text,
                     jerr.column);
            reject(L, line, why.msg);
            continue;
        }
        if (!json_is_object(obj)) {
            reject(L, line, "not a JSON object");
            json_decref(obj);
            continue;
        }
        if (!L->rkt) {
            enum record_kind kind = L->kind_fixed ? L->kind : text_kind_from_json(obj);
            if (kind == RECORD_NONE) {
                reject(L, line,
                       "cannot tell the record type from the keys (events have host and "
                       "event_time, devices device_id and browser_type, user profiles user_id "
                       "and name); use --schema");
                json_decref(obj);
                continue;
            }
            if (set_kind(L, kind, err)) {
                json_decref(obj);
                rc = -1;
                break;
            }
        }
        decoded_record out = {.kind = L->kind};
        int bad = L->kind == RECORD_WEB_EVENT ? text_event_from_json(obj, &out.u.event, &why)
                  : L->kind == RECORD_USER_PROFILE
                      ? text_profile_from_json(obj, &out.u.profile, &why)
                      : text_device_from_json(obj, &out.u.device, &why);
        if (bad)
            reject(L, line, why.msg);
        else if (emit(L, line, &out, err) < 0)
            rc = -1;
        json_decref(obj);
        if (rc)
            break;
    }
    if (rc == 0 && ferror(f)) {
        err_set(err, "read error after line %ld: %s", line, strerror(errno));
        rc = -1;
    }
    free(buf);
    return rc;
}

/* ---- files ------------------------------------------------------------- */

static enum input_format guess_format(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".json") == 0 ||
                strcasecmp(dot, ".ndjson") == 0))
        return FORMAT_JSONL;
    return FORMAT_CSV;
}

static int load_file(loader *L, int index, errbuf *err)
{
    const char *path = L->paths[index];
    L->file_index = index;
    bool is_stdin = strcmp(path, "-") == 0;
    L->name = is_stdin ? "<stdin>" : path;
    L->file_rejected = 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (!f) {
        err_set(err, "cannot open: %s", strerror(errno));
        return -1;
    }
    enum input_format fmt = L->format != FORMAT_AUTO ? L->format : guess_format(path);
    long before = L->produced;
    int rc = fmt == FORMAT_JSONL ? load_jsonl(L, f, err) : load_csv(L, f, err);
    if (!is_stdin)
        fclose(f);
    log_debug("%s: %ld records produced, %ld lines rejected", L->name, L->produced - before,
              L->file_rejected);
    return rc;
}

/* Waits for outstanding deliveries; a second interrupt gives up. Whatever
 * is still queued afterwards is purged, which reports it as failed. */
static void finish_deliveries(loader *L)
{
    int sigs = interrupted;
    double deadline = now_s() + L->flush_timeout_ms / 1000.0;
    while (rd_kafka_outq_len(L->rk) > 0 && now_s() < deadline && interrupted <= sigs)
        rd_kafka_flush(L->rk, 500);
    long pending = L->produced - L->delivered - L->failed;
    if (pending > 0) {
        log_error("%ld records were still undelivered when loading stopped", pending);
        rd_kafka_purge(L->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(L->rk, 1000);
    }
}

/* ---- options ----------------------------------------------------------- */

static int parse_count(const char *flag, const char *arg, int *out, errbuf *err)
{
    int64_t v;
    if (!text_parse_int64(arg, strlen(arg), &v) || v < 1 || v > 1000000) {
        err_set(err, "%s takes a positive integer, got '%s'", flag, arg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Returns 0 to go on, or the exit status (0 for --help, 2 for bad usage). */
/* *argc, *argv become the vector with the configuration's options (see
 * config_sources); the input files are at optind of it. */
static int parse_args(loader *L, int *pargc, char ***pargv, int *status)
{
    static const struct option opts[] = {
        {"topic", required_argument, 0, OPT_TOPIC},
        {"schema", required_argument, 0, OPT_SCHEMA},
        {"format", required_argument, 0, OPT_FORMAT},
        {"partitions", required_argument, 0, OPT_PARTITIONS},
        {"replication-factor", required_argument, 0, OPT_REPLICATION},
        {"schema-registry", required_argument, 0, OPT_REGISTRY},
        {"schema-registry-user-info", required_argument, 0, OPT_REGISTRY_AUTH},
        {"max-rejects", required_argument, 0, OPT_MAX_REJECTS},
        {"dry-run", no_argument, 0, OPT_DRY_RUN},
        {"progress", required_argument, 0, OPT_PROGRESS},
        COMMON_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    errbuf err = {{0}};
    int opt;
    *status = 0;
    if (config_start(&L->cfg, "load", opts, pargc, pargv)) {
        *status = 2;
        return 1;
    }
    int argc = *pargc;
    char **argv = *pargv;
    while ((opt = config_next_option(argc, argv, opts, help)) != -1) {
        int bad = 0;
        switch (opt) {
        case CONFIG_HELP:
            return 1;
        case OPT_TOPIC:
            if (!*optarg) {
                err_set(&err, "--topic must not be empty");
                bad = 1;
            }
            L->topic_flag = optarg;
            break;
        case OPT_SCHEMA:
            bad = text_kind_from_name(optarg, &L->kind, &err);
            L->kind_fixed = true;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "csv") == 0)
                L->format = FORMAT_CSV;
            else if (strcmp(optarg, "jsonl") == 0 || strcmp(optarg, "json") == 0 ||
                     strcmp(optarg, "ndjson") == 0)
                L->format = FORMAT_JSONL;
            else {
                err_set(&err, "--format takes csv or jsonl, got '%s'", optarg);
                bad = 1;
            }
            break;
        case OPT_PARTITIONS:
            bad = parse_count("--partitions", optarg, &L->partitions, &err);
            break;
        case OPT_REPLICATION:
            bad = parse_count("--replication-factor", optarg, &L->replication, &err);
            break;
        case OPT_REGISTRY:
            config_note_secret_in(optarg);
            L->registry.url = optarg;
            break;
        case OPT_REGISTRY_AUTH:
            if (strchr(optarg, ':'))
                log_add_secret(strchr(optarg, ':') + 1);
            L->registry.user_info = optarg;
            break;
        case OPT_MAX_REJECTS: {
            int64_t v;
            if (!text_parse_int64(optarg, strlen(optarg), &v) || v < 0) {
                err_set(&err, "--max-rejects takes a count >= 0, got '%s'", optarg);
                bad = 1;
            }
            L->max_rejects = (long)v;
            break;
        }
        case OPT_DRY_RUN:
            L->dry_run = true;
            break;
        case OPT_PROGRESS: {
            if (!option_double(optarg, 0, INFINITY, &L->progress_every)) {
                err_set(&err, "--progress takes seconds >= 0, got '%s'", optarg);
                bad = 1;
            }
            break;
        }
        default: {
            int r = config_common_option(&L->cfg, opt, optarg, &err);
            if (r == 0)
                err_set(&err, "unknown option (see activity load --help)");
            bad = r <= 0;
        }
        }
        if (bad) {
            log_error("%s", err.msg);
            *status = 2;
            return 1;
        }
    }
    if (optind >= argc) {
        log_error("no input files (use - for stdin); see activity load --help");
        *status = 2;
        return 1;
    }
    return 0;
}

int cmd_load(int argc, char **argv)
{
    loader L = {.partitions = KAFKA_DEFAULT_PARTITIONS, .replication = 1, .progress_every = 5};
    config_defaults(&L.cfg);
    registry_options_defaults(&L.registry);
    int status;
    if (parse_args(&L, &argc, &argv, &status)) {
        config_free(&L.cfg);
        return status;
    }

    errbuf err = {{0}};
    L.codec = avro_codec_new(&err);
    if (!L.codec) {
        log_error("%s", err.msg);
        config_free(&L.cfg);
        return 1;
    }
    L.rk = L.dry_run ? NULL : producer_new(&L, &err);
    if (!L.rk && !L.dry_run) {
        log_error("%s", err.msg);
        avro_codec_free(L.codec);
        config_free(&L.cfg);
        return 1;
    }

    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* Missing files are found before anything is produced, so a typo in
     * the last argument does not leave the earlier files half-loaded. */
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0)
            continue;
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            log_error("%s: cannot open: %s", argv[i], strerror(errno));
            if (L.rk)
                rd_kafka_destroy(L.rk);
            avro_codec_free(L.codec);
            config_free(&L.cfg);
            return 1;
        }
        fclose(f);
    }

    L.paths = argv;
    double t0 = now_s();
    L.next_progress = t0 + L.progress_every;
    int rc = 0;
    for (int i = optind; i < argc && !stop_reading(&L); i++) {
        if (load_file(&L, i, &err)) {
            log_error("%s: %s", L.name, err.msg);
            rc = 1;
            break;
        }
    }
    if (interrupted) {
        log_error("interrupted: stopped reading, delivering what was produced");
        rc = 1;
    }
    if (L.rk)
        finish_deliveries(&L);
    double secs = now_s() - t0;

    if (L.fatal)
        rc = 1;
    long undelivered = L.produced - L.delivered + L.refused;
    if (undelivered > 0) {
        log_error("%ld records were not delivered to %s", undelivered,
                  L.topic ? L.topic : "the topic");
        rc = 1;
    }
    if (L.dry_run)
        log_info("dry run: %ld records valid (rejected %ld) for %s in %.1f s; nothing produced",
                 L.validated, L.rejected, L.topic ? L.topic : "no topic", secs);
    else
        log_info("loaded %ld records (rejected %ld) to %s in %.1f s (%.0f records/s)", L.delivered,
                 L.rejected, L.topic ? L.topic : "no topic", secs,
                 secs > 0 ? (double)L.delivered / secs : 0.0);
    if (rc == 0 && L.rejected > L.max_rejects) {
        log_error("%ld lines were rejected, more than --max-rejects %ld (the valid ones %s)",
                  L.rejected, L.max_rejects, L.dry_run ? "would be loaded" : "are loaded");
        rc = 3;
    }

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (L.rkt)
        rd_kafka_topic_destroy(L.rkt);
    if (L.rk)
        rd_kafka_destroy(L.rk);
    avro_codec_free(L.codec);
    config_free(&L.cfg);
    return rc;
}
