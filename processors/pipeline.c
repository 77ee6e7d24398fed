/*
 * pipeline.c — per-partition processing (see pipeline.h).
 */
#include "processors/pipeline.h"

#include "lib/grow.h"
#include "lib/run_metrics.h"
#include "processors/state_rehydrate.h"

#include <stdlib.h>
#include <string.h>

void pipeline_init(pipeline *p, avro_codec *codec, redis_state *redis, redis_state *apply_redis,
                   dlq *dead_letters, const char *events_topic, const char *devices_topic)
{
    memset(p, 0, sizeof *p);
    p->codec = codec;
    p->redis = redis;
    p->apply_redis = apply_redis;
    p->dead_letters = dead_letters;
    p->events_topic = events_topic;
    p->devices_topic = devices_topic;
    validation_defaults(&p->rules);
    p->lateness_ms = REDIS_DEFAULT_LATENESS_MS;
}

void pipeline_set_profiles_topic(pipeline *p, const char *topic)
{
    p->profiles_topic = topic;
}

void pipeline_set_event_range(pipeline *p, int64_t from_ms, int64_t to_ms)
{
    p->range = true;
    p->range_from_ms = from_ms;
    p->range_to_ms = to_ms;
}

void pipeline_free(pipeline *p)
{
    for (size_t i = 0; i < p->n_parts; i++) {
        batch_free(&p->parts[i]->b);
        batch_free(&p->parts[i]->inflight_b);
        free(p->parts[i]->topic);
        free(p->parts[i]);
    }
    free(p->parts);
    memset(p, 0, sizeof *p);
}

partition_state *pipeline_find(pipeline *p, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < p->n_parts; i++)
        if (p->parts[i]->partition == partition && strcmp(p->parts[i]->topic, topic) == 0)
            return p->parts[i];
    return NULL;
}

static partition_state *get_or_add(pipeline *p, const char *topic, int32_t partition)
{
    partition_state *ps = pipeline_find(p, topic, partition);
    if (ps)
        return ps;
    if (GROW_ONE(p->parts, p->n_parts, p->cap_parts, 16))
        return NULL;
    ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->topic = strdup(topic))) {
        free(ps);
        return NULL;
    }
    ps->partition = partition;
    ps->max_event_ms = INT64_MIN;
    ps->kind = strcmp(topic, p->devices_topic) == 0                         ? RECORD_DEVICE
               : p->profiles_topic && strcmp(topic, p->profiles_topic) == 0 ? RECORD_USER_PROFILE
                                                                            : RECORD_WEB_EVENT;
    batch_init(&ps->b);
    batch_init(&ps->inflight_b);
    p->parts[p->n_parts++] = ps;
    return ps;
}

static int64_t lowest_fence(const int64_t fences[KEY_GROUPS])
{
    int64_t low = INT64_MAX;
    for (int g = 0; g < KEY_GROUPS; g++)
        if (fences[g] < low)
            low = fences[g];
    return low;
}

static int64_t highest_fence(const int64_t fences[KEY_GROUPS])
{
    int64_t high = INT64_MIN;
    for (int g = 0; g < KEY_GROUPS; g++)
        if (fences[g] > high)
            high = fences[g];
    return high;
}

int pipeline_assign(pipeline *p, const char *topic, int32_t partition, int64_t *start, errbuf *err)
{
    partition_state *ps = get_or_add(p, topic, partition);
    if (!ps) {
        err_set(err, "out of memory");
        return -1;
    }
    if (redis_state_read_fences(p->redis, topic, partition, ps->fences, err))
        return -1;
    batch_reset(&ps->b);
    ps->pending = false;
    ps->assigned = true;
    ps->generation++;
    int64_t low = lowest_fence(ps->fences);
    *start = low < 0 ? RD_KAFKA_OFFSET_BEGINNING : low;
    ps->position = low < 0 ? -1 : low;
    ps->applied = ps->position;
    return 0;
}

void pipeline_revoke(pipeline *p, const char *topic, int32_t partition)
{
    partition_state *ps = pipeline_find(p, topic, partition);
    if (!ps)
        return;
    ps->assigned = false;
    ps->generation++;
    /* A batch in flight stays until its replies are read (the apply
     * connection must stay in step); its result is then ignored. */
    batch_reset(&ps->b);
    ps->pending = false;
}

