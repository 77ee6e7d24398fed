-- scd2_reference.sql — the SCD2 dimensions computed by plain SQL over the full change
-- history, the seeds' streak way (LAG, a running SUM of "did change", GROUP BY streak), to
-- hold the processor's dim_devices / dim_users against.
--
-- Input (loaded by the test from scripts/gen_dims.py's *_all.csv, in a UTC session):
--   raw_device_changes(device_id, browser_type, os_type, device_type, updated_at, deleted)
--   raw_profile_changes(user_id, first_name, last_name, title, street, city, state,
--                       country, zip, contact_type, contact_value, updated_at, deleted)
-- every record as delivered: repeated, out of order, tombstones with null attributes.
--
-- Tracked attributes, as the test runs the processor:
--   devices: browser_type, os_type, device_type (all: the default)
--   users:   first_name, last_name, street, city, state, country, zip
--            (title, contact_type, contact_value are type 1: --dim-users-track)
--
-- Output: expected_dim_devices, expected_dim_users with the dimension's columns but the
-- surrogate key (key, attributes, valid_from, valid_to, is_current, attr_hash).

SET TimeZone = 'UTC';

-- Devices ------------------------------------------------------------------------------

-- One change per device and instant: a repeat is one change; of two different changes at
-- the same instant, a tombstone wins, else the greater row text in byte order.
CREATE TEMP TABLE ref_device_changes AS
SELECT DISTINCT ON (device_id, updated_at) *,
       CASE WHEN deleted THEN 'deleted'
            ELSE ROW(browser_type, os_type, device_type)::text END AS state
FROM raw_device_changes
ORDER BY device_id, updated_at, deleted DESC,
         ROW(browser_type, os_type, device_type)::text COLLATE "C" DESC;

CREATE TABLE expected_dim_devices AS
WITH with_previous AS (
    SELECT *, LAG(state) OVER (PARTITION BY device_id ORDER BY updated_at) AS previous_state
    FROM ref_device_changes
), indicators AS (
    SELECT *, CASE WHEN previous_state IS NULL OR state <> previous_state THEN 1 ELSE 0 END
                  AS did_change
    FROM with_previous
), streaks AS (
    SELECT *, SUM(did_change) OVER (PARTITION BY device_id ORDER BY updated_at)
                  AS streak_identifier
    FROM indicators
), versions AS (
    SELECT device_id, streak_identifier, MIN(state) AS state,
           MIN(browser_type) AS browser_type, MIN(os_type) AS os_type,
           MIN(device_type) AS device_type, MIN(updated_at) AS valid_from
    FROM streaks
    GROUP BY device_id, streak_identifier
), bounded AS (
    SELECT *, LEAD(valid_from) OVER (PARTITION BY device_id ORDER BY valid_from) AS valid_to
    FROM versions
)
SELECT device_id, browser_type, os_type, device_type, valid_from, valid_to,
       valid_to IS NULL AS is_current,
       md5(ROW(browser_type, os_type, device_type)::text) AS attr_hash
FROM bounded
WHERE state <> 'deleted';

-- Users --------------------------------------------------------------------------------

CREATE TEMP TABLE ref_profile_changes AS
SELECT DISTINCT ON (user_id, updated_at) *,
       CASE WHEN deleted THEN 'deleted'
            ELSE ROW(first_name, last_name, street, city, state, country, zip)::text
       END AS tracked_state
FROM raw_profile_changes
ORDER BY user_id, updated_at, deleted DESC,
         ROW(first_name, last_name, title, street, city, state, country, zip, contact_type,
             contact_value)::text COLLATE "C" DESC;

-- Type 1 attributes: every version carries the user's latest values.
CREATE TEMP TABLE ref_profile_latest AS
SELECT DISTINCT ON (user_id) user_id, title, contact_type, contact_value
FROM ref_profile_changes
WHERE NOT deleted
ORDER BY user_id, updated_at DESC;

CREATE TABLE expected_dim_users AS
WITH with_previous AS (
    SELECT *, LAG(tracked_state) OVER (PARTITION BY user_id ORDER BY updated_at)
                  AS previous_state
    FROM ref_profile_changes
), indicators AS (
    SELECT *, CASE WHEN previous_state IS NULL OR tracked_state <> previous_state THEN 1
                   ELSE 0 END AS did_change
    FROM with_previous
), streaks AS (
    SELECT *, SUM(did_change) OVER (PARTITION BY user_id ORDER BY updated_at)
                  AS streak_identifier
    FROM indicators
), versions AS (
    SELECT user_id, streak_identifier, MIN(tracked_state) AS tracked_state,
           MIN(first_name) AS first_name, MIN(last_name) AS last_name, MIN(street) AS street,
           MIN(city) AS city, MIN(state) AS state, MIN(country) AS country, MIN(zip) AS zip,
           MIN(updated_at) AS valid_from
    FROM streaks
    GROUP BY user_id, streak_identifier
), bounded AS (
    SELECT *, LEAD(valid_from) OVER (PARTITION BY user_id ORDER BY valid_from) AS valid_to
    FROM versions
)
SELECT b.user_id, b.first_name, b.last_name, l.title, b.street, b.city, b.state, b.country,
       b.zip, l.contact_type, l.contact_value, b.valid_from, b.valid_to,
       b.valid_to IS NULL AS is_current,
       md5(ROW(b.first_name, b.last_name, b.street, b.city, b.state, b.country, b.zip)::text)
           AS attr_hash
FROM bounded b JOIN ref_profile_latest l USING (user_id)
WHERE b.tracked_state <> 'deleted';
