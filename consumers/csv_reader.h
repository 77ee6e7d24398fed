/*
 * csv_reader.h — a streaming RFC 4180 CSV reader over a FILE * or a buffer.
 *
 * Owns: the input buffer, the decoded field text and the field array of the
 * record being read. `activity load` feeds millions of lines through it, so
 * nothing is allocated per record or per field once the buffers have grown
 * to the largest record seen; fields point into reader-owned memory that is
 * valid until the next csv_reader_next() call.
 *
 * Accepted syntax (RFC 4180, plus what real exports contain):
 *   - fields separated by ',', records ended by LF, CRLF or a lone CR, and
 *     the last record may lack a line ending;
 *   - a field that starts with '"' is quoted: it may hold ',', CR and LF,
 *     and '""' inside it is one '"'; a '"' inside an unquoted field is data;
 *   - blank lines (nothing between two line endings) are skipped, they are
 *     no record; a line holding only '""' is a record of one empty field.
 * Every field is also NUL-terminated (its own NUL bytes, if any, are kept
 * and counted in len), and says whether it was quoted, so callers can tell
 * an empty quoted string ("") from an empty unquoted field (null).
 *
 * Malformed records are reported and skipped, never fatal: after
 * CSV_BAD_RECORD the next call resumes with the following record.
 *   - garbage after a closing quote ("ab"x): the rest of that line is
 *     skipped;
 *   - an unterminated quote (end of input, or more than max_record bytes,
 *     inside a quoted field): reading resumes on the line after the one
 *     where the quote opened, so one stray quote costs one record, not the
 *     rest of the file.
 */
#ifndef ACTIVITY_CSV_READER_H
#define ACTIVITY_CSV_READER_H

#include "lib/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *ptr; /* NUL-terminated; reader-owned */
    size_t len;
    bool quoted;
} csv_field;

typedef struct {
    const csv_field *fields;
    size_t nfields;
    long line; /* 1-based line on which the record starts */
} csv_record;

enum csv_status {
    CSV_OK = 0,     /* *rec holds a record */
    CSV_EOF,        /* no more records */
    CSV_BAD_RECORD, /* malformed record skipped: rec->line and err say where and why */
    CSV_IO_ERROR,   /* read error or out of memory: err says which; stop reading */
};

/* Default limit on one record's raw size; a quoted field still open after
 * this many bytes is taken to be an unterminated quote. */
#define CSV_DEFAULT_MAX_RECORD (1u << 20)

typedef struct csv_reader csv_reader;

/* Reads from f (not closed by the reader). NULL when out of memory. */
csv_reader *csv_reader_from_file(FILE *f);
/* Reads buf[0..len), which must outlive the reader. */
csv_reader *csv_reader_from_buffer(const char *buf, size_t len);
void csv_reader_free(csv_reader *r);

/* Changes the per-record size limit (bytes of raw input). */
void csv_reader_set_max_record(csv_reader *r, size_t max_bytes);

enum csv_status csv_reader_next(csv_reader *r, csv_record *rec, errbuf *err);

#endif
