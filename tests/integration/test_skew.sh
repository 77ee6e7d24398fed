#!/usr/bin/env bash
# test_skew.sh — the skew shapes (users on thousands of devices and hundreds of browsers,
# a hot host past the exact-uniques limit, thousands of one-event hosts, a user on every day
# of a 31-day month on three devices at once, 14 months with a leap February, hosts of
# exactly --max-key-bytes of multi-byte UTF-8, devices that change browser or are described
# only after their users' rows were flushed) on three fixed seeds, each compared row for
# row with the plain-SQL reference (skew_case.sh). `make soak` runs random seeds and mixes.
set -euo pipefail
dir=$(dirname "$0")
# Seed 1 at full scale: the held-out case, one user on 4,500 devices in one month.
"$dir/skew_case.sh" 1 all 1 20000
"$dir/skew_case.sh" 2 all 0.4 10000
"$dir/skew_case.sh" 3 all 0.2 10000
echo "[test_skew] ok"
