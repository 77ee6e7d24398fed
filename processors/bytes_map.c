/*
 * bytes_map.c — open-addressing hash map with linear probing (see
 * bytes_map.h). The table doubles at 50% load, which keeps probes short
 * without tombstones (entries are never deleted, only cleared together).
 */
#include "processors/bytes_map.h"

#include <stdlib.h>
#include <string.h>

void bytes_map_init(bytes_map *m)
{
    memset(m, 0, sizeof *m);
}

void bytes_map_free(bytes_map *m)
{
    free(m->slots);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

size_t bytes_map_bytes(const bytes_map *m)
{
    return m->keys_len + 2 * m->count * sizeof *m->slots;
}

size_t bytes_map_capacity(const bytes_map *m)
{
    return m->keys_cap + m->cap * sizeof *m->slots;
}

void bytes_map_clear(bytes_map *m)
{
    if (m->slots && m->count)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->count = 0;
    m->keys_len = 0;
}

/* The map's own hash, a word at a time: the batch hashes one to three keys
 * per event, and byte-wise FNV-1a (hash_bytes, which stays for the key
 * groups because the Redis layout depends on it) was a tenth of the
 * processor's time. Only needs to spread keys over the table. */
static uint64_t map_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
    }
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

static bool grow(bytes_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    if (ncap > ((size_t)1 << 32))
        return false; /* the 32-bit hashes index at most 2^32 slots */
    bytes_map_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].used)
            continue;
        size_t j = m->slots[i].hash & (ncap - 1);
        while (ns[j].used)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return true;
}

static bytes_map_slot *probe(const bytes_map *m, const void *key, size_t len, uint64_t h)
{
    size_t i = h & (m->cap - 1);
    while (m->slots[i].used) {
        bytes_map_slot *s = &m->slots[i];
        if (s->hash == (uint32_t)h && s->key_len == len &&
            memcmp(m->keys + s->key_off, key, len) == 0)
            return s;
        i = (i + 1) & (m->cap - 1);
    }
    return &m->slots[i];
}

uint32_t *bytes_map_find(const bytes_map *m, const void *key, size_t len)
{
    if (!m->cap)
        return NULL;
    bytes_map_slot *s = probe(m, key, len, map_hash(key, len));
    return s->used ? &s->value : NULL;
}

uint32_t *bytes_map_upsert(bytes_map *m, const void *key, size_t len, uint32_t value,
                           bool *inserted)
{
    if ((m->count + 1) * 2 > m->cap && !grow(m))
        return NULL;
    uint64_t h = map_hash(key, len);
    bytes_map_slot *s = probe(m, key, len, h);
    *inserted = !s->used;
    if (s->used)
        return &s->value;
    /* Key offsets are 32-bit: a map past 4 GiB of keys is refused (the
     * caller reports it as out of memory), never wrapped. */
    if (m->keys_len + len > UINT32_MAX || len > INT32_MAX)
        return NULL;
    if (m->keys_len + len > m->keys_cap) {
        size_t ncap = m->keys_cap ? m->keys_cap * 2 : 65536;
        while (ncap < m->keys_len + len)
            ncap *= 2;
        char *nk = realloc(m->keys, ncap);
        if (!nk)
            return NULL;
        m->keys = nk;
        m->keys_cap = ncap;
    }
    memcpy(m->keys + m->keys_len, key, len);
    s->hash = (uint32_t)h;
    s->key_off = (uint32_t)m->keys_len;
    s->key_len = (uint32_t)len;
    s->value = value;
    s->used = 1;
    m->keys_len += len;
    m->count++;
    return &s->value;
}
