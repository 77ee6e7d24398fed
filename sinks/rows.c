/*
 * rows.c — sink row encoding in COPY text format (see rows.h).
 */
#include "sinks/rows.h"

#include "lib/civil_time.h"
#include "lib/decimal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_free(strbuf *sb)
{
    free(sb->data);
    memset(sb, 0, sizeof *sb);
}

static int reserve(strbuf *sb, size_t more)
{
    if (sb->len + more + 1 <= sb->cap)
        return 0;
    size_t nc = sb->cap ? sb->cap * 2 : 4096;
    while (nc < sb->len + more + 1)
        nc *= 2;
    char *p = realloc(sb->data, nc);
    if (!p)
        return -1;
    sb->data = p;
    sb->cap = nc;
    return 0;
}

int strbuf_append(strbuf *sb, const void *data, size_t len)
{
    if (reserve(sb, len))
        return -1;
    memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
    return 0;
}

int strbuf_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(sb, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return 0;
}

int strbuf_copy_text(strbuf *sb, const char *s, size_t len)
{
    if (reserve(sb, len * 2))
        return -1;
    char *o = sb->data + sb->len;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        switch (c) {
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        default:
            *o++ = c;
        }
    }
    sb->len = (size_t)(o - sb->data);
    sb->data[sb->len] = '\0';
    return 0;
}

/* "YYYY-MM-" of a month (years 0..9999, as civil_time allows), written by
 * hand: a flush formats one date per active user-day, and printf was a
 * tenth of the flush. */
static void month_prefix(int32_t month, char out[8], int *ndays)
{
    int y, m;
    month_from_index(month, &y, &m);
    out[0] = (char)('0' + y / 1000 % 10);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    if (ndays)
        *ndays = days_in_month(y, m);
}

static int month_start(strbuf *sb, int32_t month)
{
    char date[10];
    month_prefix(month, date, NULL);
    date[8] = '0';
    date[9] = '1';
    return strbuf_append(sb, date, sizeof date);
}

int rows_datelist(strbuf *sb, int32_t month, uint32_t mask)
{
    char prefix[8];
    int ndays;
    month_prefix(month, prefix, &ndays);
    /* At most 31 dates of 10 bytes, commas and braces. */
    if (reserve(sb, 2 + 31 * 11))
        return -1;
    char *o = sb->data + sb->len;
    *o++ = '{';
    for (int d = ndays; d >= 1; d--) {
        if (!(mask & (1u << (d - 1))))
            continue;
        if (o[-1] != '{')
            *o++ = ',';
        memcpy(o, prefix, sizeof prefix);
        o[8] = (char)('0' + d / 10);
        o[9] = (char)('0' + d % 10);
        o += 10;
    }
    *o++ = '}';
    sb->len = (size_t)(o - sb->data);
    sb->data[sb->len] = '\0';
    return 0;
}

static int append_i64(strbuf *sb, long long v)
{
    char buf[DECIMAL_MAX];
    size_t len;
    const char *p = decimal_i64(buf, v, &len);
    return strbuf_append(sb, p, len);
}

static int int_array(strbuf *sb, const int64_t *v, int n)
{
    if (strbuf_append(sb, "{", 1))
        return -1;
    for (int i = 0; i < n; i++)
        if ((i && strbuf_append(sb, ",", 1)) || append_i64(sb, v[i]))
            return -1;
    return strbuf_append(sb, "}", 1);
}

int rows_encode_host(strbuf *sb, const host_row *row)
{
    int y, m;
    month_from_index(row->month, &y, &m);
    int ndays = days_in_month(y, m);
    uint32_t mask = 0;
    for (int d = 1; d <= ndays; d++)
        if (row->hits[d - 1] > 0)
            mask |= 1u << (d - 1);
    if (strbuf_copy_text(sb, row->host, row->host_len) || strbuf_append(sb, "\t", 1) ||
        month_start(sb, row->month) || strbuf_append(sb, "\t", 1) ||
        int_array(sb, row->hits, ndays) || strbuf_append(sb, "\t", 1) ||
        int_array(sb, row->uniq, ndays) || strbuf_append(sb, "\t", 1) ||
        rows_datelist(sb, row->month, mask))
        return -1;
    return strbuf_append(sb, "\n", 1);
}

