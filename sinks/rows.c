/*
 * rows.c — sink row encoding in COPY text format (see rows.h).
 */
#include "sinks/rows.h"

#include "processors/civil_time.h"

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

static int month_start(strbuf *sb, int32_t month)
{
    int y, m;
    month_from_index(month, &y, &m);
    return strbuf_printf(sb, "%04d-%02d-01", y, m);
}

int rows_datelist(strbuf *sb, int32_t month, uint32_t mask)
{
    int y, m;
    month_from_index(month, &y, &m);
    if (strbuf_append(sb, "{", 1))
        return -1;
    bool first = true;
    for (int d = days_in_month(y, m); d >= 1; d--) {
        if (!(mask & (1u << (d - 1))))
            continue;
        if (strbuf_printf(sb, "%s%04d-%02d-%02d", first ? "" : ",", y, m, d))
            return -1;
        first = false;
    }
    return strbuf_append(sb, "}", 1);
}

static int int_array(strbuf *sb, const int64_t *v, int n)
{
    if (strbuf_append(sb, "{", 1))
        return -1;
    for (int i = 0; i < n; i++)
        if (strbuf_printf(sb, "%s%lld", i ? "," : "", (long long)v[i]))
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
    if (strbuf_printf(sb, "%lld\t", (long long)row->user_id))
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
    return strbuf_printf(sb, "\t%d\n", (int)row->mask);
}

int rows_encode_user_key(strbuf *sb, int64_t user_id, int32_t month)
{
    if (strbuf_printf(sb, "%lld\t", (long long)user_id) || month_start(sb, month))
        return -1;
    return strbuf_append(sb, "\n", 1);
}
