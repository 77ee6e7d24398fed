#!/usr/bin/env bash
# test_consumer_group_kip848.sh — test_consumer_group.sh (kill -9, a join, a
# zombie) with every member on Kafka 4's consumer group protocol (KIP-848:
# -X group.protocol=consumer, assignment computed by the broker, session
# timeout and heartbeat interval set broker-side by scripts/stack.sh).
IT_GROUP_PROTOCOL=consumer exec "$(dirname "$0")/test_consumer_group.sh"
