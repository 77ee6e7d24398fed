-- schema.sql: the sink tables (the contract in DESIGN.md), created by
-- `activity migrate` and by `activity run` on start. Idempotent.

CREATE TABLE IF NOT EXISTS host_activity_reduced (
    host                  text     NOT NULL,
    month_start           date     NOT NULL,
    hit_array             bigint[] NOT NULL,
    unique_visitors_array bigint[] NOT NULL,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, month_start)
);

CREATE TABLE IF NOT EXISTS hosts_cumulated (
    host                   text   NOT NULL,
    month_start            date   NOT NULL,
    host_activity_datelist date[] NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, month_start)
);

-- One sketch of the day's unique visitors per (host, day), in the format of the
-- postgresql-hll extension: the bytes hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1)
-- builds from the same users (lib/hll.h). #hll_union_agg(users) over any days and hosts is
-- their unique visitors (README "Daily sketches"). Where the extension is not available
-- (not installed on the server, or this role may not create it) the column is bytea with
-- the same bytes, and `ALTER TABLE host_daily_uniques ALTER COLUMN users TYPE hll USING
-- users::hll` turns it into hll once the extension is there.
DO $$
BEGIN
    IF to_regtype('hll') IS NULL
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hll') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS hll;
        EXCEPTION WHEN insufficient_privilege THEN
            NULL; -- the bytea fallback below; pg_sink_migrate warns
        END;
    END IF;
    IF to_regtype('hll') IS NOT NULL THEN
        CREATE TABLE IF NOT EXISTS host_daily_uniques (
            host       text        NOT NULL,
            day        date        NOT NULL,
            users      hll         NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (host, day)
        );
    ELSE
        CREATE TABLE IF NOT EXISTS host_daily_uniques (
            host       text        NOT NULL,
            day        date        NOT NULL,
            users      bytea       NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (host, day)
        );
    END IF;
END $$;

-- browser_type is null for a known device whose browser is unknown; NULLS
-- NOT DISTINCT keeps one row per (user, null browser, month).
CREATE TABLE IF NOT EXISTS user_devices_cumulated (
    user_id                  bigint  NOT NULL,
    browser_type             text,
    month_start              date    NOT NULL,
    device_activity_datelist date[]  NOT NULL,
    datelist_int             integer NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_devices_cumulated_key UNIQUE NULLS NOT DISTINCT (user_id, browser_type, month_start)
);

-- users_cumulated: the seeds' users_cumulated, by month. One row per
-- (user, month) for every identified user whatever the device (described,
-- undescribed or null): the OR of the user's day masks over all devices,
-- so a user on an unknown device is here though not in
-- user_devices_cumulated. dates_active is most recent first; datelist_int
-- has bit d-1 set iff active on day d. The analytics views
-- (sinks/sql/views.sql) are built on it.
CREATE TABLE IF NOT EXISTS users_cumulated (
    user_id      bigint  NOT NULL,
    month_start  date    NOT NULL,
    dates_active date[]  NOT NULL,
    datelist_int integer NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, month_start)
);

