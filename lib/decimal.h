/*
 * decimal.h — integers to decimal text without printf.
 *
 * Redis arguments and COPY rows are mostly decimal integers; formatting
 * them through printf was a visible share of the processor's time.
 */
#ifndef ACTIVITY_DECIMAL_H
#define ACTIVITY_DECIMAL_H

#include <stddef.h>

#define DECIMAL_MAX 21 /* "-9223372036854775808" and a spare byte */

/* Writes v's digits at the end of buf[DECIMAL_MAX] and returns where they
 * start; *len gets their count. Not NUL-terminated. */
static inline const char *decimal_i64(char buf[DECIMAL_MAX], long long v, size_t *len)
{
    char *end = buf + DECIMAL_MAX, *p = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    *len = (size_t)(end - p);
    return p;
}

#endif
