/*
 * test_dims.c — dimension changes end to end up to Redis: their text forms
 * (payloads, entries, buffer fields), the batch's per-entity folding, user
 * profiles from CSV / nested JSON (with tombstones) and through Avro
 * (encoded nested, read flat), and their validation.
 */
#include "consumers/avro_codec.h"
#include "consumers/avro_flatten.h"
#include "consumers/text_records.h"
#include "processors/batch.h"
#include "processors/dims.h"
#include "processors/validate.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

static opt_str S(const char *s)
{
    return (opt_str){s, strlen(s), true};
}

static bool str_eq(opt_str a, const char *b)
{
    return a.present && a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

START_TEST(payload_round_trip)
{
    dim_change c = {.kind = DIM_DEVICES, .id = -5, .updated_at_ms = 1};
    c.attrs[0] = S("Chrome");
    c.attrs[1] = (opt_str){0};
    c.attrs[2] = (opt_str){"a:b\0-c", 6, true}; /* any byte, even ':' and NUL */
    char buf[128];
    size_t n = dim_payload_encode(&c, buf, sizeof buf);
    ck_assert_uint_eq(n, strlen("V6:Chrome-6:") + 6);
    ck_assert(memcmp(buf, "V6:Chrome-6:a:b", 15) == 0);
    /* Too small a buffer: the size needed comes back, nothing overflows. */
    char tiny[4];
    ck_assert_uint_eq(dim_payload_encode(&c, tiny, sizeof tiny), n);

    dim_change d = {.kind = DIM_DEVICES};
    ck_assert(dim_payload_decode(DIM_DEVICES, buf, n, &d));
    ck_assert(!d.tombstone);
    ck_assert(str_eq(d.attrs[0], "Chrome"));
    ck_assert(!d.attrs[1].present);
    ck_assert(d.attrs[2].len == 6 && memcmp(d.attrs[2].ptr, "a:b\0-c", 6) == 0);

    ck_assert(dim_payload_decode(DIM_DEVICES, "T", 1, &d) && d.tombstone);
    ck_assert(!dim_payload_decode(DIM_DEVICES, buf, n - 1, &d)); /* truncated */
    ck_assert(!dim_payload_decode(DIM_DEVICES, "V---x", 5, &d)); /* trailing */
    ck_assert(!dim_payload_decode(DIM_DEVICES, "V99:ab--", 8, &d));
    ck_assert(!dim_payload_decode(DIM_USERS, "V---", 4, &d)); /* users have 10 */
    ck_assert(!dim_payload_decode(DIM_DEVICES, "", 0, &d));
}
END_TEST

START_TEST(entries_and_fields)
{
    char buf[256];
    size_t n = dim_entry_encode(-3, "T", 1, buf, sizeof buf);
    n += dim_entry_encode(1672531200000LL, "V---", 4, buf + n, sizeof buf - n);
    ck_assert(memcmp(buf, "-3:1:T1672531200000:4:V---", n) == 0);
    size_t pos = 0;
    dim_entry e;
    ck_assert_int_eq(dim_entries_next(buf, n, &pos, &e), 1);
    ck_assert(e.updated_at_ms == -3 && e.payload_len == 1 && e.payload[0] == 'T');
    ck_assert_int_eq(dim_entries_next(buf, n, &pos, &e), 1);
    ck_assert(e.updated_at_ms == 1672531200000LL && e.payload_len == 4);
    ck_assert_int_eq(dim_entries_next(buf, n, &pos, &e), 0);
    pos = 0;
    ck_assert_int_eq(dim_entries_next("12:9:V", 6, &pos, &e), -1);
    pos = 0;
    ck_assert_int_eq(dim_entries_next("99999999999999999999:1:T", 24, &pos, &e), -1);

    enum dim_kind k;
    int64_t id;
    ck_assert_uint_eq(dim_field(DIM_USERS, INT64_MIN, buf, sizeof buf), 21);
    ck_assert_str_eq(buf, "u-9223372036854775808");
    ck_assert(dim_field_parse(buf, strlen(buf), &k, &id) && k == DIM_USERS && id == INT64_MIN);
    ck_assert(dim_field_parse("d42", 3, &k, &id) && k == DIM_DEVICES && id == 42);
    ck_assert(!dim_field_parse("x42", 3, &k, &id));
    ck_assert(!dim_field_parse("d", 1, &k, &id));
    ck_assert(!dim_field_parse("d4x", 3, &k, &id));
    ck_assert(!dim_field_parse("d9223372036854775808", 20, &k, &id));
}
END_TEST

typedef struct {
    char fields[8][32];
    char values[8][512];
    size_t lens[8];
    int n;
} collected;

static int collect(void *ctx, const char *field, size_t flen, const char *v, size_t vlen)
{
    collected *c = ctx;
    ck_assert_int_lt(c->n, 8);
    memcpy(c->fields[c->n], field, flen);
    c->fields[c->n][flen] = '\0';
    memcpy(c->values[c->n], v, vlen);
    c->lens[c->n++] = vlen;
    return 0;
}

START_TEST(batch_folds_changes_per_entity)
{
    batch b;
    batch_init(&b);
    device_record dev = {.device_id = 7, .browser_type = S("Firefox")};
    dim_change c;
    dim_change_from_device(&dev, 300, &c); /* no updated_at: the Kafka time */
    ck_assert(c.updated_at_ms == 300);
    ck_assert_int_eq(batch_add_dim(&b, &c), 0);
    dev.updated_at_ms = (opt_long){100, true};
    dim_change_from_device(&dev, 300, &c);
    ck_assert_int_eq(batch_add_dim(&b, &c), 0);
    ck_assert_int_eq(batch_add_dim(&b, &c), 0); /* an exact repeat folds */
    dim_change_tombstone(DIM_DEVICES, 7, 200, &c);
    ck_assert_int_eq(batch_add_dim(&b, &c), 0);
    dim_change_tombstone(DIM_USERS, 7, 50, &c); /* same id, other dimension */
    ck_assert_int_eq(batch_add_dim(&b, &c), 0);

    uint32_t gd = group_of_device(7), gu = group_of_user(7);
    ck_assert(!batch_group_empty(&b, gd));
    ck_assert_uint_eq(b.n_dim_changes, 4);
    collected got = {0};
    ck_assert_int_eq(batch_dim_fields(&b, gd, collect, &got), 0);
    if (gu != gd)
        ck_assert_int_eq(batch_dim_fields(&b, gu, collect, &got), 0);
    ck_assert_int_eq(got.n, 2);
    int d = strcmp(got.fields[0], "d7") == 0 ? 0 : 1;
    ck_assert_str_eq(got.fields[d], "d7");
    ck_assert_str_eq(got.fields[1 - d], "u7");
    /* Sorted by updated_at whatever the order they came in. */
    const char *want = "100:12:V7:Firefox--200:1:T300:12:V7:Firefox--";
    ck_assert_uint_eq(got.lens[d], strlen(want));
    ck_assert(memcmp(got.values[d], want, strlen(want)) == 0);
    ck_assert_uint_eq(batch_dim_entity_count(&b, gd), gu == gd ? 2 : 1);
    ck_assert_uint_eq(batch_dim_entity_count(NULL, gd), 0);

    batch_reset(&b);
    ck_assert(batch_group_empty(&b, gd));
    ck_assert_uint_eq(batch_dim_entity_count(&b, gd), 0);
    batch_free(&b);
}
END_TEST

START_TEST(batch_keeps_latest_device_state)
{
    batch b;
    batch_init(&b);
    device_record d = {.device_id = 9, .browser_type = S("Edge"), .updated_at_ms = {300, true}};
    ck_assert_int_eq(batch_add_device(&b, &d), 0);
    d.browser_type = S("Chrome"); /* older, arriving later: ignored */
    d.updated_at_ms = (opt_long){100, true};
    ck_assert_int_eq(batch_add_device(&b, &d), 0);
    ck_assert_uint_eq(b.n_devices, 1);
    device_record got;
    ck_assert(
        device_value_decode(batch_str(&b, b.devices[0].value_off), b.devices[0].value_len, &got));
    ck_assert(str_eq(got.browser_type, "Edge"));
    d.browser_type = S("Opera"); /* no updated_at: the latest record wins */
    d.updated_at_ms = (opt_long){0};
    ck_assert_int_eq(batch_add_device(&b, &d), 0);
    ck_assert(
        device_value_decode(batch_str(&b, b.devices[0].value_off), b.devices[0].value_len, &got));
    ck_assert(str_eq(got.browser_type, "Opera"));
    batch_free(&b);
}
END_TEST

static const char *const profile_header[] = {
    "user_id", "first_name", "last_name",    "title",         "street",     "city",   "state",
    "country", "zip",        "contact_type", "contact_value", "updated_at", "deleted"};

static csv_record record_of(csv_field *f, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        f[i] = (csv_field){.ptr = cells[i], .len = strlen(cells[i]), .quoted = false};
    return (csv_record){.fields = f, .nfields = n, .line = 1};
}

START_TEST(profile_from_csv)
{
    csv_field hf[13], rf[13];
    csv_record header = record_of(hf, profile_header, 13);
    ck_assert_int_eq(text_kind_from_csv_header(&header), RECORD_USER_PROFILE);
    text_csv_header h;
    errbuf err = {{0}};
    ck_assert_msg(text_csv_header_init(&h, RECORD_USER_PROFILE, &header, &err) == 0, "%s", err.msg);
    const char *cells[13] = {
        "42", "Ana",    "O'Brien", "",      "1 Main St, Apt 2", "São Paulo",
        "SP", "Brazil", "01000",   "email", "a@example.com",    "2023-03-01 10:00:00.5",
        "no"};
    csv_record rec = record_of(rf, cells, 13);
    profile_record p;
    ck_assert_msg(text_profile_from_csv(&h, &rec, &p, &err) == 0, "%s", err.msg);
    ck_assert(p.user_id == 42);
    ck_assert(str_eq(p.attrs[PROFILE_FIRST_NAME], "Ana"));
    ck_assert(!p.attrs[PROFILE_TITLE].present);
    ck_assert(str_eq(p.attrs[PROFILE_CITY], "São Paulo"));
    ck_assert(str_eq(p.attrs[PROFILE_CONTACT_VALUE], "a@example.com"));
    ck_assert(p.updated_at_ms.present && p.updated_at_ms.value == 1677664800500LL);
    ck_assert(!p.deleted);
    cells[12] = "TRUE";
    rec = record_of(rf, cells, 13);
    ck_assert_int_eq(text_profile_from_csv(&h, &rec, &p, &err), 0);
    ck_assert(p.deleted);
    cells[12] = "maybe";
    rec = record_of(rf, cells, 13);
    ck_assert_int_eq(text_profile_from_csv(&h, &rec, &p, &err), -1);
    ck_assert_msg(strstr(err.msg, "deleted 'maybe'") != NULL, "%s", err.msg);
    cells[12] = "";
    cells[0] = "";
    rec = record_of(rf, cells, 13);
    ck_assert_int_eq(text_profile_from_csv(&h, &rec, &p, &err), -1);
    ck_assert_msg(strstr(err.msg, "user_id") != NULL, "%s", err.msg);

    /* updated_at and deleted are optional columns; an attribute is not. */
    csv_record short_header = record_of(hf, profile_header, 11);
    ck_assert_int_eq(text_csv_header_init(&h, RECORD_USER_PROFILE, &short_header, &err), 0);
    csv_record no_zip = record_of(hf, profile_header, 8);
    ck_assert_int_eq(text_csv_header_init(&h, RECORD_USER_PROFILE, &no_zip, &err), -1);
    ck_assert_msg(strstr(err.msg, "no zip column") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(profile_from_nested_json)
{
    errbuf err = {{0}};
    json_error_t jerr;
    json_t *o = json_loads("{\"user_id\": \"7\", \"name\": {\"first\": \"Eve\", \"last\": null},"
                           " \"address\": {\"city\": \"Cork\", \"zip\": \"\"},"
                           " \"contact\": {\"type\": \"phone\", \"value\": \"+1\"},"
                           " \"updated_at\": 1672531200000}",
                           0, &jerr);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(text_kind_from_json(o), RECORD_USER_PROFILE);
    profile_record p;
    ck_assert_msg(text_profile_from_json(o, &p, &err) == 0, "%s", err.msg);
    ck_assert(p.user_id == 7);
    ck_assert(str_eq(p.attrs[PROFILE_FIRST_NAME], "Eve"));
    ck_assert(!p.attrs[PROFILE_LAST_NAME].present);
    ck_assert(!p.attrs[PROFILE_TITLE].present); /* a missing key is null */
    ck_assert(str_eq(p.attrs[PROFILE_CITY], "Cork"));
    ck_assert(!p.attrs[PROFILE_ZIP].present); /* empty is null */
    ck_assert(str_eq(p.attrs[PROFILE_CONTACT_TYPE], "phone"));
    ck_assert(p.updated_at_ms.value == 1672531200000LL && !p.deleted);
    json_decref(o);

    o = json_loads("{\"user_id\": 7, \"updated_at\": \"2023-01-02 00:00:00\", \"deleted\": true}",
                   0, &jerr);
    ck_assert_int_eq(text_profile_from_json(o, &p, &err), 0);
    ck_assert(p.deleted && !p.attrs[PROFILE_FIRST_NAME].present);
    json_decref(o);

    o = json_loads("{\"user_id\": 7, \"name\": \"Eve\"}", 0, &jerr);
    ck_assert_int_eq(text_profile_from_json(o, &p, &err), -1);
    ck_assert_msg(strstr(err.msg, "name must be an object") != NULL, "%s", err.msg);
    json_decref(o);
    o = json_loads("{\"user_id\": 7, \"name\": {\"first\": 5}}", 0, &jerr);
    ck_assert_int_eq(text_profile_from_json(o, &p, &err), -1);
    ck_assert_msg(strncmp(err.msg, "name.first must be a string", 27) == 0, "%s", err.msg);
    json_decref(o);
    o = json_loads("{\"user_id\": 7, \"deleted\": \"perhaps\"}", 0, &jerr);
    ck_assert_int_eq(text_profile_from_json(o, &p, &err), -1);
    json_decref(o);
}
END_TEST

START_TEST(device_deleted_flag)
{
    errbuf err = {{0}};
    json_error_t jerr;
    json_t *o = json_loads("{\"device_id\": 3, \"browser_type\": null, \"deleted\": 1}", 0, &jerr);
    device_record d;
    ck_assert_int_eq(text_device_from_json(o, &d, &err), 0);
    ck_assert(d.deleted && d.device_id == 3);
    json_decref(o);
}
END_TEST

START_TEST(profile_avro_nested_round_trip)
{
    errbuf err = {{0}};
    avro_codec *c = avro_codec_new(&err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    profile_record p = {.user_id = 9007199254740993LL};
    p.attrs[PROFILE_FIRST_NAME] = S("Zoë");
    p.attrs[PROFILE_STREET] = S("1 \"Q\" St,\n\\");
    p.attrs[PROFILE_CONTACT_VALUE] = S("x@y");
    p.updated_at_ms = (opt_long){1672531200123LL, true};
    const void *buf;
    size_t len;
    ck_assert_msg(avro_codec_encode_profile(c, &p, &buf, &len, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(((const unsigned char *)buf)[4], RECORD_USER_PROFILE);
    char *copy = malloc(len);
    memcpy(copy, buf, len);
    decoded_record rec;
    ck_assert_msg(avro_codec_decode(c, copy, len, RECORD_USER_PROFILE, &rec, &err) == DECODE_OK,
                  "%s", err.msg);
    ck_assert(rec.kind == RECORD_USER_PROFILE);
    ck_assert(rec.u.profile.user_id == 9007199254740993LL);
    ck_assert(str_eq(rec.u.profile.attrs[PROFILE_FIRST_NAME], "Zoë"));
    ck_assert(str_eq(rec.u.profile.attrs[PROFILE_STREET], "1 \"Q\" St,\n\\"));
    ck_assert(!rec.u.profile.attrs[PROFILE_CITY].present);
    ck_assert(str_eq(rec.u.profile.attrs[PROFILE_CONTACT_VALUE], "x@y"));
    ck_assert(rec.u.profile.updated_at_ms.value == 1672531200123LL);
    /* The writer's record name picks the reader when the topic does not. */
    ck_assert_int_eq(avro_codec_decode(c, copy, len, RECORD_NONE, &rec, &err), DECODE_OK);
    ck_assert(rec.kind == RECORD_USER_PROFILE);
    /* Not a device. */
    ck_assert_int_ne(avro_codec_decode(c, copy, len, RECORD_DEVICE, &rec, &err), DECODE_OK);
    free(copy);
    avro_codec_free(c);
}
END_TEST

/* A newer writer: contact gained a field, name lost title (it has a default). */
static const char newer_profile[] =
    "{\"type\":\"record\",\"name\":\"UserProfile\",\"namespace\":\"activity\",\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"long\"},"
    "{\"name\":\"name\",\"type\":{\"type\":\"record\",\"name\":\"UserName\",\"fields\":["
    "{\"name\":\"first\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"last\",\"type\":[\"null\",\"string\"]}]}},"
    "{\"name\":\"address\",\"type\":{\"type\":\"record\",\"name\":\"UserAddress\",\"fields\":["
    "{\"name\":\"street\",\"type\":[\"null\",\"string\"]},{\"name\":\"city\",\"type\":"
    "[\"null\",\"string\"]},{\"name\":\"state\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"country\",\"type\":[\"null\",\"string\"]},{\"name\":\"zip\",\"type\":"
    "[\"null\",\"string\"]}]}},"
    "{\"name\":\"contact\",\"type\":{\"type\":\"record\",\"name\":\"UserContact\",\"fields\":["
    "{\"name\":\"type\",\"type\":[\"null\",\"string\"]},{\"name\":\"value\",\"type\":"
    "[\"null\",\"string\"]},{\"name\":\"verified\",\"type\":\"boolean\"}]}},"
    "{\"name\":\"updated_at\",\"type\":[\"null\",\"long\"]}]}";

START_TEST(profile_schema_evolution_through_flattening)
{
    errbuf err = {{0}};
    size_t flen;
    char *flat = avro_flatten(newer_profile, strlen(newer_profile), &flen, &err);
    ck_assert_ptr_nonnull(flat);
    ck_assert(strstr(flat, "\"name\":\"contact_verified\"") != NULL);
    ck_assert(strstr(flat, "\"name\":\"name_first\"") != NULL);
    free(flat);

    avro_codec *c = avro_codec_new(&err);
    ck_assert_int_eq(avro_codec_add_schema(c, 30, newer_profile, strlen(newer_profile), &err), 0);
    /* Hand-encoded: id 30, user 5, first "A", last null, street..zip null x5,
     * contact type "t", value null, verified true, updated_at 7. */
    const unsigned char body[] = {0, 0, 0, 0, 30, 10, 2,   2, 'A', 0, 0,
                                  0, 0, 0, 0, 2,  2,  't', 0, 1,   2, 14};
    decoded_record rec;
    ck_assert_msg(avro_codec_decode(c, body, sizeof body, RECORD_USER_PROFILE, &rec, &err) ==
                      DECODE_OK,
                  "%s", err.msg);
    ck_assert(rec.u.profile.user_id == 5);
    ck_assert(str_eq(rec.u.profile.attrs[PROFILE_FIRST_NAME], "A"));
    ck_assert(!rec.u.profile.attrs[PROFILE_TITLE].present);
    ck_assert(str_eq(rec.u.profile.attrs[PROFILE_CONTACT_TYPE], "t"));
    ck_assert(rec.u.profile.updated_at_ms.present && rec.u.profile.updated_at_ms.value == 7);
    avro_codec_free(c);

    /* A record named as a type elsewhere (here: recursively) stays nested. */
    const char rec_schema[] = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"n\","
                              "\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{"
                              "\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}}]}";
    flat = avro_flatten(rec_schema, strlen(rec_schema), &flen, &err);
    ck_assert(strstr(flat, "\"name\":\"n\"") != NULL && !strstr(flat, "n_next"));
    free(flat);
    ck_assert_ptr_null(avro_flatten("{", 1, &flen, &err));
}
END_TEST

START_TEST(profile_validation)
{
    validation_rules r;
    validation_defaults(&r);
    errbuf detail = {{0}};
    profile_record p = {.user_id = 1};
    ck_assert_ptr_null(validate_profile(&r, &p, &detail));
    p.attrs[PROFILE_CITY] = (opt_str){"\xff", 1, true};
    ck_assert_str_eq(validate_profile(&r, &p, &detail), "invalid-text");
    ck_assert_msg(strstr(detail.msg, "address.city") != NULL, "%s", detail.msg);
    p.attrs[PROFILE_CITY] = (opt_str){0};
    p.updated_at_ms = (opt_long){-1, true};
    ck_assert_str_eq(validate_profile(&r, &p, &detail), "updated-at-out-of-range");
    device_record d = {.device_id = 1, .updated_at_ms = {INT64_MAX, true}};
    ck_assert_str_eq(validate_device(&r, &d, &detail), "updated-at-out-of-range");
}
END_TEST

Suite *suite_dims(void)
{
    Suite *s = suite_create("dims");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, payload_round_trip);
    tcase_add_test(tc, entries_and_fields);
    tcase_add_test(tc, batch_folds_changes_per_entity);
    tcase_add_test(tc, batch_keeps_latest_device_state);
    tcase_add_test(tc, profile_from_csv);
    tcase_add_test(tc, profile_from_nested_json);
    tcase_add_test(tc, device_deleted_flag);
    tcase_add_test(tc, profile_avro_nested_round_trip);
    tcase_add_test(tc, profile_schema_evolution_through_flattening);
    tcase_add_test(tc, profile_validation);
    suite_add_tcase(s, tc);
    return s;
}
