#!/usr/bin/env bash
# scripts/librdkafka.sh: builds the pinned librdkafka that bin/activity, the unit tests, the
# fuzz and bench binaries link against, into build/librdkafka (the Makefile calls it; so do
# `make test`, `make demo`, `make bench` and the Dockerfile, through `make`). Owns that prefix.
#
# Why from source: Debian 12's librdkafka is 2.0.2 (January 2023). It cannot speak Kafka 4's
# consumer group protocol (KIP-848), and its batch consume call skips offsets around
# rebalances. The registries we reach carry the official librdkafka source only inside
# packages that bundle it; the npm package node-rdkafka 3.6.1 has librdkafka 2.12.0 under
# deps/librdkafka. We fetch it with npm's own client, check the tarball's sha256 against the
# value pinned below, and build the C library only (no C++ binding, no examples).
#
# Cached: build/librdkafka/.pinned holds the sha256 it was built from; when it matches the
# pin this script exits at once. Bump NPM_VERSION and SHA256 together to move.
#
# Usage: scripts/librdkafka.sh [--prefix]   (--prefix: print the install prefix and exit)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PREFIX=$ROOT/build/librdkafka
NPM_PACKAGE=node-rdkafka
NPM_VERSION=3.6.1
SHA256=148f7e7b65c510314c70762d8f1be052c8fe1fdf03a128e6c78083a729a57a30
# RD_KAFKA_VERSION of the bundled source (2.12.0): checked so that a re-pin cannot move
# to another librdkafka line unnoticed.
WANT_VERSION=0x020c

# Features: TLS, SASL PLAIN/SCRAM/OAUTHBEARER (built in, SCRAM needs TLS), and the gzip and
# zstd codecs from the system's libs; lz4 and snappy come bundled. Off: Kerberos (GSSAPI,
# needs Cyrus SASL), OIDC token fetching (libcurl) and syslog, which nothing here uses.
# Each wanted feature is --enable'd, not left at "try", so a missing -dev package fails the
# build instead of silently dropping a codec that a producer may use.
CONFIGURE_FLAGS=(--enable-ssl --enable-zlib --enable-zstd --disable-lz4-ext
    --disable-gssapi --disable-curl --disable-syslog --no-download)

log() { echo "librdkafka.sh: $*" >&2; }
die() {
    echo "librdkafka.sh: error: $*" >&2
    exit 1
}

if [ "${1:-}" = --prefix ]; then
    echo "$PREFIX"
    exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [--prefix]"

built() { [ "$(cat "$PREFIX/.pinned" 2>/dev/null)" = "$SHA256" ] && [ -f "$PREFIX/lib/pkgconfig/rdkafka.pc" ]; }

built && exit 0
mkdir -p "$ROOT/build"
# Two makes (or a make and the Dockerfile) started at once build it once.
exec 9>"$ROOT/build/.librdkafka.lock"
flock -w 900 9 || die "another build holds $ROOT/build/.librdkafka.lock"
built && exit 0

command -v npm >/dev/null || die "npm not found (scripts/deps.sh installs it)"
work=$(mktemp -d "$ROOT/build/librdkafka-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "fetching $NPM_PACKAGE@$NPM_VERSION (librdkafka source) with npm"
if ! (cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >npm.log 2>&1); then
    tail -n 20 "$work/npm.log" >&2
    die "npm could not fetch $NPM_PACKAGE@$NPM_VERSION (is the npm registry reachable?)"
fi
tgz=$work/$NPM_PACKAGE-$NPM_VERSION.tgz
[ -f "$tgz" ] || die "npm pack did not leave $tgz"
got=$(sha256sum "$tgz" | cut -d' ' -f1)
[ "$got" = "$SHA256" ] || die "$tgz: sha256 $got, pinned $SHA256"
tar -xzf "$tgz" -C "$work" package/deps/librdkafka
src=$work/package/deps/librdkafka
grep -q "^#define RD_KAFKA_VERSION *$WANT_VERSION" "$src/src/rdkafka.h" ||
    die "$NPM_PACKAGE@$NPM_VERSION does not bundle librdkafka $WANT_VERSION.x"

log "building librdkafka into $PREFIX (once, about a minute)"
rm -rf "$PREFIX"
# Our own make's job server and flags are not for librdkafka's Makefile.
unset MAKEFLAGS MFLAGS MAKELEVEL
jobs=$(nproc 2>/dev/null || echo 2)
if ! (cd "$src" && ./configure --prefix="$PREFIX" "${CONFIGURE_FLAGS[@]}" &&
    make -C src -j"$jobs" && make -C src install) >"$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log" >&2
    rm -rf "$PREFIX"
    die "building librdkafka failed"
fi
# Static archives are not used (we link the shared library with an rpath).
rm -f "$PREFIX"/lib/librdkafka*.a "$PREFIX"/lib/pkgconfig/rdkafka-static.pc
echo "$SHA256" >"$PREFIX/.pinned"
log "built librdkafka $(PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig pkg-config --modversion rdkafka) in $PREFIX"
