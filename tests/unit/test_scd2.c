/*
 * test_scd2.c — the flush side of the SCD2 dimensions that needs no
 * database: tracked-attribute configuration, the merge SQL expanded from
 * its template, and staging rows from a Redis buffer reply. (The merge's
 * results are checked against plain SQL on the real stack:
 * tests/integration/test_scd2.sh.)
 */
#include "processors/flush_plan.h"
#include "sinks/scd2.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

START_TEST(tracking_configuration)
{
    scd2_config c;
    scd2_config_defaults(&c);
    char buf[256];
    scd2_config_format(&c, DIM_DEVICES, buf, sizeof buf);
    ck_assert_str_eq(buf, "browser_type,os_type,device_type");
    errbuf err = {{0}};
    ck_assert_int_eq(scd2_config_parse(&c, DIM_USERS, " street, city ,zip", &err), 0);
    scd2_config_format(&c, DIM_USERS, buf, sizeof buf);
    ck_assert_str_eq(buf, "street,city,zip");
    ck_assert_int_eq(scd2_config_parse(&c, DIM_USERS, "city,planet", &err), -1);
    ck_assert_msg(strstr(err.msg, "no attribute 'planet'") && strstr(err.msg, "contact_value"),
                  "%s", err.msg);
    scd2_config_format(&c, DIM_USERS, buf, sizeof buf); /* unchanged by the failure */
    ck_assert_str_eq(buf, "street,city,zip");
    ck_assert_int_eq(scd2_config_parse(&c, DIM_USERS, ",", &err), -1);
    ck_assert_int_eq(scd2_config_parse(&c, DIM_USERS, "all", &err), 0);
    ck_assert(c.tracked[DIM_USERS][PROFILE_CONTACT_VALUE]);
}
END_TEST

START_TEST(merge_sql_from_template)
{
    scd2_config c;
    scd2_config_defaults(&c);
    errbuf err = {{0}};
    ck_assert_int_eq(scd2_config_parse(&c, DIM_USERS, "last_name,city", &err), 0);
    strbuf sql = {0};
    ck_assert_msg(scd2_apply_sql(&c, DIM_USERS, &sql, &err) == 0, "%s", err.msg);
    ck_assert_ptr_null(strstr(sql.data, "{{"));
    ck_assert_ptr_null(strstr(sql.data, "==== stage"));
    /* The hash covers the tracked attributes only; type 1 ones come from
     * the latest change. */
    ck_assert_ptr_nonnull(strstr(sql.data, "ROW(is_tombstone, last_name, city)"));
    ck_assert_ptr_nonnull(strstr(sql.data, "md5(ROW(v.last_name, v.city)::text)"));
    ck_assert_ptr_nonnull(strstr(sql.data, "ARRAY['last_name', 'city']::text[]"));
    ck_assert_ptr_nonnull(strstr(sql.data, "l.first_name, v.last_name, l.title"));
    ck_assert_ptr_nonnull(strstr(sql.data, "INSERT INTO dim_users_changes"));
    strbuf_free(&sql);

    ck_assert_int_eq(scd2_apply_sql(&c, DIM_DEVICES, &sql, &err), 0);
    ck_assert_ptr_nonnull(
        strstr(sql.data, "md5(ROW(v.browser_type, v.os_type, v.device_type)::text)"));
    ck_assert_ptr_null(strstr(sql.data, "user"));
    strbuf_free(&sql);

    ck_assert_int_eq(scd2_stage_sql(&sql, &err), 0);
    ck_assert_ptr_nonnull(strstr(sql.data, "CREATE TEMP TABLE IF NOT EXISTS stage_dim_devices"));
    ck_assert_ptr_nonnull(strstr(sql.data, "CREATE TEMP TABLE IF NOT EXISTS stage_dim_users"));
    ck_assert_ptr_null(strstr(sql.data, "INSERT"));
    strbuf_free(&sql);
}
END_TEST

START_TEST(staging_rows_from_buffer)
{
    const char *pairs[][2] = {
        {"d-7", "5:8:V3:a\tb--1672531200000:1:T"},
        {"u9", "1:11:V----------"},
        {"zz", "1:1:T"},    /* not a field of ours: skipped */
        {"d8", "1:4:Vxyz"}, /* malformed payload: skipped */
    };
    redis_str v[8];
    for (int i = 0; i < 4; i++) {
        v[2 * i] = (redis_str){pairs[i][0], strlen(pairs[i][0])};
        v[2 * i + 1] = (redis_str){pairs[i][1], strlen(pairs[i][1])};
    }
    redis_strings top = {v, 8, NULL};
    strbuf rows[DIM_COUNT] = {{0}};
    size_t counts[DIM_COUNT] = {0};
    dim_change *changes = NULL;
    size_t n = 0, cap = 0;
    ck_assert_int_eq(flush_plan_dims_from_buffer(&top, &changes, &n, &cap, counts), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(scd2_encode_row(&rows[changes[i].kind], &changes[i]), 0);
    free(changes);
    ck_assert_uint_eq(counts[DIM_DEVICES], 2);
    ck_assert_uint_eq(counts[DIM_USERS], 1);
    ck_assert_str_eq(rows[DIM_DEVICES].data,
                     "-7\t5\tf\ta\\tb\t\\N\t\\N\n-7\t1672531200000\tt\t\\N\t\\N\t\\N\n");
    ck_assert_str_eq(rows[DIM_USERS].data,
                     "9\t1\tf\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n");
    for (int k = 0; k < DIM_COUNT; k++)
        strbuf_free(&rows[k]);
}
END_TEST

Suite *suite_scd2(void)
{
    Suite *s = suite_create("scd2");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, tracking_configuration);
    tcase_add_test(tc, merge_sql_from_template);
    tcase_add_test(tc, staging_rows_from_buffer);
    suite_add_tcase(s, tc);
    return s;
}
