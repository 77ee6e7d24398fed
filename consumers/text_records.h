/*
 * text_records.h — CSV records and JSON objects into web_event / device_record.
 *
 * Owns: the text forms of our record types (the column and key names, what
 * counts as null, how integers and timestamps are written) and their
 * validation, so `activity load` and the tests agree on one definition.
 * Every rejection comes back as a sentence naming the field and the value.
 *
 * Event columns / keys: url, referrer, user_id, device_id, host, event_time.
 * Device columns / keys: device_id, browser_type, os_type, device_type and
 * optionally updated_at and deleted.
 * User profile columns: user_id, first_name, last_name, title, street, city,
 * state, country, zip, contact_type, contact_value and optionally
 * updated_at and deleted; as JSON keys: user_id, name {first, last, title},
 * address {street, city, state, country, zip}, contact {type, value},
 * updated_at, deleted (the nested Avro record's shape; a missing object or
 * key is null). A CSV header may list them in any order, with extra
 * columns (ignored); names match case-insensitively, ignoring surrounding
 * blanks and a UTF-8 byte-order mark.
 *
 * Values:
 *   - user_id, device_id: a decimal int64 (optional leading '-'); an empty
 *     field means null (absent) — except a device record's device_id, which
 *     is required. JSON also takes integers, numeric strings and null.
 *   - event_time, updated_at: "YYYY-MM-DD HH:MM:SS[.fraction]" UTC (see
 *     parse_utc_timestamp); JSON also takes an integer of epoch milliseconds.
 *   - host: required and non-empty.
 *   - url, referrer: an empty unquoted CSV field is null, a quoted "" is the
 *     empty string (as in PostgreSQL's CSV format); JSON null or a missing
 *     key is null.
 *   - browser_type, os_type, device_type and the profile's text fields:
 *     empty (quoted or not) is null.
 *   - deleted: true/false, t/f, yes/no, 1/0 (any case), empty is false; JSON
 *     also takes booleans and null. A deleted record is produced as a
 *     tombstone: only its key and updated_at count.
 *   - text must be valid UTF-8 without NUL bytes: Avro strings are UTF-8 and
 *     the PostgreSQL sink could not store anything else.
 *
 * Converted records borrow their strings from the csv_record or json_t they
 * came from.
 */
#ifndef ACTIVITY_TEXT_RECORDS_H
#define ACTIVITY_TEXT_RECORDS_H

#include "consumers/csv_reader.h"
#include "consumers/records.h"
#include "lib/log.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define TEXT_MAX_FIELDS 13

/* Where each field of a record type sits in a CSV header. */
typedef struct {
    enum record_kind kind;
    int col[TEXT_MAX_FIELDS]; /* column index, -1 for an optional column that is absent */
    size_t ncols;             /* header width: every record must have exactly this many */
} text_csv_header;

/* "web_event", "device" or "user_profile" (the --schema values) → kind. Returns 0, or -1
 * with err naming the accepted values. */
int text_kind_from_name(const char *name, enum record_kind *kind, errbuf *err);
/* The --schema name of a kind ("web_event", "device", "user_profile"),
 * "unknown" otherwise. */
const char *text_kind_name(enum record_kind kind);

/* Recognises the record type: host and event_time → web event; device_id
 * and browser_type → device; user_id and first_name (CSV) or name (JSON) →
 * user profile; RECORD_NONE otherwise. */
enum record_kind text_kind_from_csv_header(const csv_record *header);
enum record_kind text_kind_from_json(const json_t *obj);

/* Maps a header for kind. Returns 0, or -1 with err naming a missing or
 * repeated column. */
int text_csv_header_init(text_csv_header *h, enum record_kind kind, const csv_record *header,
                         errbuf *err);

/* Return 0, or -1 with err saying which field is wrong and why. */
int text_event_from_csv(const text_csv_header *h, const csv_record *rec, web_event *ev,
                        errbuf *err);
int text_device_from_csv(const text_csv_header *h, const csv_record *rec, device_record *dev,
                         errbuf *err);
int text_event_from_json(const json_t *obj, web_event *ev, errbuf *err);
int text_device_from_json(const json_t *obj, device_record *dev, errbuf *err);
int text_profile_from_csv(const text_csv_header *h, const csv_record *rec, profile_record *p,
                          errbuf *err);
int text_profile_from_json(const json_t *obj, profile_record *p, errbuf *err);

/* Strict decimal int64: optional '-', at least one digit, nothing else. */
bool text_parse_int64(const char *s, size_t len, int64_t *out);

#endif