int rows_encode_user(strbuf *sb, const user_row *row)
{
    if (append_i64(sb, row->user_id) || strbuf_append(sb, "\t", 1))
        return -1;
    if (row->browser_type.present) {
        if (strbuf_copy_text(sb, row->browser_type.ptr, row->browser_type.len))
            return -1;
    } else if (strbuf_append(sb, "\\N", 2)) {
        return -1;
    }
    if (strbuf_append(sb, "\t", 1) || month_start(sb, row->month) || strbuf_append(sb, "\t", 1) ||
        rows_datelist(sb, row->month, row->mask))
        return -1;
    return strbuf_append(sb, "\t", 1) || append_i64(sb, (int)row->mask) ||
                   strbuf_append(sb, "\n", 1)
               ? -1
               : 0;
}

int rows_encode_user_mask(strbuf *sb, const user_mask_row *row)
{
    static const char hex[] = "0123456789abcdef";
    if (append_i64(sb, row->user_id) || strbuf_append(sb, "\t", 1) || month_start(sb, row->month) ||
        strbuf_append(sb, "\t", 1))
        return -1;
    /* The entry as the user's value in Redis spells it (processors/apply.lua),
     * the device id also in its own column. */
    if (row->kind == 'd') {
        if (append_i64(sb, row->device) || strbuf_append(sb, "\t", 1) ||
            append_i64(sb, row->device))
            return -1;
    } else if (row->kind == 'n') {
        if (strbuf_append(sb, "null\t\\N", 7))
            return -1;
    } else {
        if (strbuf_append(sb, "~", 1) || (!row->browser.present && strbuf_append(sb, "-", 1)))
            return -1;
        for (size_t k = 0; row->browser.present && k < row->browser.len; k++) {
            unsigned char c = (unsigned char)row->browser.ptr[k];
            char two[2] = {hex[c >> 4], hex[c & 15]};
            if (strbuf_append(sb, two, 2))
                return -1;
        }
        if (strbuf_append(sb, "\t\\N", 3))
            return -1;
    }
    return strbuf_append(sb, "\t", 1) || append_i64(sb, (int)row->mask) ||
                   strbuf_append(sb, "\n", 1)
               ? -1
               : 0;
}

int rows_encode_user_key(strbuf *sb, int64_t user_id, int32_t month, uint32_t mask)
{
    if (append_i64(sb, user_id) || strbuf_append(sb, "\t", 1) || month_start(sb, month) ||
        strbuf_append(sb, "\t", 1) || rows_datelist(sb, month, mask) ||
        strbuf_append(sb, "\t", 1) || append_i64(sb, (int)mask))
        return -1;
    return strbuf_append(sb, "\n", 1);
}

int rows_encode_daily(strbuf *sb, const char *host, size_t host_len, int32_t month, int day,
                      const unsigned char *sketch, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char date[11];
    month_prefix(month, date, NULL);
    date[8] = (char)('0' + day / 10);
    date[9] = (char)('0' + day % 10);
    date[10] = '\t';
    /* "\\x": COPY text reads the backslash escaped, bytea input then sees \x. */
    if (strbuf_copy_text(sb, host, host_len) || strbuf_append(sb, "\t", 1) ||
        strbuf_append(sb, date, sizeof date) || strbuf_append(sb, "\\\\x", 3) ||
        reserve(sb, 2 * len + 1))
        return -1;
    char *o = sb->data + sb->len;
    for (size_t i = 0; i < len; i++) {
        *o++ = hex[sketch[i] >> 4];
        *o++ = hex[sketch[i] & 15];
    }
    *o++ = '\n';
    sb->len = (size_t)(o - sb->data);
    sb->data[sb->len] = '\0';
    return 0;
}
