/*
 * deployment.h — one Redis prefix is consumed by one consumer group, and
 * one consumer group serves one prefix (issue 9: ownership).
 *
 * A deployment is a Redis key prefix with its consumer group. Two
 * instances of one group with different prefixes split the partitions
 * between two states and overwrite each other's rows; one prefix consumed
 * by two live groups has two processors applying the same records to one
 * state. Both are misconfigurations this module detects at start, and
 * refuses with a message naming the other side:
 *
 * - Every consumer of `run` says its prefix in its client.id
 *   ("activity;prefix=P"), so the live members of a group tell which
 *   prefixes they serve (Kafka's DescribeGroups).
 * - The PostgreSQL database records which groups have consumed each prefix
 *   (activity_consumer_groups). Another group registered for our prefix is
 *   a conflict only while it has live members serving that prefix: a group
 *   whose members have all left (a finished backfill, a replay under a new
 *   group, a renamed deployment) is forgotten and the prefix moves on; the
 *   last member of a group to exit cleanly forgets its group itself.
 */
#ifndef ACTIVITY_DEPLOYMENT_H
#define ACTIVITY_DEPLOYMENT_H

#include "consumers/kafka_source.h"
#include "sinks/pg_sink.h"
#include "lib/log.h"

#include <librdkafka/rdkafka.h>

/* The client.id of run's consumer is this followed by the prefix. */
#define DEPLOYMENT_CLIENT_ID KAFKA_SOURCE_CLIENT_ID

/* Checks that no live member of group serves another prefix, and no other
 * live group serves prefix; then registers (prefix, group). Returns 0; 1
 * on refusal, err naming the conflict and what to do; -1 when the check
 * could not be made (Kafka or PostgreSQL unreachable), err saying why. */
int deployment_claim(rd_kafka_t *rk, pg_sink *pg, const char *group, const char *prefix,
                     errbuf *err);

/* On a clean exit, while still a member: if no other member is left in
 * group, forgets (prefix, group), so that another group may take the
 * prefix over at once. A static member (--instance-id) stays listed by
 * Kafka until its session times out, so without this a replay under a new
 * group right after a static member's clean exit would be refused. Best
 * effort: failures are only logged (debug). */
void deployment_release(rd_kafka_t *rk, pg_sink *pg, const char *group, const char *prefix);

/* For --reset: refuses while group has live members (-1, err says so). */
int deployment_check_idle(rd_kafka_t *rk, const char *group, errbuf *err);

#endif
