#!/usr/bin/env bash
# scripts/deps.sh: install the Debian 12 packages this project builds, tests and runs its
# local stack with. Owns nothing but the package list below.
#
# Idempotent and cheap when there is nothing to do: it asks dpkg which packages are
# missing and only then runs `apt-get update` + `apt-get install` (as root). A clean clone
# on a fresh Debian 12 machine needs nothing else: scripts/stack.sh calls this first.
#
# The Debian packages redis-server and postgresql come with system services (redis on
# 6379, a "main" cluster on 5432). We never use them: scripts/stack.sh runs its own
# instances on other ports with data under .stack/. Whether those services were started
# by the install (they are not when no init system runs) does not matter either way.
#
# Usage: scripts/deps.sh [--check] [--build]
#   --check   list what is missing, install nothing (exit 1 if anything is missing)
#   --build   only what building and running bin/activity needs (the Docker image): no
#             servers, no JVM, no Maven, no kcat
set -euo pipefail

check_only=0
build_only=0
for arg in "$@"; do
    case $arg in
    --check) check_only=1 ;;
    --build) build_only=1 ;;
    *)
        echo "usage: $0 [--check] [--build]" >&2
        exit 2
        ;;
    esac
done

# Build toolchain, C libraries and the test framework. No librdkafka-dev: Debian's is 2.0.2;
# scripts/librdkafka.sh builds the pinned 2.12 from source (called by the Makefile), which
# needs the TLS, zlib and zstd headers below and npm to fetch the source with.
PACKAGES=(
    build-essential pkg-config
    libavro-dev libpq-dev libhiredis-dev libjansson-dev
    libcurl4-openssl-dev libmicrohttpd-dev
    libssl-dev zlib1g-dev libzstd-dev
    check
    clang clang-format libclang-rt-14-dev
    python3 python3-venv
    ca-certificates
)
# Any npm already on PATH (e.g. one that came with a newer Node.js) will do.
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
if [ "$build_only" -eq 0 ]; then
    # The local stack (scripts/stack.sh): the servers and their clients, kcat for Kafka
    # probes (it brings Debian's librdkafka1 for itself; bin/activity never links it),
    # procps for pgrep, prometheus for the metrics test (which starts its own on loopback);
    # runuser comes from util-linux, which is essential.
    PACKAGES+=(redis-server redis-tools postgresql postgresql-client kcat procps prometheus)
    # The postgresql-hll extension: host_daily_uniques holds its sketches (README "Daily
    # sketches"); the stack's PostgreSQL 15 loads it from Debian's package.
    PACKAGES+=(postgresql-15-hll)
    # GNU time: `make bench` reports the processor's maximum RSS with it.
    PACKAGES+=(time)
    # Headless Chromium: test_report.sh renders the HTML report in it (console, DOM,
    # screenshot).
    PACKAGES+=(chromium)
    # Kafka runs on the JVM and its jars are fetched with Maven; any java/mvn already on
    # PATH (e.g. a newer JDK) is good enough, so only add Debian's when there is none.
    command -v java >/dev/null 2>&1 || PACKAGES+=(default-jre-headless)
    command -v mvn >/dev/null 2>&1 || PACKAGES+=(maven)
fi

die() {
    echo "deps.sh: error: $*" >&2
    exit 1
}

# `dpkg -s` alone also succeeds for packages that were removed but left config files
# ("deinstall ok config-files"), so compare the full status.
is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

command -v dpkg-query >/dev/null 2>&1 || die "this script supports Debian 12 (dpkg/apt) only"

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    [ "$check_only" -eq 1 ] && echo "deps.sh: all packages present"
    exit 0
fi

if [ "$check_only" -eq 1 ]; then
    echo "deps.sh: missing: ${missing[*]}"
    exit 1
fi

[ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root: sudo $0"

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/activity-deps.XXXXXX.log)
# Quiet on success; on failure show the tail of apt's output, which holds the real reason.
if ! apt-get -q update >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "apt-get update failed (full log: $log)"
fi
if ! apt-get -q install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "apt-get install failed for: ${missing[*]} (full log: $log)"
fi

still=()
for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still+=("$pkg")
done
[ "${#still[@]}" -eq 0 ] || die "still not installed after apt-get: ${still[*]} (log: $log)"
rm -f "$log"
echo "deps.sh: done" >&2
