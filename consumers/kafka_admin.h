/*
 * kafka_admin.h — topic creation and offset look-ups shared by the
 * subcommands (load creates its topic, run creates the dead-letter topic
 * and learns where "caught up" is).
 */
#ifndef ACTIVITY_KAFKA_ADMIN_H
#define ACTIVITY_KAFKA_ADMIN_H

#include "src/log.h"

#include <librdkafka/rdkafka.h>

/* Partitions of the topics load and run create (events, devices, profiles,
 * dead letters), the same as docker-compose.yml's kafka-init and
 * scripts/stack.sh's num.partitions (tests/test_compose.sh checks). */
#define KAFKA_DEFAULT_PARTITIONS 6

/* Creates the topic unless it exists. Returns 0 if it exists afterwards. */
int kafka_ensure_topic(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                       errbuf *err);

/* Number of partitions of a topic, 0 if it does not exist, -1 on error. */
int kafka_partition_count(rd_kafka_t *rk, const char *topic, errbuf *err);

#endif
