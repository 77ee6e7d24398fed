/*
 * schema_registry.h — a client of the Confluent Schema Registry REST API
 * (also served by Karapace, Apicurio's ccompat API, Redpanda).
 *
 * Two calls: GET /schemas/ids/{id} (the writer schema of a framed record)
 * and POST /subjects/{subject}/versions (register a schema, get its id).
 * The client owns one libcurl handle (connections are kept alive), the
 * base URL and the credentials. It caches nothing itself: the Avro codec
 * caches parsed schemas by id (ids are immutable in a registry).
 *
 * Failures are split the way a consumer must treat them: NOT_FOUND (the
 * registry answered, the id does not exist: the record is a dead letter)
 * versus UNAVAILABLE (network error, timeout, 5xx or 429 after every retry:
 * nothing is known about the record, so it must not be dead-lettered).
 * Retries back off exponentially from 100 ms, capped at 2 s.
 */
#ifndef ACTIVITY_SCHEMA_REGISTRY_H
#define ACTIVITY_SCHEMA_REGISTRY_H

#include "lib/log.h"

#include <stdint.h>

typedef struct schema_registry schema_registry;

typedef struct {
    const char *url;       /* base URL, e.g. http://127.0.0.1:18081 (user:pass@ allowed) */
    const char *user_info; /* "user:password" for basic auth, or NULL */
    long timeout_ms;       /* per request (default 5000) */
    int retries;           /* further attempts after a failure (default 4) */
} registry_options;

/* Fills the defaults: no registry (url NULL), 5 s timeout, 4 retries. The
 * URL and credentials come from the options, which also read
 * ACTIVITY_SCHEMA_REGISTRY[_URL] and ACTIVITY_SCHEMA_REGISTRY_USER_INFO
 * (lib/config.h). */
void registry_options_defaults(registry_options *o);

schema_registry *schema_registry_new(const registry_options *o, errbuf *err);
void schema_registry_free(schema_registry *r);

enum registry_status {
    REGISTRY_OK = 0,
    REGISTRY_NOT_FOUND,   /* 404: no such id / subject */
    REGISTRY_UNAVAILABLE, /* network, timeout, 5xx, 429: retried, still failing */
    REGISTRY_REFUSED,     /* another 4xx (auth, incompatible schema, bad request) */
    REGISTRY_BAD_REPLY,   /* 2xx with a body we cannot read */
    REGISTRY_NOT_AVRO,    /* the id names a schema of another type (Protobuf, JSON) */
};

/* The schema text of an id (*schema is malloc'd, caller frees). Only Avro
 * schemas are accepted: another schemaType is REGISTRY_NOT_AVRO. */
enum registry_status schema_registry_get(schema_registry *r, uint32_t id, char **schema,
                                         errbuf *err);

/* Registers schema under subject (idempotent in the registry: the same
 * schema gets the same id back). */
enum registry_status schema_registry_register(schema_registry *r, const char *subject,
                                              const char *schema, uint32_t *id, errbuf *err);

/* Requests sent (including retries), for tests and stats. */
unsigned long schema_registry_requests(const schema_registry *r);

#endif
