-- scd2.sql: the set-based SCD2 merge of one dimension, run by every flush
-- inside its PostgreSQL transaction (sinks/scd2.h builds it from this text).
--
-- A template: {{dim}}, {{key}}, {{changes}} name the dimension's tables and
-- natural key; {{attrs P}} is its attribute columns, each prefixed by P;
-- {{tracked P}} the tracked (type 2) ones; {{pick V L}} every attribute from
-- V if tracked, else from L (type 1: the entity's latest value);
-- {{set P}} "a = P.a, ..."; {{min P}} "min(P.a) AS a, ..."; {{defs}}
-- "a text, ..."; {{tracked_names}} the tracked names as SQL string literals.
-- The names come from sinks/scd2.c's fixed lists, never from input.
--
-- The stage section runs once per connection, the apply section per flush.
--
-- ==== stage ====
CREATE TEMP TABLE IF NOT EXISTS stage_{{dim}} (
    {{key}} bigint, updated_at_ms bigint, is_tombstone boolean, {{defs}}
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS scd2_keys_{{dim}} ({{key}} bigint PRIMARY KEY)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS scd2_new_{{dim}} (
    {{key}} bigint, {{defs}}, valid_from timestamptz, valid_to timestamptz, attr_hash text
) ON COMMIT DELETE ROWS;
-- ==== apply ====
-- The re-derivation sorts whole histories: give it room (this transaction only).
SET LOCAL work_mem = '64MB';

-- 1. The staged changes join the history: one row per (key, updated_at).
-- Two different changes at the same instant resolve the same way whatever
-- their arrival order: a tombstone wins, else the greater row text (bytes).
INSERT INTO {{changes}} AS c ({{key}}, updated_at, is_tombstone, {{attrs}})
SELECT DISTINCT ON ({{key}}, updated_at) {{key}}, updated_at, is_tombstone, {{attrs}}
FROM (SELECT s.*, timestamptz 'epoch' + s.updated_at_ms * interval '1 millisecond' AS updated_at
      FROM stage_{{dim}} s) s
ORDER BY {{key}}, updated_at, is_tombstone DESC, ROW({{attrs}})::text COLLATE "C" DESC
ON CONFLICT ({{key}}, updated_at) DO UPDATE
SET is_tombstone = EXCLUDED.is_tombstone, {{set EXCLUDED.}}
WHERE (EXCLUDED.is_tombstone, ROW({{attrs EXCLUDED.}})::text COLLATE "C")
    > (c.is_tombstone, ROW({{attrs c.}})::text COLLATE "C");

-- 2. The entities to re-derive: those with staged changes, or all of them
-- when the tracked attributes differ from the ones the table was built with.
INSERT INTO scd2_keys_{{dim}}
SELECT {{key}} FROM stage_{{dim}}
UNION
SELECT {{key}} FROM {{changes}}
WHERE (SELECT tracked FROM dim_tracking WHERE dim = '{{dim}}')
      IS DISTINCT FROM ARRAY[{{tracked_names}}]::text[];
INSERT INTO dim_tracking AS t (dim, tracked) VALUES ('{{dim}}', ARRAY[{{tracked_names}}]::text[])
ON CONFLICT (dim) DO UPDATE SET tracked = EXCLUDED.tracked, updated_at = now()
WHERE t.tracked IS DISTINCT FROM EXCLUDED.tracked;
ANALYZE scd2_keys_{{dim}};

-- 3. Their versions, from their whole history, by the streak rule: a change
-- starts a new streak when it differs from the previous change in being a
-- tombstone or in a tracked attribute; a streak is a version valid from its
-- first change to the next streak's first change; a tombstones' streak only
-- ends the version before it.
INSERT INTO scd2_new_{{dim}} ({{key}}, {{attrs}}, valid_from, valid_to, attr_hash)
WITH ch AS (
    SELECT c.* FROM {{changes}} c JOIN scd2_keys_{{dim}} k USING ({{key}})
), flagged AS (
    SELECT ch.*,
           CASE WHEN ROW(is_tombstone, {{tracked}})
                     IS DISTINCT FROM lag(ROW(is_tombstone, {{tracked}})) OVER w
                THEN 1 ELSE 0 END AS starts
    FROM ch WINDOW w AS (PARTITION BY {{key}} ORDER BY updated_at)
), streaks AS (
    SELECT flagged.*, sum(starts) OVER (PARTITION BY {{key}} ORDER BY updated_at) AS streak
    FROM flagged
), versions AS (
    SELECT {{key}}, streak, min(updated_at) AS valid_from, bool_and(is_tombstone) AS deleted,
           {{min s.}}
    FROM streaks s GROUP BY {{key}}, streak
), bounded AS (
    SELECT v.*, lead(valid_from) OVER (PARTITION BY {{key}} ORDER BY valid_from) AS valid_to
    FROM versions v
), latest AS (
    SELECT DISTINCT ON ({{key}}) {{key}}, {{attrs}}
    FROM ch WHERE NOT is_tombstone ORDER BY {{key}}, updated_at DESC
)
SELECT v.{{key}}, {{pick v. l.}}, v.valid_from, v.valid_to, md5(ROW({{tracked v.}})::text)
FROM bounded v JOIN latest l USING ({{key}})
WHERE NOT v.deleted;

-- 4. Merge: versions that no longer exist go, surviving ones (same key,
-- valid_from and hash: same surrogate key) get their new end and type 1
-- values, new ones come in. In this order no moment has two current rows
-- or two rows with one valid_from.
DELETE FROM {{dim}} d USING scd2_keys_{{dim}} k
WHERE d.{{key}} = k.{{key}}
  AND NOT EXISTS (SELECT 1 FROM scd2_new_{{dim}} n
                  WHERE n.{{key}} = d.{{key}} AND n.valid_from = d.valid_from
                    AND n.attr_hash = d.attr_hash);
UPDATE {{dim}} d
SET valid_to = n.valid_to, is_current = n.valid_to IS NULL, {{set n.}}, updated_at = now()
FROM scd2_new_{{dim}} n
WHERE d.{{key}} = n.{{key}} AND d.valid_from = n.valid_from AND d.attr_hash = n.attr_hash
  AND (d.valid_to, {{attrs d.}}) IS DISTINCT FROM (n.valid_to, {{attrs n.}});
INSERT INTO {{dim}} ({{key}}, {{attrs}}, valid_from, valid_to, is_current, attr_hash)
SELECT n.{{key}}, {{attrs n.}}, n.valid_from, n.valid_to, n.valid_to IS NULL, n.attr_hash
FROM scd2_new_{{dim}} n
WHERE NOT EXISTS (SELECT 1 FROM {{dim}} d
                  WHERE d.{{key}} = n.{{key}} AND d.valid_from = n.valid_from);
