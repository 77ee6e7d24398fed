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

-- The newest flush token committed per Redis key prefix (one deployment).
-- A flush commits only with a token larger than the stored one, so a
-- flush that read older Redis state (a paused or partitioned instance)
-- can never overwrite a newer one.
CREATE TABLE IF NOT EXISTS activity_flush_fence (
    name       text   PRIMARY KEY,
    token      bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
