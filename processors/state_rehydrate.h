/*
 * state_rehydrate.h — how an entity of an evicted month comes back into
 * Redis from what PostgreSQL committed, so a late event for it is applied
 * as usual (README "Lateness and eviction"; processors/rehydrate.lua).
 *
 * processors/ does not speak PostgreSQL: the command that owns the
 * connection hands a reader (sinks/pg_rehydrate.c) to the apply
 * connection. The reader reports rows through the rehydrate_rows_*
 * calls; this module turns them into Redis's shapes (hits per day,
 * sketches into exact sets or HyperLogLog registers, a user's masks per
 * browser) and writes them, fenced by the month's eviction generation.
 * Implemented in processors/state_rehydrate.c.
 */
#ifndef ACTIVITY_STATE_REHYDRATE_H
#define ACTIVITY_STATE_REHYDRATE_H

#include "lib/log.h"
#include "processors/bytes_map.h"
#include "processors/redis_conn.h"

#include <stddef.h>
#include <stdint.h>

/* The rows read back for the entities of one (kind, month). */
typedef struct rehydrate_rows rehydrate_rows;

/* Host entity i (0-based, in the order handed to the reader): its hits on
 * day (1..31) of the month, from host_activity_reduced.hit_array. */
int rehydrate_rows_host_hits(rehydrate_rows *r, size_t i, int day, int64_t hits);
/* Host entity i: the stored sketch of that day (host_daily_uniques.users,
 * its bytes). */
int rehydrate_rows_host_sketch(rehydrate_rows *r, size_t i, int day, const unsigned char *bytes,
                               size_t len);
/* User entity i: one activity_user_masks row (an entry of its value as
 * Redis held it: a device id, "null", or a browser entry) and its mask.
 * A user with such rows comes back from them alone. */
int rehydrate_rows_user_entry(rehydrate_rows *r, size_t i, const char *entry, size_t len,
                              int64_t mask);
/* For a user without activity_user_masks rows (flushed by a version
 * before that table), its rows per browser: */
/* User entity i: one user_devices_cumulated row (browser NULL for a NULL
 * browser_type) and its datelist_int. */
int rehydrate_rows_user_browser(rehydrate_rows *r, size_t i, const char *browser, size_t len,
                                int64_t mask);
/* User entity i: its users_cumulated datelist_int (every device's days). */
int rehydrate_rows_user_all(rehydrate_rows *r, size_t i, int64_t mask);

/* Reads the committed rows of n entities of one evicted month (kind 'h':
 * host names; 'u': user ids in decimal) and reports them into rows.
 * Returns 0, or -1 with err set (the apply fails and is retried like a
 * Redis outage). */
typedef int (*rehydrate_reader)(void *ctx, char kind, int year, int month,
                                const char *const *entities, const size_t *lens, size_t n,
                                rehydrate_rows *rows, errbuf *err);

/* The user months of evicted months (months[], month_index) that hold one
 * of these devices (activity_user_masks.device_id), each handed to fn.
 * Returns 0, or -1 with err set. */
typedef int (*rehydrate_device_users)(void *ctx, const int64_t *devices, size_t n,
                                      const int32_t *months, size_t nmonths,
                                      int (*fn)(void *fctx, int64_t user, int32_t month),
                                      void *fctx, errbuf *err);

/* Gives a connection (the apply's, the flush's) its reads of PostgreSQL.
 * Without them, an apply that needs a rehydration fails with an error
 * naming the month, and a flush cannot reach evicted users of a device. */
void redis_state_set_rehydrate_reader(redis_state *rs, rehydrate_reader fn,
                                      rehydrate_device_users users, void *ctx);

/* For a flush that took devices first described (new) or whose browser
 * changed (a bytes_map of device ids each): hands fn every user month of
 * them that Redis holds, bringing back first those of evicted months from
 * PostgreSQL, so the flush re-resolves them with the device as it is now
 * (README "Lateness and eviction"). Does nothing while no month is
 * evicted. Returns 0, or -1 with err set. */
int redis_state_evicted_users_of_devices(redis_state *rs, const bytes_map *new_devices,
                                         const bytes_map *changed_devices,
                                         int (*fn)(void *ctx, int32_t month, int64_t user),
                                         void *ctx, errbuf *err);
/* Entities brought back so far by this connection (a counter). */
uint64_t redis_state_rehydrations(const redis_state *rs);

#endif
