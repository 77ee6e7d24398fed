/*
 * avro_flatten.c — nested record fields as flat fields (see avro_flatten.h).
 */
#include "consumers/avro_flatten.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 8

/* Whether a schema names type (short or full name) where a type goes: a
 * "type", "items" or "values" member, or a union's branch. */
static bool names_type(json_t *j, const char *name, const char *full, int depth)
{
    if (depth > 64)
        return true; /* too deep to tell: do not flatten */
    if (json_is_string(j))
        return strcmp(json_string_value(j), name) == 0 ||
               (full && strcmp(json_string_value(j), full) == 0);
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if (names_type(json_array_get(j, i), name, full, depth + 1))
                return true;
        return false;
    }
    if (!json_is_object(j))
        return false;
    static const char *const keys[] = {"type", "items", "values"};
    for (size_t k = 0; k < 3; k++) {
        json_t *v = json_object_get(j, keys[k]);
        if (v && names_type(v, name, full, depth + 1))
            return true;
    }
    json_t *fields = json_object_get(j, "fields");
    for (size_t i = 0; json_is_array(fields) && i < json_array_size(fields); i++)
        if (names_type(json_array_get(fields, i), name, full, depth + 1))
            return true;
    return false;
}

/* The inline record schema a field's type is, or NULL; also NULL when the
 * record's name is used as a type anywhere in the schema (doc): flattening
 * would leave that reference dangling. */
static json_t *inline_record(json_t *type, json_t *doc)
{
    if (!json_is_object(type))
        return NULL;
    json_t *t = json_object_get(type, "type");
    if (!json_is_string(t) || strcmp(json_string_value(t), "record") != 0)
        return NULL;
    if (!json_is_array(json_object_get(type, "fields")))
        return NULL;
    json_t *name = json_object_get(type, "name"), *ns = json_object_get(type, "namespace");
    if (json_is_string(name) && doc) {
        char full[512];
        snprintf(full, sizeof full, "%s.%s", json_is_string(ns) ? json_string_value(ns) : "",
                 json_string_value(name));
        if (names_type(doc, json_string_value(name), json_is_string(ns) ? full : NULL, 0))
            return NULL;
    }
    return type;
}

/* Appends record's fields to out, each named prefix + name, expanding
 * inline record fields in place. */
static int flatten_fields(json_t *record, const char *prefix, json_t *out, json_t *doc, int depth,
                          errbuf *err)
{
    if (depth > MAX_NESTING) {
        err_set(err, "records nest deeper than %d levels", MAX_NESTING);
        return -1;
    }
    json_t *fields = json_object_get(record, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        json_t *name = json_object_get(f, "name");
        if (!json_is_object(f) || !json_is_string(name)) {
            err_set(err, "a record field has no name");
            return -1;
        }
        char full[512];
        int n = snprintf(full, sizeof full, "%s%s", prefix, json_string_value(name));
        if (n < 0 || (size_t)n >= sizeof full) {
            err_set(err, "field name too long");
            return -1;
        }
        json_t *sub = inline_record(json_object_get(f, "type"), doc);
        if (sub) {
            char inner[520];
            snprintf(inner, sizeof inner, "%s_", full);
            if (flatten_fields(sub, inner, out, doc, depth + 1, err))
                return -1;
            continue;
        }
        json_t *copy = json_deep_copy(f);
        if (!copy || json_object_set_new(copy, "name", json_string(full)) ||
            json_array_append_new(out, copy)) {
            json_decref(copy);
            err_set(err, "out of memory");
            return -1;
        }
        if (*prefix)
            json_object_del(copy, "aliases"); /* they named the unprefixed field */
    }
    return 0;
}

char *avro_flatten(const char *json, size_t len, size_t *out_len, errbuf *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (!root) {
        err_set(err, "schema is not JSON: %s", jerr.text);
        return NULL;
    }
    char *text = NULL;
    if (inline_record(root, NULL)) {
        json_t *flat = json_array();
        if (!flat || flatten_fields(root, "", flat, root, 0, err)) {
            json_decref(flat); /* not yet owned by root */
            json_decref(root);
            return NULL;
        }
        if (json_object_set_new(root, "fields", flat)) { /* takes flat either way */
            json_decref(root);
            return NULL;
        }
    }
    text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    if (!text) {
        err_set(err, "out of memory");
        return NULL;
    }
    *out_len = strlen(text);
    return text;
}