static int dead_letter(pipeline *p, const rd_kafka_message_t *m, const char *reason,
                       const char *detail, errbuf *err)
{
    log_debug("dead letter %s [%d] @%lld: %s: %s", rd_kafka_topic_name(m->rkt), m->partition,
              (long long)m->offset, reason, detail);
    if (!p->range) {
        if (dlq_send(p->dead_letters, m, reason, detail, err))
            return -1;
        p->dlq_pending = true;
    }
    p->stats.dead_letters++;
    run_metrics_dead_letter(rd_kafka_topic_name(m->rkt), reason);
    partition_state *ps = pipeline_find(p, rd_kafka_topic_name(m->rkt), m->partition);
    if (ps)
        ps->n_dead++;
    return 0;
}

/* The time a dimension change without updated_at takes: its Kafka
 * timestamp (0 if the record has none). */
static int64_t record_time(const rd_kafka_message_t *m)
{
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    return ts < 0 ? 0 : ts;
}

/* Folds a dimension change in, unless its entity's group has applied this
 * offset already. */
static int add_dim(partition_state *ps, const rd_kafka_message_t *m, const dim_change *c,
                   errbuf *err)
{
    uint32_t g = c->kind == DIM_DEVICES ? group_of_device(c->id) : group_of_user(c->id);
    if (m->offset >= ps->fences[g] && batch_add_dim(&ps->b, c)) {
        err_set(err, "out of memory folding a batch");
        return -1;
    }
    return 0;
}

/* A null value on the devices or profiles topic: the key's entity is
 * deleted as of the activity.updated_at header, else the record's time. */
static int handle_tombstone(pipeline *p, partition_state *ps, const rd_kafka_message_t *m,
                            errbuf *err)
{
    int64_t id, at = record_time(m);
    if (!m->key || !dim_parse_id(m->key, m->key_len, &id))
        return dead_letter(p, m, "tombstone-without-key",
                           "a null value whose key is not a decimal id deletes nothing", err);
    rd_kafka_headers_t *hdrs;
    const void *v;
    size_t vlen;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, DIM_TOMBSTONE_TIME_HEADER, &v, &vlen) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        (!v || !dim_parse_id(v, vlen, &at)))
        return dead_letter(p, m, "bad-tombstone-time",
                           "the " DIM_TOMBSTONE_TIME_HEADER " header is not epoch milliseconds",
                           err);
    if (at < p->rules.min_event_time_ms || at >= p->rules.max_event_time_ms) {
        errbuf detail;
        err_set(&detail, "tombstone time %lld ms is outside the accepted range", (long long)at);
        return dead_letter(p, m, "updated-at-out-of-range", detail.msg, err);
    }
    dim_change c;
    dim_change_tombstone(ps->kind == RECORD_DEVICE ? DIM_DEVICES : DIM_USERS, id, at, &c);
    p->stats.tombstones++;
    return add_dim(ps, m, &c, err);
}

