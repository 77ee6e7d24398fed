/*
 * bytes_map.h — an open-addressing hash map from byte-string keys to
 * uint32 values (typically an index into the caller's array).
 *
 * The batch aggregator needs a few such maps per batch and resets them for
 * every batch; keys are copied into one growable arena so a reset is two
 * memsets, not thousands of frees.
 */
#ifndef ACTIVITY_BYTES_MAP_H
#define ACTIVITY_BYTES_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hash;
    uint32_t key_off;
    uint32_t key_len;
    uint32_t value;
    uint32_t used;
} bytes_map_slot;

typedef struct {
    bytes_map_slot *slots;
    size_t cap; /* power of two */
    size_t count;
    char *keys;
    size_t keys_len, keys_cap;
} bytes_map;

void bytes_map_init(bytes_map *m);
void bytes_map_free(bytes_map *m);
void bytes_map_clear(bytes_map *m);

/* Finds key; if absent inserts it with *value as its value and sets
 * *inserted. Returns a pointer to the stored value, NULL on out-of-memory. */
uint32_t *bytes_map_upsert(bytes_map *m, const void *key, size_t len, uint32_t value,
                           bool *inserted);
uint32_t *bytes_map_find(const bytes_map *m, const void *key, size_t len);

#endif
