/*
 * hll.h — the postgresql-hll extension's sketch, built in C byte for byte.
 *
 * host_daily_uniques holds one sketch per (host, day) in the format of the
 * postgresql-hll extension, so that SQL can union the processor's sketches
 * with each other and with sketches built from raw events. This module owns
 * that format for the one configuration the table uses, exactly what
 *   hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1)
 * builds: 2^14 registers of 5 bits, the explicit threshold chosen by the
 * extension ("auto": as many 8-byte hashes as fit in the full register
 * array, 1280), sparse encoding on ("auto": while it is smaller).
 *
 *   0 distinct hashes      EMPTY     3-byte header only
 *   1..1280                EXPLICIT  header + the hashes, sorted as signed
 *                                    64-bit integers, big-endian
 *   1281.. and <= 4311     SPARSE    header + (index:14, value:5) per non-zero
 *          non-zero regs             register, bit-packed, ascending index
 *   1281.. and > 4311      FULL      header + 16384 5-bit registers, bit-packed
 *
 * It also owns the bridge to Redis's HyperLogLog: Redis hashes a PFADD
 * element with MurmurHash64A, and its register rule for 2^14 registers is
 * the extension's (index = low 14 bits; value = 1 + trailing zeros of the
 * rest). PFADD of hll_redis_preimage(hll_hash_bigint(id)), 8 bytes, makes
 * Redis's registers the extension's, up to two differences: Redis keeps
 * 6-bit registers (hll_registers_from_redis clamps at 31 as the extension
 * does), and when the 50 bits above the index are all zero Redis stores 51
 * where the extension adds nothing (hll_hash_sets_register: such an
 * element is never PFADDed).
 *
 * Pure computation: no allocation, no I/O.
 */
#ifndef ACTIVITY_HLL_H
#define ACTIVITY_HLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HLL_LOG2M 14
#define HLL_REGWIDTH 5
#define HLL_REGISTERS (1u << HLL_LOG2M)
#define HLL_REG_MAX ((1u << HLL_REGWIDTH) - 1)
/* The extension's auto threshold: ((regwidth * 2^log2m + 7) / 8) / 8. */
#define HLL_EXPLICIT_MAX ((((size_t)HLL_REGWIDTH * HLL_REGISTERS + 7) / 8) / 8)
/* SPARSE while filled * (log2m + regwidth) < regwidth * 2^log2m bits. */
#define HLL_SPARSE_MAX ((HLL_REGWIDTH * HLL_REGISTERS - 1) / (HLL_LOG2M + HLL_REGWIDTH))
#define HLL_HEADER 3
/* EXPLICIT at the threshold and FULL have the same size: 3 + 10240. */
#define HLL_MAX_BYTES (HLL_HEADER + 8 * HLL_EXPLICIT_MAX)
/* The 3 bytes of an EMPTY sketch. */
#define HLL_EMPTY_BYTES "\x11\x8e\x7f"

/* MurmurHash3 x64 128, seed 0, over the 8-byte little-endian id: the first
 * 64 bits. The extension's hll_hash_bigint(id). */
uint64_t hll_hash_bigint(int64_t id);

/* Redis's MurmurHash64A over 8 bytes (the little-endian bytes of k), seed
 * 0xadc83b19: the hash PFADD gives an 8-byte element. */
uint64_t hll_redis_hash64(uint64_t k);
/* The 8-byte element (little-endian, as a number) that Redis hashes to h:
 * hll_redis_hash64(hll_redis_preimage(h)) == h. */
uint64_t hll_redis_preimage(uint64_t h);
/* The little-endian bytes of v; their inverse. */
void hll_le64_put(unsigned char out[8], uint64_t v);
uint64_t hll_le64_get(const unsigned char in[8]);

/* 0 when adding hash h changes no register of the extension (the 50 bits
 * above the index are all zero): such an element counts in EXPLICIT only,
 * and must not be PFADDed (Redis would store 51 in its register). */
