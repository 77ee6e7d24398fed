/*
 * civil_time.h — UTC calendar arithmetic for day bitmaps and monthly arrays.
 *
 * Every table is bucketed by UTC calendar day and month, so this module is
 * the single place that turns an event's millisecond timestamp into a day
 * number, a (year, month, day) triple and a month key. It never consults the
 * local time zone: the algorithms are Howard Hinnant's proleptic-Gregorian
 * day counts, valid for any year in [-32767, 32767].
 */
#ifndef ACTIVITY_CIVIL_TIME_H
#define ACTIVITY_CIVIL_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int year;
    int month; /* 1..12 */
    int day;   /* 1..31 */
} civil_date;

/* Days since 1970-01-01 of a calendar date. */
int64_t days_from_civil(int year, int month, int day);
civil_date civil_from_days(int64_t days);
int days_in_month(int year, int month);
bool is_leap_year(int year);

/* Floor division: negative timestamps (before 1970) land on the right day. */
int64_t day_of_epoch_ms(int64_t ms);

/* A month as a single integer, year * 12 + (month - 1): consecutive months
 * are consecutive integers, which keeps comparisons and keys simple. */
int32_t month_index(int year, int month);
void month_from_index(int32_t index, int *year, int *month);

/* Parses "YYYY-MM-DD HH:MM:SS[.fraction]" (also with 'T' and an optional
 * trailing 'Z'), as UTC. The fraction may have 1..9 digits; sub-millisecond
 * digits are truncated. Returns false on anything else, including
 * out-of-range fields such as February 30th or hour 24. */
bool parse_utc_timestamp(const char *s, size_t len, int64_t *ms_out);

#endif
