#!/usr/bin/env bash
# test_hll_format.sh — lib/hll against the real postgresql-hll extension and the real Redis.
#
# PostgreSQL: user sets of every size that decides an encoding (empty; 1; small; around the
# EXPLICIT threshold 1280; around the SPARSE/FULL switch near 5,000 users; tens of thousands;
# 100,000), with random, negative, sequential and repeated ids, are built by the extension
# (hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1)) and by lib/hll (build/hll_tool); the
# bytes and the cardinality (#) must be identical for every set. The bytea fallback's cast
# (README) is checked on the same bytes. Redis: build/hll_tool redis compares, register for
# register, Redis's HyperLogLog after PFADD of the preimages with lib/hll's rule, and the way
# back (registers SET as a dense string). Rehydration: build/hll_tool rehydrate runs
# processors/rehydrate.lua and evict.lua on the real Redis with sketches decoded as PostgreSQL
# stores them (state equal to the original, generation fence, replay, eviction again).
. "$(dirname "$0")/lib.sh"

make -s -C "$ROOT" build/hll_tool >/dev/null
TOOL=$ROOT/build/hll_tool

psql_test <<'SQL'
CREATE EXTENSION hll;
CREATE TABLE sets(set_id int, user_id bigint);
SELECT setseed(0.42) \gset
-- Random ids over the whole bigint range (negatives sort first in EXPLICIT).
INSERT INTO sets
SELECT s, (random() * 1.8e19 - 9e18)::bigint
FROM unnest(ARRAY[1, 2, 3, 10, 100, 1000, 1279, 1280, 1281, 1282, 2000, 3000, 4000, 10000,
                  30000, 50000, 100000]) WITH ORDINALITY AS z(n, s), generate_series(1, n);
-- Around the SPARSE/FULL switch (4,311 filled registers): 4,800..5,200 users.
INSERT INTO sets
SELECT 100 + n / 20, (random() * 1.8e19 - 9e18)::bigint
FROM generate_series(4800, 5200, 20) n, generate_series(1, n);
-- Sequential small ids, as a generator would make them.
INSERT INTO sets SELECT 200 + k, g FROM generate_series(0, 3) k,
    generate_series(1, (ARRAY[5, 1280, 1281, 7000])[k + 1]) g;
-- Every id twice: duplicates change nothing.
INSERT INTO sets SELECT 300 + k, g % (ARRAY[1280, 1281])[k + 1]
FROM generate_series(0, 1) k, generate_series(1, 2 * (ARRAY[1280, 1281])[k + 1]) g;
-- Only null user ids: EMPTY.
INSERT INTO sets VALUES (400, NULL), (400, NULL);
SQL

psql_test -c "\copy (SELECT set_id, coalesce(string_agg(user_id::text, ' '), '') FROM sets GROUP BY set_id) TO '$WORK/sets.tsv'"
"$TOOL" sketch <"$WORK/sets.tsv" >"$WORK/c.csv"

psql_test <<SQL
CREATE TABLE c_out(set_id int, hex text, card float8);
\copy c_out FROM '$WORK/c.csv' CSV
CREATE TABLE ext AS
SELECT set_id, count(DISTINCT user_id) AS n, hll_add_agg(hll_hash_bigint(user_id), 14, 5, -1, 1) AS h
FROM sets GROUP BY set_id;
SQL

summary=$(psql_test -tA -F' ' <<'SQL'
SELECT count(*),
       count(*) FILTER (WHERE e.h::text = c.hex AND #e.h = c.card),
       count(*) FILTER (WHERE get_byte(e.h::text::bytea, 0) = 17),
       count(*) FILTER (WHERE get_byte(e.h::text::bytea, 0) = 18),
       count(*) FILTER (WHERE get_byte(e.h::text::bytea, 0) = 19),
       count(*) FILTER (WHERE get_byte(e.h::text::bytea, 0) = 20),
       (SELECT count(*) FROM ext)
FROM ext e JOIN c_out c USING (set_id);
SQL
)
read -r joined equal n_empty n_explicit n_sparse n_full n_sets <<<"$summary"
say "sets $n_sets, compared $joined, identical $equal (EMPTY $n_empty, EXPLICIT $n_explicit, SPARSE $n_sparse, FULL $n_full)"
if [ "$equal" != "$n_sets" ] || [ "$joined" != "$n_sets" ]; then
    psql_test -c "SELECT set_id, n, left(e.h::text, 40) AS ext, left(c.hex, 40) AS c, #e.h AS ext_card, c.card
                  FROM ext e FULL JOIN c_out c USING (set_id)
                  WHERE e.h::text IS DISTINCT FROM c.hex OR #e.h IS DISTINCT FROM c.card" >&2
    fail "lib/hll and the extension disagree"
fi
for t in "$n_empty" "$n_explicit" "$n_sparse" "$n_full"; do
    [ "$t" -gt 0 ] || fail "an encoding was not exercised"
done
# The threshold itself: 1,280 distinct hashes stay EXPLICIT, 1,281 do not.
thr=$(psql_test -tA -c "SELECT string_agg(n || ':' || get_byte(h::text::bytea, 0), ' ' ORDER BY n)
                        FROM ext WHERE n IN (1280, 1281)")
case $thr in
*"1280:18"*"1281:19"*) say "EXPLICIT up to 1280 distinct, SPARSE at 1281: $thr" ;;
*) fail "threshold not where lib/hll puts it: $thr" ;;
esac
# The SPARSE/FULL switch was crossed among the 4,800..5,200-user sets.
sw=$(psql_test -tA -c "SELECT count(DISTINCT get_byte(h::text::bytea, 0)) FROM ext WHERE set_id BETWEEN 340 AND 360")
[ "$sw" = 2 ] || fail "the SPARSE/FULL switch was not crossed ($sw types among 4,800..5,200 users)"

# The bytea fallback: the same bytes in a bytea column, cast as README says.
psql_test <<'SQL'
CREATE TABLE fallback(set_id int PRIMARY KEY, users bytea NOT NULL);
INSERT INTO fallback SELECT set_id, decode(substr(hex, 3), 'hex') FROM c_out;
ALTER TABLE fallback ALTER COLUMN users TYPE hll USING users::hll;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM fallback f JOIN ext e USING (set_id) WHERE f.users <> e.h OR #f.users <> #e.h) THEN
        RAISE EXCEPTION 'the bytea fallback does not cast to the same sketches';
    END IF;
END $$;
SQL
say "bytea fallback: ALTER COLUMN users TYPE hll USING users::hll gives the same sketches"

hp=${ACTIVITY_REDIS_URL#redis://}
hp=${hp%%/*}
"$TOOL" redis "${hp%:*}" "${hp##*:}" "$PREFIX:hlltool" >&2 || fail "Redis's registers differ from lib/hll's"
(cd "$ROOT" && "$TOOL" rehydrate "${hp%:*}" "${hp##*:}" "$PREFIX") >&2 ||
    fail "rehydrate.lua did not bring the state back exactly"
say "ok"
