#!/usr/bin/env bash
# check_layers.sh LAYER... — fails on an include that points up the layer order, or
# on hiredis included outside the Redis state module.
#
# The layers are given bottom first (the Makefile's LAYERS: lib consumers processors
# sinks cmd). A file may include headers of its own layer and of the layers below it;
# an include of a higher layer's header is printed with its file and line, and the
# script exits 1. Run by `make check-layers` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A rank
i=0
for layer in "$@"; do
    rank[$layer]=$i
    i=$((i + 1))
done
bad=0
for layer in "$@"; do
    while IFS=: read -r file line text; do
        target=$(sed -n 's/^#include "\([^/"]*\)\/.*/\1/p' <<<"$text")
        [ -n "$target" ] && [ -n "${rank[$target]+x}" ] || continue
        if [ "${rank[$target]}" -gt "${rank[$layer]}" ]; then
            echo "check-layers: $file:$line: $layer/ includes $target/ (a higher layer): $text" >&2
            bad=1
        fi
    done < <(grep -n '^#include "' "$layer"/*.[ch] /dev/null || true)
done
# hiredis stays inside the Redis state module: its connection (redis_conn.c), what
# writes state (state_apply.c), the flush's reads (state_read.c) and rehydration
# (state_rehydrate.c) share the private
# header redis_conn_impl.h (and state_keys.h, the key names); everything else sees plain
# C values (ARCHITECTURE.md).
redis_private='^processors/(redis_conn\.c|state_apply\.c|state_read\.c|state_rehydrate\.c|redis_conn_impl\.h|state_keys\.h)$'
while IFS=: read -r file line text; do
    [[ $file =~ $redis_private ]] && continue
    echo "check-layers: $file:$line: only the Redis state module may include hiredis, redis_conn_impl.h or state_keys.h: $text" >&2
    bad=1
done < <(grep -nE '^#include [<"](hiredis/|processors/(redis_conn_impl|state_keys)\.h)' "$@" /dev/null \
    --include='*.[ch]' -r || true)
if [ "$bad" -ne 0 ]; then
    echo "check-layers: upward includes or hiredis outside the Redis state module found (order, bottom first: $*)" >&2
    exit 1
fi
echo "check-layers: every include points down ($*); hiredis only in the Redis state module"
