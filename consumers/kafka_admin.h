/*
 * kafka_admin.h — topic creation and offset look-ups shared by the
 * subcommands (load creates its topic, run creates the dead-letter topic
 * and learns where "caught up" is).
 */
#ifndef ACTIVITY_KAFKA_ADMIN_H
#define ACTIVITY_KAFKA_ADMIN_H

#include "lib/log.h"

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

/* A topic's numeric setting as the broker applies it (its own, else the
 * broker default), e.g. max.message.bytes; -1 on error. */
long long kafka_topic_config_number(rd_kafka_t *rk, const char *topic, const char *name,
                                    errbuf *err);

/* The client.id (and, if member_ids, the member id) of every live member
 * of a consumer group, as NULL-terminated arrays (free with strings_free,
 * lib/grow.h); returns how many (0 for a group that is empty or does not
 * exist), -1 on error. */
int kafka_group_members(rd_kafka_t *rk, const char *group, char ***client_ids, char ***member_ids,
                        errbuf *err);

#endif
