/*
 * unit.h — the check suites of the unit test binary. Each tests/unit/
 * test_<module>.c defines one suite_<module>() listed here and in
 * test_main.c.
 */
#ifndef ACTIVITY_UNIT_H
#define ACTIVITY_UNIT_H

#include <check.h>

Suite *suite_civil_time(void);
Suite *suite_avro_codec(void);
Suite *suite_batch(void);
Suite *suite_rows(void);
Suite *suite_csv(void);
Suite *suite_text_records(void);
Suite *suite_dims(void);
Suite *suite_scd2(void);
Suite *suite_schema_registry(void);
Suite *suite_validate(void);
Suite *suite_dlq(void);
Suite *suite_metrics(void);
Suite *suite_config(void);
Suite *suite_report(void);
Suite *suite_hll(void);

#endif
