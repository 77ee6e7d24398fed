/*
 * test_batch.c — batch pre-aggregation: one delta per key, distinct users
 * per host-day, OR-ed day masks, fence-driven skipping, device encoding.
 */
#include "processors/batch.h"
#include "lib/civil_time.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static web_event event(const char *host, int64_t user, bool has_user, int64_t device, int day,
                       int hour)
{
    web_event ev;
    memset(&ev, 0, sizeof ev);
    ev.host = (opt_str){host, strlen(host), true};
    ev.user_id = (opt_long){user, has_user};
    ev.device_id = (opt_long){device, true};
    ev.event_time_ms = (days_from_civil(2023, 1, day) * 24 + hour) * 3600000LL;
    return ev;
}

static const host_day_delta *find_host_day(const batch *b, const char *host, int day)
{
    int64_t d = days_from_civil(2023, 1, day);
    for (size_t i = 0; i < b->n_host_days; i++)
        if (b->host_days[i].day == d && b->host_days[i].host_len == strlen(host) &&
            memcmp(batch_str(b, b->host_days[i].host_off), host, strlen(host)) == 0)
            return &b->host_days[i];
    return NULL;
}

START_TEST(folds_hits_and_distinct_users)
{
    batch b;
    batch_init(&b);
    web_event evs[] = {
        event("a.com", 1, true, 10, 1, 0),  event("a.com", 1, true, 10, 1, 5),
        event("a.com", 2, true, 10, 1, 23), event("a.com", 0, false, 10, 1, 1),
        event("a.com", 1, true, 10, 2, 0),  event("b.com", 1, true, 11, 1, 0),
    };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        ck_assert_int_eq(batch_add_event(&b, &evs[i], true, true), 0);
    ck_assert_int_eq(b.n_host_days, 3);
    const host_day_delta *a1 = find_host_day(&b, "a.com", 1);
    ck_assert_ptr_nonnull(a1);
    ck_assert_int_eq(a1->hits, 4);   /* anonymous counts as a hit */
    ck_assert_int_eq(a1->nusers, 2); /* ...but not as a visitor */
    ck_assert_int_eq(find_host_day(&b, "a.com", 2)->hits, 1);
    ck_assert_int_eq(find_host_day(&b, "b.com", 1)->nusers, 1);

    /* user 1 on device 10: days 1 and 2 in one mask; device 11 separate. */
    ck_assert_int_eq(b.n_uds, 3);
    bool seen10 = false;
    for (size_t i = 0; i < b.n_uds; i++)
        if (b.uds[i].user_id == 1 && b.uds[i].device_id == 10) {
            ck_assert_uint_eq(b.uds[i].mask, 0x3);
            ck_assert_int_eq(b.uds[i].month, month_index(2023, 1));
            seen10 = true;
        }
    ck_assert(seen10);

    /* Every delta is on exactly one group list. */
    size_t listed = 0;
    for (int g = 0; g < KEY_GROUPS; g++)
        for (uint32_t i = b.host_head[g]; i != BATCH_NONE; i = b.host_days[i].next) {
            const host_day_delta *hd = &b.host_days[i];
            ck_assert_uint_eq(group_of_host(batch_str(&b, hd->host_off), hd->host_len),
                              (uint32_t)g);
            listed++;
        }
    ck_assert_int_eq(listed, 3);

    batch_reset(&b);
    ck_assert_int_eq(b.n_host_days, 0);
    for (int g = 0; g < KEY_GROUPS; g++)
        ck_assert(batch_group_empty(&b, (uint32_t)g));
    batch_free(&b);
}
END_TEST

START_TEST(skips_parts_behind_fences)
{
    batch b;
    batch_init(&b);
    web_event ev = event("a.com", 7, true, 10, 31, 23);
    ck_assert_int_eq(batch_add_event(&b, &ev, false, true), 0);
    ck_assert_int_eq(b.n_host_days, 0);
    ck_assert_int_eq(b.n_uds, 1);
    ck_assert_uint_eq(b.uds[0].mask, 1u << 30);
    ck_assert_int_eq(batch_add_event(&b, &ev, true, false), 0);
    ck_assert_int_eq(b.n_host_days, 1);
    ck_assert_int_eq(b.n_uds, 1);
    /* No device id: the user counts (users_cumulated), as a device of its
     * own, distinct from a device whose id is 0. */
    web_event nodev = event("a.com", 8, true, 0, 3, 0);
    nodev.device_id.present = false;
    ck_assert_int_eq(batch_add_event(&b, &nodev, true, true), 0);
    ck_assert_int_eq(b.n_uds, 2);
    ck_assert(b.uds[1].device_null);
    ck_assert_uint_eq(b.uds[1].mask, 1u << 2);
    web_event dev0 = event("a.com", 8, true, 0, 4, 0);
    ck_assert_int_eq(batch_add_event(&b, &dev0, true, true), 0);
    ck_assert_int_eq(b.n_uds, 3);
    ck_assert(!b.uds[2].device_null);
    ck_assert_int_eq(batch_add_event(&b, &nodev, true, true), 0);
    ck_assert_int_eq(b.n_uds, 3);
    batch_free(&b);
}
END_TEST

