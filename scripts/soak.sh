#!/usr/bin/env bash
# scripts/soak.sh [SEEDS] — the skew differential test (tests/integration/skew_case.sh) over
# SEEDS random seeds (default 50), each with a random mix of the skew shapes at a random
# small scale, a random exact-uniques limit and batch size (small batches apply one user's
# devices over many Lua calls), against the local stack (started here if it is not running, and stopped
# again). Prints one line per seed and, for a failure, the command that replays it exactly.
# `make soak SEEDS=N` runs it. SOAK_FIRST_SEED fixes the first seed (then seeds count up),
# to replay a whole run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SEEDS=${1:-${SEEDS:-50}}
first=${SOAK_FIRST_SEED:-$((RANDOM * 32768 + RANDOM))}
shapes_all=(heavy-users hot-host many-hosts every-day months long-hosts browser-changes)

started=0
if ! "$ROOT/scripts/stack.sh" status >/dev/null 2>&1; then
    ACTIVITY_SKIP_DEPS=1 "$ROOT/scripts/stack.sh" up
    started=1
fi
trap '[ "$started" = 1 ] && "$ROOT/scripts/stack.sh" down' EXIT
logs=$ROOT/.stack/soak-logs
mkdir -p "$logs"

failed=()
t0=$SECONDS
for i in $(seq 0 $((SEEDS - 1))); do
    seed=$((first + i))
    # The mix and sizes come from the seed, so the seed alone replays the case.
    read -r shapes scale events limit batch < <(python3 - "$seed" "${shapes_all[@]}" <<'PY'
import random, sys
r = random.Random(int(sys.argv[1]))
shapes = [s for s in sys.argv[2:] if r.random() < 0.5] or [r.choice(sys.argv[2:])]
print(",".join(shapes), round(r.uniform(0.03, 0.15), 3), r.choice((2000, 5000, 10000)),
      r.choice((1280, 2000, 5000)), r.choice((500000, 5000, 333)))
PY
    )
    cmd="env SKEW_EXACT_LIMIT=$limit SKEW_RUN_FLAGS=--batch-size=$batch"
    cmd+=" tests/integration/skew_case.sh $seed $shapes $scale $events"
    if (cd "$ROOT" && $cmd) >"$logs/$seed.log" 2>&1; then
        echo "soak: seed $seed ok ($shapes, scale $scale, $events events, limit $limit, batch $batch)"
        rm -f "$logs/$seed.log"
    else
        echo "soak: seed $seed FAILED: replay with: $cmd (log: $logs/$seed.log)"
        failed+=("$seed")
    fi
done
echo "soak: $SEEDS seeds in $((SECONDS - t0)) s, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[ "${#failed[@]}" = 0 ]
