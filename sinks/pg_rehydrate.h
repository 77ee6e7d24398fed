/*
 * pg_rehydrate.h — reads back from PostgreSQL what an evicted month holds
 * for some hosts or users, for processors/state_rehydrate.h (the apply
 * connection calls it when late events reach an evicted month; README
 * "Lateness and eviction").
 */
#ifndef ACTIVITY_PG_REHYDRATE_H
#define ACTIVITY_PG_REHYDRATE_H

#include "processors/state_rehydrate.h"

/* A rehydrate_reader over a pg_sink (ctx): hosts from host_activity_reduced
 * and host_daily_uniques, users from user_devices_cumulated and
 * users_cumulated, of that month. */
int pg_rehydrate_read(void *ctx, char kind, int year, int month, const char *const *entities,
                      const size_t *lens, size_t n, rehydrate_rows *rows, errbuf *err);

/* A rehydrate_device_users over a pg_sink (ctx): activity_user_masks by
 * device_id, in those months. */
int pg_rehydrate_device_users(void *ctx, const int64_t *devices, size_t n, const int32_t *months,
                              size_t nmonths, int (*fn)(void *fctx, int64_t user, int32_t month),
                              void *fctx, errbuf *err);

#endif
