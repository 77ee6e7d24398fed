/*
 * civil_time.c — UTC calendar arithmetic (see civil_time.h).
 *
 * days_from_civil / civil_from_days follow the well-known era-based
 * algorithms: shift the year to start in March so the leap day is last,
 * split into 400-year eras of exactly 146097 days, and the rest is integer
 * arithmetic with no tables and no loops.
 */
#include "lib/civil_time.h"

int64_t days_from_civil(int year, int month, int day)
{
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12; /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

civil_date civil_from_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    civil_date d;
    d.day = (int)(doy - (153 * mp + 2) / 5 + 1);
    d.month = (int)(mp < 10 ? mp + 3 : mp - 9);
    d.year = (int)(yoe + era * 400 + (d.month <= 2));
    return d;
}

bool is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int year, int month)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    return len[month - 1] + (month == 2 && is_leap_year(year));
}

int64_t day_of_epoch_ms(int64_t ms)
{
    const int64_t per_day = 86400000;
    int64_t q = ms / per_day;
    return (ms % per_day < 0) ? q - 1 : q;
}

int32_t month_index(int year, int month)
{
    return year * 12 + (month - 1);
}

void month_from_index(int32_t index, int *year, int *month)
{
    int32_t y = index >= 0 ? index / 12 : (index - 11) / 12;
    *year = y;
    *month = index - y * 12 + 1;
}

static bool take_digits(const char *s, size_t len, size_t *pos, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
            return false;
        v = v * 10 + (s[(*pos)++] - '0');
    }
    *out = v;
    return true;
}

static bool take_char(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return false;
    (*pos)++;
    return true;
}

bool parse_utc_timestamp(const char *s, size_t len, int64_t *ms_out)
{
    size_t p = 0;
    int y, mo, d, h, mi, sec, ms = 0;
    if (!take_digits(s, len, &p, 4, &y) || !take_char(s, len, &p, '-') ||
        !take_digits(s, len, &p, 2, &mo) || !take_char(s, len, &p, '-') ||
        !take_digits(s, len, &p, 2, &d))
        return false;
    if (p >= len || (s[p] != ' ' && s[p] != 'T'))
        return false;
    p++;
    if (!take_digits(s, len, &p, 2, &h) || !take_char(s, len, &p, ':') ||
        !take_digits(s, len, &p, 2, &mi) || !take_char(s, len, &p, ':') ||
        !take_digits(s, len, &p, 2, &sec))
        return false;
    if (p < len && s[p] == '.') {
        p++;
        int digits = 0;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (digits < 3)
                ms = ms * 10 + (s[p] - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return false;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (p < len && s[p] == 'Z')
        p++;
    if (p != len)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return false;
    int64_t days = days_from_civil(y, mo, d);
    *ms_out = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
    return true;
}
