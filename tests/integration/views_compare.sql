-- views_compare.sql — compares each analytics view with its expected_<view> table
-- (views_reference.sql, or the test's own for the sketch views), row for row.
--
-- Owns: the pass/fail verdict of tests/integration/test_views.sh. For each view named in
-- the psql variable `views` (comma-separated; default: every view views_reference.sql
-- computes), it counts the rows only in expected_<view> (missing) and only in the view
-- (extra), as multisets (EXCEPT ALL) over the expected table's columns, so duplicates count
-- too, and every value must be equal (no tolerance: none of these views estimates). It
-- prints one line per view and a few example rows of any difference, and ends with an
-- ERROR (psql exits non-zero under ON_ERROR_STOP) if any view differs or is empty.
--
-- Usage: psql -X -v ON_ERROR_STOP=1 [-v views=a,b] -f tests/integration/views_compare.sql

\set ON_ERROR_STOP 1
\if :{?views}
\else
\set views 'activity_daily_users,user_activity_l7_l28,user_growth_daily,user_growth_weekly,growth_accounting_daily,growth_accounting_weekly'
\endif
SET client_min_messages = notice;
SELECT set_config('views_compare.list', :'views', false);

DO $$
DECLARE
    v        text;
    cols     text;
    expected bigint;
    actual   bigint;
    missing  bigint;
    extra    bigint;
    example  text;
    failures text[] := '{}';
BEGIN
    FOREACH v IN ARRAY string_to_array(current_setting('views_compare.list'), ',') LOOP
        SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
          INTO cols
          FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'expected_' || v;
        IF cols IS NULL THEN
            RAISE EXCEPTION 'views_compare: no table expected_%', v;
        END IF;
        EXECUTE format('SELECT count(*) FROM %I', 'expected_' || v) INTO expected;
        EXECUTE format('SELECT count(*) FROM %I', v) INTO actual;
        EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %I EXCEPT ALL SELECT %s FROM %I) d',
                       cols, 'expected_' || v, cols, v) INTO missing;
        EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %I EXCEPT ALL SELECT %s FROM %I) d',
                       cols, v, cols, 'expected_' || v) INTO extra;
        RAISE NOTICE '% : expected % rows, view % rows, missing %, extra %',
                     rpad(v, 26), expected, actual, missing, extra;
        IF missing > 0 THEN
            EXECUTE format('SELECT string_agg(d::text, E''\n'') FROM (SELECT %s FROM %I EXCEPT ALL '
                           'SELECT %s FROM %I ORDER BY 1, 2 LIMIT 5) d',
                           cols, 'expected_' || v, cols, v) INTO example;
            RAISE NOTICE 'rows of expected_% not in the view, e.g.:%', v, E'\n' || example;
        END IF;
        IF extra > 0 THEN
            EXECUTE format('SELECT string_agg(d::text, E''\n'') FROM (SELECT %s FROM %I EXCEPT ALL '
                           'SELECT %s FROM %I ORDER BY 1, 2 LIMIT 5) d',
                           cols, v, cols, 'expected_' || v) INTO example;
            RAISE NOTICE 'rows of % not in expected_%, e.g.:%', v, v, E'\n' || example;
        END IF;
        IF missing > 0 OR extra > 0 OR expected = 0 THEN
            failures := failures || v;
        END IF;
    END LOOP;
    IF cardinality(failures) > 0 THEN
        RAISE EXCEPTION 'views_compare: FAIL: % (differences, or nothing expected)',
                        array_to_string(failures, ', ');
    END IF;
    RAISE NOTICE 'views_compare: OK (%)', current_setting('views_compare.list');
END
$$;
