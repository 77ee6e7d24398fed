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
# Each test's output also goes to a log of its own, so that a failure can be
# repeated at the very end: CI shows only the tail of what a run prints.
logs="$ROOT/.stack/test-logs"
mkdir -p "$logs"
failed=()
for t in "$ROOT"/tests/integration/test_*.sh; do
    [ -n "${ONLY:-}" ] && [[ $t != *"$ONLY"* ]] && continue
    name=$(basename "$t" .sh)
    echo "=== $name.sh"
    start=$(date +%s)
    if "$t" 2>&1 | tee "$logs/$name.log"; then
        echo "=== PASS $name.sh ($(($(date +%s) - start)) s)"
    else
        echo "=== FAIL $name.sh ($(($(date +%s) - start)) s)"
        failed+=("$name")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    for name in "${failed[@]}"; do
        echo "=== last lines of $name ($logs/$name.log):"
        tail -n 40 "$logs/$name.log"
    done
    echo "${#failed[@]} integration test(s) failed: ${failed[*]}"
    exit 1
fi
echo "all integration tests passed"
