#!/usr/bin/env bash
# test_client_version.sh — bin/activity runs on the pinned librdkafka that
# scripts/librdkafka.sh built (never Debian's 2.0.2, which may be installed
# for kcat): `activity --version` names the version of the pinned build, and
# the dynamic loader resolves librdkafka to that build's prefix.
source "$(dirname "$0")/lib.sh"

rdk_prefix=$("$ROOT/scripts/librdkafka.sh" --prefix)
want=$(PKG_CONFIG_PATH=$rdk_prefix/lib/pkgconfig pkg-config --modversion rdkafka)
case $want in 2.1[2-9].* | 2.[2-9][0-9].*) ;; *) fail "pinned build reports librdkafka '$want'" ;; esac
line=$("$ACTIVITY" --version)
say "$line"
[[ $line == "activity "*" (librdkafka $want)" ]] || fail "--version printed '$line', want librdkafka $want"
loaded=$(ldd "$ACTIVITY" | awk '$1 == "librdkafka.so.1" { print $3 }')
[ "$loaded" = "$rdk_prefix/lib/librdkafka.so.1" ] || fail "librdkafka resolves to '$loaded', not $rdk_prefix/lib"
say "ok"
