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

/* 16 bytes: a batch's maps hold one slot per distinct key folded and
 * twice that in empty ones, so the slot's size is most of what a batch
 * of many distinct keys costs. Tables stay far below 2^32 slots, so 32
 * bits of the hash both index them and tell most keys apart. */
typedef struct {
    uint32_t hash;
    uint32_t key_off;
    uint32_t key_len : 31;
    uint32_t used : 1;
    uint32_t value;
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
/* The memory the map's entries need: their keys, and the two slots each
 * takes at the table's highest load (it doubles at 50%). A table's
 * capacity can be up to twice that right after it doubles. */
size_t bytes_map_bytes(const bytes_map *m);
/* The memory the map has allocated (kept across clears). */
size_t bytes_map_capacity(const bytes_map *m);

#endif