int pipeline_handle(pipeline *p, const rd_kafka_message_t *m, errbuf *err)
{
    partition_state *ps = pipeline_find(p, rd_kafka_topic_name(m->rkt), m->partition);
    /* Messages of a partition revoked while they were in flight, or below
     * where we stand (a seek), are not ours to apply. */
    if (!ps || !ps->assigned || (ps->position >= 0 && m->offset < ps->position))
        return 0;
    if (ps->position >= 0 && m->offset > ps->position)
        log_debug("%s [%d]: offsets %lld..%lld were not delivered (compacted away or "
                  "transaction markers)",
                  ps->topic, ps->partition, (long long)ps->position, (long long)m->offset - 1);
    ps->position = m->offset + 1;
    if (!ps->pending) {
        ps->first_offset = m->offset;
        ps->n_records = 0;
        ps->n_dead = 0;
        ps->fence_max = highest_fence(ps->fences);
    }
    ps->n_records++;
    ps->pending = true;
    p->stats.records++;
    if (!m->payload && ps->kind != RECORD_WEB_EVENT)
        return handle_tombstone(p, ps, m, err);

    decoded_record rec;
    errbuf detail = {{0}};
    enum decode_status st =
        avro_codec_decode(p->codec, m->payload, m->len, ps->kind, &rec, &detail);
    if (st == DECODE_REGISTRY_UNAVAILABLE) {
        /* Nothing is known about the record: it is not a dead letter. The
         * processor stops; a restart resumes from the fences, here. */
        err_set(err, "%s [%d] @%lld: schema registry unavailable: %s", rd_kafka_topic_name(m->rkt),
                m->partition, (long long)m->offset, detail.msg);
        return -1;
    }
    if (st != DECODE_OK)
        return dead_letter(p, m, decode_status_name(st), detail.msg, err);

    if (rec.kind == RECORD_WEB_EVENT) {
        const web_event *ev = &rec.u.event;
        const char *why = validate_event(&p->rules, ev, &detail);
        if (why)
            return dead_letter(p, m, why, detail.msg, err);
        if (p->range &&
            (ev->event_time_ms < p->range_from_ms || ev->event_time_ms >= p->range_to_ms)) {
            p->stats.out_of_range++;
            return 0;
        }
        /* Late: older than the partition's watermark as this process knows
         * it (its latest event time minus the allowed lateness). */
        if (ps->max_event_ms != INT64_MIN &&
            ev->event_time_ms < ps->max_event_ms - p->lateness_ms) {
            p->stats.late_events++;
            run_metrics_late_event();
        }
        bool past = m->offset >= ps->fence_max;
        bool host = past || m->offset >= ps->fences[group_of_host(ev->host.ptr, ev->host.len)];
        bool user = ev->user_id.present &&
                    (past || m->offset >= ps->fences[group_of_user(ev->user_id.value)]);
        if (batch_add_event(&ps->b, ev, host, user)) {
            err_set(err, "out of memory folding a batch");
            return -1;
        }
        p->stats.events++;
    } else if (rec.kind == RECORD_USER_PROFILE) {
        const char *why = validate_profile(&p->rules, &rec.u.profile, &detail);
        if (why)
            return dead_letter(p, m, why, detail.msg, err);
        dim_change c;
        dim_change_from_profile(&rec.u.profile, record_time(m), &c);
        if (add_dim(ps, m, &c, err))
            return -1;
        p->stats.profiles++;
    } else {
        const device_record *dev = &rec.u.device;
        const char *why = validate_device(&p->rules, dev, &detail);
        if (why)
            return dead_letter(p, m, why, detail.msg, err);
        if (m->offset >= ps->fences[group_of_device(dev->device_id)] &&
            batch_add_device(&ps->b, dev)) {
            err_set(err, "out of memory folding a batch");
            return -1;
        }
        /* The same record is a change of dim_devices. */
        dim_change c;
        dim_change_from_device(dev, record_time(m), &c);
        if (add_dim(ps, m, &c, err))
            return -1;
        p->stats.devices++;
    }
    return 0;
}

static int add_reseek(rd_kafka_topic_partition_list_t **list, partition_state *ps)
{
    if (!*list)
        *list = rd_kafka_topic_partition_list_new(4);
    int64_t low = lowest_fence(ps->fences);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(*list, ps->topic, ps->partition);
    tp->offset = low < 0 ? RD_KAFKA_OFFSET_BEGINNING : low;
    ps->position = low < 0 ? -1 : low;
    ps->applied = ps->position;
    return 0;
}

int pipeline_apply_begin(pipeline *p, errbuf *err)
{
    /* Dead letters first: an offset counts as done only once its dead
     * letter is safely in Kafka. */
    if (p->dlq_pending) {
        if (dlq_wait(p->dead_letters, err))
            return PIPELINE_DLQ_FAILED;
        p->dlq_pending = false;
    }
    for (size_t i = 0; i < p->n_parts; i++) {
        partition_state *ps = p->parts[i];
        if (!ps->assigned || !ps->pending || ps->inflight)
            continue;
        /* The apply carries the partition's latest event time so far, not
         * only this batch's (processors/apply.lua: the watermark). */
        if (ps->b.max_event_ms > ps->max_event_ms)
            ps->max_event_ms = ps->b.max_event_ms;
        ps->b.max_event_ms = ps->max_event_ms;
        if (redis_state_apply_send(p->apply_redis, &ps->b, ps->topic, ps->partition, ps->position,
                                   ps->fences, &ps->ticket, err))
            return -1;
        /* The next batch is folded against the fences this one will leave;
         * if it fails, _end drops that batch too. */
        for (size_t k = 0; k < ps->ticket.n; k++)
            ps->fences[ps->ticket.groups[k]] = ps->position;
        batch tmp = ps->inflight_b;
        ps->inflight_b = ps->b;
        ps->b = tmp;
        ps->inflight = true;
        ps->inflight_position = ps->position;
        ps->inflight_first = ps->first_offset;
        ps->inflight_records = ps->n_records;
        ps->inflight_generation = ps->generation;
        ps->pending = false;
        ps->inflight_dead = ps->n_dead;
        run_metrics_batch(ps->topic, ps->inflight_records);
    }
    return 0;
}

