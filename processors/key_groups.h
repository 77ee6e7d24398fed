/*
 * key_groups.h — which key group an entity's Redis state lives in.
 *
 * All state of one host, user or device lives in one key group; every key of
 * a group carries the group's hash tag ("{17}"), so a group maps to one
 * Redis Cluster slot and one atomic Lua call can update all of it together
 * with its fences. The hash functions and KEY_GROUPS are part of the on-disk
 * layout: changing either orphans existing state, which is why Redis records
 * them (see redis_state.c) and the processor refuses a mismatch.
 */
#ifndef ACTIVITY_KEY_GROUPS_H
#define ACTIVITY_KEY_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#define KEY_GROUPS 64
/* Sub-buckets of a group's per-month user hash, so each hash stays small
 * enough for Redis's compact listpack encoding. */
#define USER_BUCKETS 16

uint64_t hash_bytes(const void *data, size_t len);
uint64_t hash_u64(uint64_t x);

uint32_t group_of_host(const char *host, size_t len);
uint32_t group_of_user(int64_t user_id);
uint32_t group_of_device(int64_t device_id);
uint32_t bucket_of_user(int64_t user_id);

#endif
