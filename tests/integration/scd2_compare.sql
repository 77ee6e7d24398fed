-- scd2_compare.sql — holds dim_devices and dim_users against expected_dim_devices and
-- expected_dim_users (scd2_reference.sql), row for row (every column but the surrogate key
-- and updated_at), and checks the tables' invariants. Ends in "compare: OK ..." or an ERROR
-- "compare: FAIL ..." (psql exits 3 with -v ON_ERROR_STOP=1), after showing up to 10 rows
-- from each side of a difference.
SET TimeZone = 'UTC';

CREATE TEMP VIEW got_dim_devices AS
SELECT device_id, browser_type, os_type, device_type, valid_from, valid_to, is_current,
       attr_hash
FROM dim_devices;
CREATE TEMP VIEW got_dim_users AS
SELECT user_id, first_name, last_name, title, street, city, state, country, zip,
       contact_type, contact_value, valid_from, valid_to, is_current, attr_hash
FROM dim_users;

\echo rows only in dim_devices (first 10), then only in the reference:
(TABLE got_dim_devices EXCEPT ALL TABLE expected_dim_devices) ORDER BY 1, 5 LIMIT 10;
(TABLE expected_dim_devices EXCEPT ALL TABLE got_dim_devices) ORDER BY 1, 5 LIMIT 10;
\echo rows only in dim_users (first 10), then only in the reference:
(TABLE got_dim_users EXCEPT ALL TABLE expected_dim_users) ORDER BY 1, 12 LIMIT 10;
(TABLE expected_dim_users EXCEPT ALL TABLE got_dim_users) ORDER BY 1, 12 LIMIT 10;

DO $$
DECLARE
    d_extra bigint; d_missing bigint; u_extra bigint; u_missing bigint;
    d_rows bigint; u_rows bigint; d_keys bigint; u_keys bigint; n_overlapping bigint;
BEGIN
    SELECT count(*) INTO d_extra FROM (TABLE got_dim_devices EXCEPT ALL TABLE expected_dim_devices) x;
    SELECT count(*) INTO d_missing FROM (TABLE expected_dim_devices EXCEPT ALL TABLE got_dim_devices) x;
    SELECT count(*) INTO u_extra FROM (TABLE got_dim_users EXCEPT ALL TABLE expected_dim_users) x;
    SELECT count(*) INTO u_missing FROM (TABLE expected_dim_users EXCEPT ALL TABLE got_dim_users) x;
    IF d_extra + d_missing + u_extra + u_missing > 0 THEN
        RAISE EXCEPTION 'compare: FAIL dim_devices: % extra, % missing rows; dim_users: % extra, % missing rows',
            d_extra, d_missing, u_extra, u_missing;
    END IF;
    -- Versions of one key never overlap and are ordered by valid_from.
    SELECT count(*) INTO n_overlapping FROM (
        SELECT valid_to, lead(valid_from) OVER (PARTITION BY device_id ORDER BY valid_from) AS nxt
        FROM dim_devices
        UNION ALL
        SELECT valid_to, lead(valid_from) OVER (PARTITION BY user_id ORDER BY valid_from)
        FROM dim_users) x
    WHERE nxt IS NOT NULL AND (valid_to IS NULL OR valid_to > nxt);
    IF n_overlapping > 0 THEN
        RAISE EXCEPTION 'compare: FAIL % overlapping versions', n_overlapping;
    END IF;
    SELECT count(*), count(DISTINCT device_id) INTO d_rows, d_keys FROM dim_devices;
    SELECT count(*), count(DISTINCT user_id) INTO u_rows, u_keys FROM dim_users;
    RAISE NOTICE 'compare: OK dim_devices % rows (% devices), dim_users % rows (% users)',
        d_rows, d_keys, u_rows, u_keys;
END $$;