START_TEST(many_keys_grow_maps)
{
    batch b;
    batch_init(&b);
    char host[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(host, sizeof host, "h%d.example", i % 3000);
        web_event ev = event(host, i, true, i % 50, 1 + i % 28, i % 24);
        ck_assert_int_eq(batch_add_event(&b, &ev, true, true), 0);
    }
    uint64_t hits = 0, users = 0;
    for (size_t i = 0; i < b.n_host_days; i++) {
        hits += b.host_days[i].hits;
        users += b.host_days[i].nusers;
    }
    ck_assert_uint_eq(hits, 20000);
    ck_assert_uint_eq(users, 20000); /* every user id is distinct */
    batch_free(&b);
}
END_TEST

/* A batch is sized by its folded state: records whose keys are in already
 * add nothing to batch_bytes, new keys do, and batch_release gives the
 * capacity a reset keeps back. */
START_TEST(bytes_count_distinct_keys_not_records)
{
    batch b;
    batch_init(&b);
    web_event ev = event("a.com", 1, true, 10, 1, 0);
    ck_assert_int_eq(batch_add_event(&b, &ev, true, true), 0);
    size_t one = batch_bytes(&b);
    ck_assert_uint_gt(one, 0);
    for (int i = 0; i < 10000; i++) {
        ev = event("a.com", 1, true, 10, 1, i % 24);
        ck_assert_int_eq(batch_add_event(&b, &ev, true, true), 0);
    }
    ck_assert_uint_eq(batch_bytes(&b), one); /* 10,000 repeats: the same state */
    ck_assert_uint_eq(b.host_days[0].hits, 10001);
    char host[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(host, sizeof host, "h%d.example", i % 500);
        ev = event(host, 1000 + i, true, i, 1 + i % 28, 0);
        ck_assert_int_eq(batch_add_event(&b, &ev, true, true), 0);
    }
    /* Each new (host-day, user) pair and (user, device, month) costs its
     * deltas, key bytes and two 16-byte slots per map entry. */
    size_t many = batch_bytes(&b);
    ck_assert_uint_gt(many, one + 50000 * (16 + 12 + 2 * 16 + 32 + 20 + 2 * 16));
    /* The arrays and maps allocated hold it, and at most about twice it
     * (plus the maps' first tables) */
    size_t cap = batch_capacity(&b);
    ck_assert_uint_ge(cap, many);
    ck_assert_uint_le(cap, 2 * many + 6 * (65536 + 1024 * sizeof(bytes_map_slot)));
    batch_reset(&b);
    ck_assert_uint_eq(batch_bytes(&b), 0);
    ck_assert_uint_eq(batch_capacity(&b), cap); /* a reset keeps the memory */
    batch_release(&b);
    ck_assert_uint_lt(batch_capacity(&b), cap / 10);
    ev = event("a.com", 1, true, 10, 1, 0); /* and the batch still works */
    ck_assert_int_eq(batch_add_event(&b, &ev, true, true), 0);
    ck_assert_uint_eq(batch_bytes(&b), one);
    batch_free(&b);
}
END_TEST

START_TEST(device_values)
{
    device_record d = {.device_id = 5,
                       .browser_type = {"Fire:fox,=", 10, true},
                       .os_type = {0},
                       .device_type = {"", 0, true},
                       .updated_at_ms = {1672531200000LL, true}};
    char buf[128];
    size_t n = device_value_encode(&d, buf, sizeof buf);
    ck_assert_str_eq(buf, "10:Fire:fox,=-0:13:1672531200000");
    ck_assert_uint_eq(n, strlen(buf));
    device_record back;
    ck_assert(device_value_decode(buf, n, &back));
    ck_assert(back.browser_type.present && back.browser_type.len == 10);
    ck_assert(memcmp(back.browser_type.ptr, "Fire:fox,=", 10) == 0);
    ck_assert(!back.os_type.present);
    ck_assert(back.device_type.present && back.device_type.len == 0);
    ck_assert(back.updated_at_ms.present && back.updated_at_ms.value == 1672531200000LL);
    ck_assert(!device_value_decode("10:short", 8, &back));
    ck_assert(!device_value_decode("--", 2, &back));
    /* Too small a buffer reports the size needed. */
    char tiny[4];
    ck_assert_uint_eq(device_value_encode(&d, tiny, sizeof tiny), n);
}
END_TEST

Suite *suite_batch(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, folds_hits_and_distinct_users);
    tcase_add_test(tc, skips_parts_behind_fences);
    tcase_add_test(tc, many_keys_grow_maps);
    tcase_add_test(tc, bytes_count_distinct_keys_not_records);
    tcase_add_test(tc, device_values);
    suite_add_tcase(s, tc);
    return s;
}
