/*
 * validate.h — checks a decoded record must pass before it touches state.
 *
 * A record that decodes but would corrupt a table (no host, a timestamp in
 * year 40000, bytes PostgreSQL text cannot hold) is a dead letter, not an
 * event. The reason names go into the dead-letter headers.
 */
#ifndef ACTIVITY_VALIDATE_H
#define ACTIVITY_VALIDATE_H

#include "consumers/records.h"
#include "lib/log.h"
#include "lib/utf8.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t min_event_time_ms; /* inclusive */
    int64_t max_event_time_ms; /* exclusive */
    size_t max_field_bytes;
    /* Strings that become part of a sink table's unique key (host,
     * browser_type) must fit in one PostgreSQL btree index entry, or every
     * flush holding them would fail: they have a lower limit of their own. */
    size_t max_key_bytes;
} validation_rules;

/* The largest --max-key-bytes: a btree entry holds at most 2704 bytes, of
 * which the key's other columns and headers take at most 40. */
#define VALIDATION_KEY_BYTES_CEILING 2600

/* Defaults: event_time in [1970-01-01, 2100-01-01), fields up to 4096
 * bytes, key strings up to 2048 bytes. */
void validation_defaults(validation_rules *r);

/* Parses a flag's time: "YYYY-MM-DD" (UTC midnight), "YYYY-MM-DDTHH:MM:SS"
 * (UTC) or milliseconds since the epoch. Returns 0, or -1. */
int validation_parse_time(const char *s, int64_t *ms);

/* Checks the rules themselves: event times must stay within years
 * 0001..9999, because months are written as six digits (YYYYMM) in Redis
 * keys and dirty markers. Returns 0, or -1 with err set. */
int validation_rules_check(const validation_rules *r, errbuf *err);

/* NULL when valid, else a short reason name; detail gets the specifics. */
const char *validate_event(const validation_rules *r, const web_event *ev, errbuf *detail);
const char *validate_device(const validation_rules *r, const device_record *dev, errbuf *detail);
const char *validate_profile(const validation_rules *r, const profile_record *p, errbuf *detail);

#endif
