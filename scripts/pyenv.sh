#!/usr/bin/env bash
# scripts/pyenv.sh — a Python virtualenv under .stack/pyenv with the Avro and
# Kafka libraries the integration tests use as an independent implementation:
# fastavro (encodes records with writer schemas we did not write the encoder
# for) and confluent-kafka (produces raw bytes to the local broker). Both come
# from PyPI as wheels. Idempotent: reinstalls only when the pinned versions
# below change. Prints the venv's python path on stdout.
#
#   PY=$(scripts/pyenv.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=${ACTIVITY_PYENV:-$ROOT/.stack/pyenv}
REQS=("fastavro==1.13.1" "confluent-kafka==2.16.1")
stamp="$VENV/.requirements"
want=$(printf '%s\n' "${REQS[@]}")
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$VENV/bin/python"
    exit 0
fi
py=$(command -v python3 || true)
[ -n "$py" ] || {
    echo "pyenv.sh: python3 not found (scripts/deps.sh installs it)" >&2
    exit 1
}
mkdir -p "$(dirname "$VENV")"
rm -rf "$VENV"
if ! "$py" -m venv "$VENV" >&2; then
    echo "pyenv.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
    exit 1
fi
log=$(mktemp /tmp/activity-pyenv.XXXXXX.log)
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQS[@]}" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "pyenv.sh: pip install failed (full log: $log)" >&2
    exit 1
fi
rm -f "$log"
echo "$want" >"$stamp"
echo "$VENV/bin/python"
