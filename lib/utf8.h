/*
 * utf8.h — whether bytes are text a PostgreSQL UTF8 column accepts.
 *
 * Both the record validation (processors/validate.h) and the CSV loader
 * (consumers/text_records.h) reject such bytes before they reach a table,
 * so the check sits below both.
 */
#ifndef ACTIVITY_UTF8_H
#define ACTIVITY_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool utf8_valid(const char *s, size_t len);

#endif