/* Whether a conflict reply left any of the groups' fences below what was
 * expected: fences only move forward, unless Redis lost state. */
static bool went_back(const int64_t fences[KEY_GROUPS], const uint32_t *groups,
                      const int64_t *expected, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (fences[groups ? groups[k] : k] < expected[k])
            return true;
    return false;
}

/* Counts and logs a partition's fence conflict; returns the worse of
 * conflict and this one (a fence that went back means lost state). */
static int note_conflict(pipeline *p, const partition_state *ps, bool back, int conflict)
{
    p->stats.fence_conflicts++;
    if (back) {
        log_warn("fence of %s [%d] went back or vanished: redis lost this prefix's state "
                 "(FLUSHDB, an empty replica, a rollback); rebuilding it from the topics",
                 ps->topic, ps->partition);
        return PIPELINE_STATE_LOST;
    }
    log_warn("fence moved under %s [%d]: another instance applied it; re-reading fences and "
             "seeking back",
             ps->topic, ps->partition);
    return conflict ? conflict : PIPELINE_FENCE_MOVED;
}

/* After conflicts: every assigned partition starts over from its fences. */
static int after_conflicts(pipeline *p, int conflict, rd_kafka_topic_partition_list_t **reseek,
                           errbuf *err)
{
    if (!conflict)
        return 0;
    if (pipeline_resync(p, reseek, conflict == PIPELINE_STATE_LOST, err))
        return -1;
    return conflict;
}

int pipeline_apply_end(pipeline *p, rd_kafka_topic_partition_list_t **reseek, errbuf *err)
{
    int conflict = 0;
    /* Every reply first: a rehydration (below) talks to Redis on the same
     * connection, after the pipeline is drained. */
    for (size_t i = 0; i < p->n_parts; i++) {
        partition_state *ps = p->parts[i];
        if (ps->inflight && (ps->ticket_rc = redis_state_apply_recv(
                                 p->apply_redis, &ps->inflight_b, ps->topic, ps->partition,
                                 &ps->ticket, ps->fences, err)) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->n_parts; i++) {
        partition_state *ps = p->parts[i];
        if (!ps->inflight)
            continue;
        int r = ps->ticket_rc;
        /* Late events of evicted months: their entities come back from
         * PostgreSQL, then those groups apply (README "Lateness and
         * eviction"). */
        if (r == REDIS_APPLY_REHYDRATE &&
            (r = redis_state_apply_rehydrating(p->apply_redis, &ps->inflight_b, ps->topic,
                                               ps->partition, &ps->ticket, ps->fences, err)) < 0)
            return -1;
        ps->inflight = false;
        size_t folded = batch_bytes(&ps->inflight_b);
        batch_reset(&ps->inflight_b);
        /* Revoked or re-assigned meanwhile: the new owner (or the new
         * assignment) works from the fences, whatever this batch did. */
        if (!ps->assigned || ps->generation != ps->inflight_generation)
            continue;
        if (r == 1) {
            /* Our view is stale. Once every reply is read, every fence is
             * re-read and every partition starts over from them. */
            conflict = note_conflict(
                p, ps, went_back(ps->fences, ps->ticket.groups, ps->ticket.expected, ps->ticket.n),
                conflict);
        } else {
            log_debug("applied %s [%d] %lld..%lld (%llu records folded into %zu bytes, %zu key "
                      "groups)",
                      ps->topic, ps->partition, (long long)ps->inflight_first,
                      (long long)ps->inflight_position - 1,
                      (unsigned long long)ps->inflight_records, folded, ps->ticket.n);
            ps->applied = ps->inflight_position;
            run_metrics_applied(ps->topic, ps->inflight_records - ps->inflight_dead);
            run_metrics_rehydrations(redis_state_rehydrations(p->apply_redis));
        }
    }
    return after_conflicts(p, conflict, reseek, err);
}

int pipeline_apply(pipeline *p, rd_kafka_topic_partition_list_t **reseek, errbuf *err)
{
    int r = pipeline_apply_end(p, reseek, err);
    if (r < 0)
        return -1;
    int b = pipeline_apply_begin(p, err);
    if (b)
        return b;
    int r2 = pipeline_apply_end(p, reseek, err);
    return r2 < 0 ? -1 : (r > r2 ? r : r2);
}

size_t pipeline_pending_bytes(const pipeline *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_parts; i++)
        n += batch_bytes(&p->parts[i]->b);
    return n;
}