bool hll_hash_sets_register(uint64_t h);

/* A user's member in Redis's exact set of a (host, day), also the PFADD
 * element: the 8 bytes of hll_redis_preimage(hll_hash_bigint(id)); a ninth
 * byte (0) marks a hash that sets no register (never PFADDed). Returns the
 * length, 8 or 9. */
#define HLL_MEMBER_MAX 9
size_t hll_redis_member(int64_t id, unsigned char out[HLL_MEMBER_MAX]);
/* The member of hash h (hll_redis_member of an id hashing to h): how a
 * sketch's EXPLICIT hashes come back into the exact set. */
size_t hll_redis_member_of_hash(uint64_t h, unsigned char out[HLL_MEMBER_MAX]);
/* The hll_hash_bigint a member stands for; -1 when m is not a member. */
int hll_redis_member_hash(const void *m, size_t len, uint64_t *h);

/* Adds hash h to registers (the extension's compressed_add). */
void hll_registers_add(uint8_t regs[HLL_REGISTERS], uint64_t h);

typedef struct {
    unsigned char bytes[HLL_MAX_BYTES];
    size_t len;
    double cardinality; /* hll_cardinality() of bytes */
} hll_sketch;

/* The sketch of this set of hashes (duplicates allowed): EMPTY, EXPLICIT,
 * or from registers past HLL_EXPLICIT_MAX distinct. Sorts hashes in place. */
void hll_from_hashes(uint64_t *hashes, size_t n, hll_sketch *out);
/* The sketch of a multiset past the explicit threshold: SPARSE or FULL. */
void hll_from_registers(const uint8_t regs[HLL_REGISTERS], hll_sketch *out);
/* The extension's estimate from registers (hll_cardinality of a SPARSE or
 * FULL sketch). */
double hll_registers_cardinality(const uint8_t regs[HLL_REGISTERS]);

/* Decodes a sketch of this configuration (any of the four types) and
 * returns its cardinality as the extension computes it; -1 when bytes are
 * not such a sketch. For tests and checks of stored bytes. */
int hll_sketch_cardinality(const unsigned char *bytes, size_t len, double *out);

/* Decodes a sketch of this configuration into what it holds: EMPTY and
 * EXPLICIT give their hashes (hashes[0..*nhashes), sorted as stored) and
 * return HLL_DECODED_HASHES; SPARSE and FULL give the 2^14 registers and
 * return HLL_DECODED_REGISTERS; -1 when bytes are not such a sketch. How a
 * stored day comes back into Redis (README "Lateness and eviction"). */
enum { HLL_DECODED_HASHES = 0, HLL_DECODED_REGISTERS = 1 };
int hll_sketch_decode(const unsigned char *bytes, size_t len, uint64_t hashes[HLL_EXPLICIT_MAX],
                      size_t *nhashes, uint8_t regs[HLL_REGISTERS]);

/* Redis's dense HyperLogLog string of these registers (SET to a key, it is
 * a HyperLogLog PFADD and PFCOUNT accept): the 16-byte header with a stale
 * cached count, then 2^14 6-bit registers. Registers of the extension are
 * at most 31, so Redis holds them as they are. */
#define HLL_REDIS_DENSE_BYTES (16 + ((size_t)HLL_REGISTERS * 6 + 7) / 8)
void hll_redis_dense_from_registers(const uint8_t regs[HLL_REGISTERS],
                                    unsigned char out[HLL_REDIS_DENSE_BYTES]);

/* Decodes a Redis HyperLogLog string ("HYLL" header, dense or sparse
 * encoding, 2^14 registers of 6 bits) into the extension's registers:
 * each value clamped to HLL_REG_MAX. -1 when s is not such a string. */
int hll_registers_from_redis(const unsigned char *s, size_t len, uint8_t regs[HLL_REGISTERS]);

#endif
