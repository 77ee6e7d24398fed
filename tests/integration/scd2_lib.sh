# scd2_lib.sh — shared steps of the SCD2 tests (sourced after lib.sh): generated histories,
# the plain-SQL reference over them, and the comparison.

# The users' tracked attributes the tests run with (and scd2_reference.sql assumes).
SCD2_USERS_TRACK=first_name,last_name,street,city,state,country,zip

# Loads DIR's devices_all.csv and profiles_all.csv (scripts/gen_dims.py) and computes
# expected_dim_devices and expected_dim_users with scd2_reference.sql.
scd2_reference() {
    local dir=$1
    psql_test <<SQL
SET TimeZone = 'UTC';
CREATE TABLE raw_device_changes (device_id bigint, browser_type text, os_type text,
    device_type text, updated_at timestamptz, deleted boolean);
CREATE TABLE raw_profile_changes (user_id bigint, first_name text, last_name text, title text,
    street text, city text, state text, country text, zip text, contact_type text,
    contact_value text, updated_at timestamptz, deleted boolean);
\copy raw_device_changes FROM '$dir/devices_all.csv' CSV HEADER
\copy raw_profile_changes FROM '$dir/profiles_all.csv' CSV HEADER
SQL
    psql_test -f "$ROOT/tests/integration/scd2_reference.sql" >/dev/null
}

# Fails the test (showing the differences) unless dim_devices and dim_users equal the
# reference row for row.
compare_dims() {
    psql_test -f "$ROOT/tests/integration/scd2_compare.sql" >"$WORK/compare.out" 2>&1 || {
        cat "$WORK/compare.out"
        fail "dimensions differ from the reference ($1)"
    }
    grep "compare:" "$WORK/compare.out" >&2
}
