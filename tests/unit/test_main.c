/*
 * test_main.c — runs every unit suite; exit status is the failure count.
 */
#include "tests/unit/unit.h"

#include <stdlib.h>

int main(void)
{
    SRunner *sr = srunner_create(suite_civil_time());
    srunner_add_suite(sr, suite_avro_codec());
    srunner_add_suite(sr, suite_batch());
    srunner_add_suite(sr, suite_rows());
    srunner_add_suite(sr, suite_csv());
    srunner_add_suite(sr, suite_text_records());
    srunner_add_suite(sr, suite_dims());
    srunner_add_suite(sr, suite_scd2());
    srunner_add_suite(sr, suite_schema_registry());
    srunner_add_suite(sr, suite_metrics());
    srunner_add_suite(sr, suite_config());
    srunner_add_suite(sr, suite_validate());
    srunner_add_suite(sr, suite_dlq());
    srunner_add_suite(sr, suite_report());
    srunner_add_suite(sr, suite_hll());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
