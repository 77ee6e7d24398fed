#!/usr/bin/env bash
# run_all.sh — runs every tests/integration/test_*.sh against the local
# stack. Starts the stack if it is not running and, in that case, stops it
# again at the end, so the servers a test run starts are cleaned up.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
started=0
if ! "$ROOT/scripts/stack.sh" status >/dev/null 2>&1; then
    ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" up
    started=1
fi
stop_stack() {
    if [ "$started" = 1 ]; then "$ROOT/scripts/stack.sh" down; fi
}
trap stop_stack EXIT
failed=0
for t in "$ROOT"/tests/integration/test_*.sh; do
    [ -n "${ONLY:-}" ] && [[ $t != *"$ONLY"* ]] && continue
    echo "=== $(basename "$t")"
    start=$(date +%s)
    if "$t"; then
        echo "=== PASS $(basename "$t") ($(($(date +%s) - start)) s)"
    else
        echo "=== FAIL $(basename "$t") ($(($(date +%s) - start)) s)"
        failed=$((failed + 1))
    fi
done
[ "$failed" = 0 ] || {
    echo "$failed integration test(s) failed"
    exit 1
}
echo "all integration tests passed"