-- activity_user_masks: the processor's own record of each user month's day
-- masks per device, as Redis held them when the month was flushed (not
-- for queries: user_devices_cumulated is the per-browser table). One row
-- per entry of the user's value: entry is the device id, "null" (events
-- without a device), or "~<hex browser>" / "~-" (a month brought back per
-- browser from an older version's rows); device_id is set for device
-- entries. It is what makes eviction exact (README "Lateness and
-- eviction"): a rehydrated user month comes back per device, and a device
-- described, or whose browser changes, after its users' month was evicted
-- finds those users here (by device_id) and re-resolves them.
CREATE TABLE IF NOT EXISTS activity_user_masks (
    user_id      bigint  NOT NULL,
    month_start  date    NOT NULL,
    entry        text    NOT NULL,
    device_id    bigint,
    datelist_int integer NOT NULL,
    PRIMARY KEY (user_id, month_start, entry)
);
CREATE INDEX IF NOT EXISTS activity_user_masks_device ON activity_user_masks (device_id)
    WHERE device_id IS NOT NULL;

-- The newest flush token committed per Redis key prefix (one deployment).
-- A flush commits only with a token larger than the stored one, so a
-- flush that read older Redis state (a paused or partitioned instance)
-- can never overwrite a newer one.
CREATE TABLE IF NOT EXISTS activity_flush_fence (
    name       text   PRIMARY KEY,
    token      bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- SCD2 dimensions (sinks/sql/scd2.sql has the merge, README "Dimensions (SCD2)"
-- the rules). <dim>_changes keeps every change ever received, one per
-- (key, updated_at); a tombstone (a null value on the topic) is a change
-- with is_tombstone. The dimension's versions are derived from it, per
-- entity, by the streak rule: consecutive changes with the same tracked
-- attributes form one version. valid_to is exclusive and null while
-- current; attr_hash is md5 of the tracked attributes' row text.
CREATE TABLE IF NOT EXISTS dim_devices_changes (
    device_id    bigint      NOT NULL,
    updated_at   timestamptz NOT NULL,
    is_tombstone boolean     NOT NULL,
    browser_type text,
    os_type      text,
    device_type  text,
    PRIMARY KEY (device_id, updated_at)
);

CREATE TABLE IF NOT EXISTS dim_devices (
    device_sk    bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    device_id    bigint      NOT NULL,
    browser_type text,
    os_type      text,
    device_type  text,
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    is_current   boolean     NOT NULL,
    attr_hash    text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dim_devices_version UNIQUE (device_id, valid_from),
    CONSTRAINT dim_devices_valid CHECK (valid_to IS NULL OR valid_to > valid_from),
    CONSTRAINT dim_devices_current CHECK (is_current = (valid_to IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS dim_devices_one_current ON dim_devices (device_id)
    WHERE is_current;

CREATE TABLE IF NOT EXISTS dim_users_changes (
    user_id       bigint      NOT NULL,
    updated_at    timestamptz NOT NULL,
    is_tombstone  boolean     NOT NULL,
    first_name    text,
    last_name     text,
    title         text,
    street        text,
    city          text,
    state         text,
    country       text,
    zip           text,
    contact_type  text,
    contact_value text,
    PRIMARY KEY (user_id, updated_at)
);

CREATE TABLE IF NOT EXISTS dim_users (
    user_sk       bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL,
    first_name    text,
    last_name     text,
    title         text,
    street        text,
    city          text,
    state         text,
    country       text,
    zip           text,
    contact_type  text,
    contact_value text,
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    is_current    boolean     NOT NULL,
    attr_hash     text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dim_users_version UNIQUE (user_id, valid_from),
    CONSTRAINT dim_users_valid CHECK (valid_to IS NULL OR valid_to > valid_from),
    CONSTRAINT dim_users_current CHECK (is_current = (valid_to IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS dim_users_one_current ON dim_users (user_id)
    WHERE is_current;

-- Which attributes each dimension tracks (type 2); the others are type 1.
-- When a run tracks other attributes than the table was built with, the
-- next flush rebuilds that dimension's versions from its change history.
CREATE TABLE IF NOT EXISTS dim_tracking (
    dim        text   PRIMARY KEY,
    tracked    text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Which consumer group consumes each deployment (Redis key prefix) of
-- this database, registered by `activity run` at start (cmd/deployment.c):
-- a prefix is consumed by one live group at a time.
CREATE TABLE IF NOT EXISTS activity_consumer_groups (
    prefix     text NOT NULL,
    group_id   text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prefix, group_id)
);

-- The md5 of each SQL file of views (sinks/sql/views*.sql) last applied
-- here: migrate (and run on start) skips a file whose text is unchanged
-- and whose views all exist, so a start does not take the views' exclusive
-- locks (queueing behind, and then ahead of, queries reading them).
CREATE TABLE IF NOT EXISTS activity_sql_applied (
    file       text PRIMARY KEY,
    md5        text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
