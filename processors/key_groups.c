/*
 * key_groups.c — stable hashes that place entities in key groups.
 *
 * FNV-1a for byte strings and the splitmix64 finalizer for integers: both are
 * tiny, well-distributed and, above all, fixed forever — they decide where
 * existing state lives.
 */
#include "processors/key_groups.h"

uint64_t hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t hash_u64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint32_t group_of_host(const char *host, size_t len)
{
    return (uint32_t)(hash_bytes(host, len) % KEY_GROUPS);
}

uint32_t group_of_user(int64_t user_id)
{
    return (uint32_t)(hash_u64((uint64_t)user_id) % KEY_GROUPS);
}

uint32_t group_of_device(int64_t device_id)
{
    return (uint32_t)(hash_u64((uint64_t)device_id ^ 0x5bd1e995ULL) % KEY_GROUPS);
}

uint32_t bucket_of_user(int64_t user_id)
{
    return (uint32_t)((hash_u64((uint64_t)user_id) / KEY_GROUPS) % USER_BUCKETS);
}