size_t pipeline_release_batches(pipeline *p, size_t keep)
{
    size_t held = 0, released = 0;
    for (size_t i = 0; i < p->n_parts; i++)
        held += batch_capacity(&p->parts[i]->b) + batch_capacity(&p->parts[i]->inflight_b);
    while (held > keep) {
        batch *largest = NULL;
        size_t largest_cap = 0;
        for (size_t i = 0; i < p->n_parts; i++) {
            partition_state *ps = p->parts[i];
            batch *idle[2] = {ps->pending ? NULL : &ps->b, ps->inflight ? NULL : &ps->inflight_b};
            for (int k = 0; k < 2; k++) {
                size_t cap = idle[k] ? batch_capacity(idle[k]) : 0;
                if (cap > largest_cap) {
                    largest = idle[k];
                    largest_cap = cap;
                }
            }
        }
        if (!largest)
            break;
        batch_release(largest);
        held -= largest_cap;
        released += largest_cap;
    }
    return released;
}

bool pipeline_in_flight(const pipeline *p)
{
    for (size_t i = 0; i < p->n_parts; i++)
        if (p->parts[i]->inflight)
            return true;
    return false;
}

int pipeline_resync(pipeline *p, rd_kafka_topic_partition_list_t **reseek, bool state_lost,
                    errbuf *err)
{
    for (size_t i = 0; i < p->n_parts; i++) {
        partition_state *ps = p->parts[i];
        ps->inflight = false;
        ps->pending = false;
        batch_reset(&ps->b);
        batch_reset(&ps->inflight_b);
        if (!ps->assigned)
            continue;
        if (state_lost && ps->position > ps->rebuild_to)
            ps->rebuild_to = ps->position;
        if (redis_state_read_fences(p->redis, ps->topic, ps->partition, ps->fences, err))
            return -1;
        add_reseek(reseek, ps);
    }
    return 0;
}

bool pipeline_rebuilding(pipeline *p)
{
    bool rebuilding = false;
    for (size_t i = 0; i < p->n_parts; i++) {
        partition_state *ps = p->parts[i];
        if (!ps->assigned || ps->applied >= ps->rebuild_to)
            ps->rebuild_to = 0;
        rebuilding |= ps->rebuild_to > 0;
    }
    return rebuilding;
}

int pipeline_advance_fences(pipeline *p, rd_kafka_topic_partition_list_t **reseek, errbuf *err)
{
    int conflict = 0;
    for (size_t i = 0; i < p->n_parts; i++) {
        partition_state *ps = p->parts[i];
        if (!ps->assigned || ps->pending || ps->inflight || ps->applied < 0)
            continue;
        int64_t expected[KEY_GROUPS];
        memcpy(expected, ps->fences, sizeof expected);
        int r = redis_state_advance_fences_wm(p->redis, ps->topic, ps->partition, ps->applied,
                                              ps->max_event_ms, ps->fences, err);
        if (r < 0)
            return -1;
        if (r == 1) {
            /* A quiet partition (a devices topic, typically) learns here,
             * not at an apply, that its fences moved. */
            conflict =
                note_conflict(p, ps, went_back(ps->fences, NULL, expected, KEY_GROUPS), conflict);
        } else {
            log_debug("fences of %s [%d] advanced to %lld", ps->topic, ps->partition,
                      (long long)ps->applied);
        }
    }
    return after_conflicts(p, conflict, reseek, err);
}

rd_kafka_topic_partition_list_t *pipeline_positions(const pipeline *p)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < p->n_parts; i++) {
        const partition_state *ps = p->parts[i];
        if (ps->assigned && ps->applied >= 0)
            rd_kafka_topic_partition_list_add(list, ps->topic, ps->partition)->offset = ps->applied;
    }
    return list;
}
