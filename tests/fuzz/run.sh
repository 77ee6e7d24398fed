#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS — runs the libFuzzer target build/fuzz_decode for
# SECONDS (default 60) over the committed seed corpus (tests/fuzz/corpus,
# read only) plus a working corpus under build/ that grows across runs, and
# prints the executions run. Exits non-zero on any crash, leak, timeout or
# sanitizer report; the reproducer is left in build/fuzz-artifacts/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SECONDS_TO_RUN=${1:-60}
WORK=$ROOT/build/fuzz-corpus
ART=$ROOT/build/fuzz-artifacts
mkdir -p "$WORK" "$ART"
log=$ROOT/build/fuzz.log
start=$(date +%s)
# -max_len: our records are small; 8 KB leaves room for long strings.
# -malloc_limit_mb: a hostile length must never cause a big allocation.
if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "$ROOT/build/fuzz_decode" -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -timeout=10 \
    -rss_limit_mb=1024 -malloc_limit_mb=64 -print_final_stats=1 -artifact_prefix="$ART/" \
    "$WORK" "$ROOT/tests/fuzz/corpus" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: FAILED after $(($(date +%s) - start)) s; reproducer in $ART" >&2
    exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1)
echo "fuzz: fuzz_decode ran $execs executions in $(($(date +%s) - start)) s ($rate/s, $cov), no crash"
