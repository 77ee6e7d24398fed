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

#endif
