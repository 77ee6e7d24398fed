#!/usr/bin/env bash
# scripts/dbt.sh — runs the dbt project in dbt/ against a database of the sink tables:
# `dbt build` (every source test) and `dbt source freshness`.
#
# Owns the dbt virtualenv (.stack/dbtenv, or ACTIVITY_DBTENV): dbt-core and dbt-postgres
# from PyPI with every dependency pinned (dbt/requirements.txt), installed once and again
# only when that file changes. The connection comes from ACTIVITY_PG_DSN (the local
# stack's unless set; a libpq URI or key=value conninfo), handed to dbt/profiles.yml as
# ACTIVITY_DBT_HOST/PORT/USER/PASSWORD/DBNAME unless those are set already. dbt's own
# output (target/, logs/) goes under .stack/dbt, out of the tree.
#
#   scripts/dbt.sh                 build + source freshness
#   scripts/dbt.sh debug           any other dbt command line (e.g. `test -s ...`)
#   PY=$(scripts/dbt.sh --install) only install; prints the venv's dbt path
#
# `make dbt-test` (tests/integration/test_dbt.sh) loads fresh data through the processor
# into a database of its own first, then runs this.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=${ACTIVITY_DBTENV:-$ROOT/.stack/dbtenv}
REQS=$ROOT/dbt/requirements.txt
OUT=${ACTIVITY_DBT_OUT:-$ROOT/.stack/dbt}

install() {
    local stamp=$VENV/.requirements
    if [ -x "$VENV/bin/dbt" ] && cmp -s "$REQS" "$stamp"; then
        return 0
    fi
    local py
    py=$(command -v python3 || true)
    [ -n "$py" ] || {
        echo "dbt.sh: python3 not found (scripts/deps.sh installs it)" >&2
        return 1
    }
    echo "dbt.sh: installing dbt (dbt/requirements.txt) into $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" >&2 || {
        echo "dbt.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
        return 1
    }
    local log
    log=$(mktemp /tmp/activity-dbtenv.XXXXXX.log)
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        -r "$REQS" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "dbt.sh: pip install failed (full log: $log)" >&2
        return 1
    fi
    rm -f "$log"
    cp "$REQS" "$stamp"
}

install
if [ "${1:-}" = --install ]; then
    echo "$VENV/bin/dbt"
    exit 0
fi

# The connection: ACTIVITY_DBT_* as given, else parsed from ACTIVITY_PG_DSN by libpq's
# own rules (psycopg2's conninfo parser, from the venv), else the local stack's.
if [ -z "${ACTIVITY_PG_DSN:-}" ]; then
    eval "$("$ROOT/scripts/stack.sh" env)"
fi
eval "$("$VENV/bin/python" - "$ACTIVITY_PG_DSN" <<'PY'
import shlex, sys
from psycopg2.extensions import parse_dsn
d = parse_dsn(sys.argv[1])
for var, key, default in (("HOST", "host", "127.0.0.1"), ("PORT", "port", "5432"),
                          ("USER", "user", "postgres"), ("PASSWORD", "password", ""),
                          ("DBNAME", "dbname", "activity")):
    print(": ${ACTIVITY_DBT_%s:=%s}; export ACTIVITY_DBT_%s"
          % (var, shlex.quote(d.get(key) or default), var))
PY
)"

mkdir -p "$OUT"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_VERSION_CHECK=false
common=(--project-dir "$ROOT/dbt" --profiles-dir "$ROOT/dbt" --target-path "$OUT/target"
    --log-path "$OUT/logs")
echo "dbt.sh: database $ACTIVITY_DBT_DBNAME on $ACTIVITY_DBT_HOST:$ACTIVITY_DBT_PORT" >&2
cd "$ROOT/dbt"
if [ $# -gt 0 ]; then
    exec "$VENV/bin/dbt" "$@" "${common[@]}"
fi
"$VENV/bin/dbt" build "${common[@]}"
"$VENV/bin/dbt" source freshness "${common[@]}"
