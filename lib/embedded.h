/*
 * embedded.h — project files compiled into the binary.
 *
 * The Makefile turns the schema files (.avsc), Redis scripts (.lua) and the
 * sink DDL into byte arrays
 * (scripts/embed.sh → build/gen/embedded.c), so the binary carries exactly
 * the schemas and Redis scripts it was built with and needs no install path.
 */
#ifndef ACTIVITY_EMBEDDED_H
#define ACTIVITY_EMBEDDED_H

#include <stddef.h>

/* By repository path, e.g. "schemas/web_event.avsc"; NULL if not embedded. */
const char *embedded_file(const char *path, size_t *len);

#endif
