#!/usr/bin/env bash
# scripts/registry.sh: a real schema registry for `activity --schema-registry` and its tests:
# Apicurio Registry (the server distribution published on Maven Central, fetched with Maven
# through scripts/registry/pom.xml), which serves the Confluent Schema Registry REST API
# under /apis/ccompat/v7. It runs on loopback as one JVM, storing its schemas in an H2
# database file, so ids keep their meaning across restarts (records already in Kafka stay
# decodable). No Kafka, no Docker. Every byte lives under .stack/registry/ (gitignored).
#
#   scripts/registry.sh up       fetch the server once, start it unless it runs, wait until
#                                the API answers (idempotent; safe to run concurrently)
#   scripts/registry.sh down     stop what `up` started (found by its pid file)
#   scripts/registry.sh url      print the base URL for --schema-registry
#   scripts/registry.sh status   exit 0 only if it runs and answers
#   scripts/registry.sh reset    down, then delete its schemas (keeps the download)
#
# Environment (defaults in brackets):
#   ACTIVITY_REGISTRY_PORT [18081]            ACTIVITY_REGISTRY_DIR [<repo>/.stack/registry]
#   ACTIVITY_REGISTRY_TIMEOUT [120] s `up` waits    ACTIVITY_REGISTRY_HEAP [384m]
#   ACTIVITY_REGISTRY_APP [<repo>/.stack/registry/app]  the unpacked server (a cache shared
#                                             by every ACTIVITY_REGISTRY_DIR of the checkout)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
HOST=127.0.0.1
PORT=${ACTIVITY_REGISTRY_PORT:-18081}
DIR=$(realpath -m "${ACTIVITY_REGISTRY_DIR:-$ROOT/.stack/registry}")
APP=$(realpath -m "${ACTIVITY_REGISTRY_APP:-$ROOT/.stack/registry/app}")
TIMEOUT=${ACTIVITY_REGISTRY_TIMEOUT:-120}
HEAP=${ACTIVITY_REGISTRY_HEAP:-384m}
POM=$ROOT/scripts/registry/pom.xml
PID_FILE=$DIR/registry.pid
LOG=$DIR/registry.log
URL=http://$HOST:$PORT/apis/ccompat/v7

log() { echo "registry: $*" >&2; }
die() {
    echo "registry: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/processes.sh
source "$ROOT/scripts/processes.sh"

# The pid of our server: the pid file's process, if it is the java whose command line
# names this registry dir (after a reboot the pid may belong to something else).
registry_pid() {
    local pid
    pid=$(read_pid "$PID_FILE")
    proc_alive "$pid" || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-Dactivity.registry.dir=$DIR " &&
        echo "$pid"
    return 0
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

# A real API request: the subject list answers 200 once storage is up.
ready() { curl -sf -m 5 -o /dev/null "$URL/subjects"; }

take_lock() {
    mkdir -p "$DIR"
    exec 9>"$DIR/.lock"
    flock -w 300 9 || die "another registry.sh holds $DIR/.lock"
}

# The server comes from Maven Central as one tar.gz (runner jar + lib/); the unpacked copy
# is keyed on the pom's checksum and unpacked into a temporary dir first, so an interrupted
# fetch or a version bump never leaves a half-unpacked server behind.
app_jar() { compgen -G "$APP/apicurio-registry-app-*-runner.jar" | head -n1; }

fetch_app() {
    [ "$(cat "$APP/.pom.sha256" 2>/dev/null)" = "$(sha256sum "$POM" | cut -d' ' -f1)" ] &&
        [ -n "$(app_jar)" ] && return 0
    command -v mvn >/dev/null || die "mvn not found (scripts/deps.sh installs it)"
    log "fetching Apicurio Registry with Maven (once, ~140 MB)"
    local tmp=$APP.tmp.$$
    rm -rf "$tmp" "$tmp.log"
    mkdir -p "$tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:unpack -Dregistry.dir="$tmp" \
        >"$tmp.log" 2>&1; then
        log_tail "$tmp.log"
        rm -rf "$tmp"
        die "Maven could not fetch Apicurio Registry (is Maven Central reachable?)"
    fi
    rm -rf "$tmp/.markers" "$tmp.log"
    compgen -G "$tmp/apicurio-registry-app-*-runner.jar" >/dev/null ||
        die "the unpacked Apicurio distribution has no runner jar: $(ls "$tmp")"
    sha256sum "$POM" | cut -d' ' -f1 >"$tmp/.pom.sha256"
    rm -rf "$APP"
    mv "$tmp" "$APP"
}

start() {
    [ -n "$(registry_pid)" ] && return 0
    port_busy && die "port $PORT is taken by a process registry.sh did not start (ss -ltnp)"
    command -v java >/dev/null || die "java not found (scripts/deps.sh installs it)"
    command -v curl >/dev/null || die "curl not found"
    fetch_app
    mkdir -p "$DIR/data"
    log "starting Apicurio Registry on $HOST:$PORT"
    # setsid: the server outlives this script; the inner shell records its pid, then
    # becomes java. Storage: H2 in a file (the "in-memory" storage of the distribution is
    # H2 too; only the JDBC URL differs). The access log names each request and its
    # client, so a test can see what activity asked.
    # The subshell drops fd 9 (the lock) first: it becomes the server, which must not hold
    # the lock for its whole life.
    # shellcheck disable=SC2016 # $$ and $@ are for the inner shell
    (
        exec 9>&- </dev/null >>"$LOG" 2>&1
        cd "$DIR"
        export PID_FILE HTTP_PORT=$PORT
        exec setsid bash -c 'echo $$ >"$PID_FILE"; exec "$@"' registry \
            java "-Xmx$HEAP" -XX:+UseSerialGC -Djava.awt.headless=true \
            "-Dactivity.registry.dir=$DIR" \
            "-Dquarkus.http.host=$HOST" "-Dquarkus.http.port=$PORT" \
            "-Dquarkus.datasource.jdbc.url=jdbc:h2:file:$DIR/data/registry" \
            -Dquarkus.http.access-log.enabled=true -Dquarkus.http.access-log.log-to-file=true \
            "-Dquarkus.http.access-log.log-directory=$DIR" \
            -Dquarkus.http.access-log.base-file-name=access \
            '-Dquarkus.http.access-log.pattern=%h %t "%r" %s %b "%{i,User-Agent}"' \
            -Dquarkus.log.console.color=false \
            -jar "$(app_jar)"
    ) &
    wait_for_file "$PID_FILE" 5 || true
}

wait_ready() {
    local t0=$SECONDS
    while ! ready; do
        if [ -z "$(registry_pid)" ]; then
            log_tail "$LOG"
            die "the registry exited during startup"
        fi
        ((SECONDS - t0 < TIMEOUT)) || {
            log_tail "$LOG"
            die "the registry did not answer on $URL within ${TIMEOUT}s"
        }
        sleep 0.2
    done
}

stop() {
    local pid
    pid=$(registry_pid)
    [ -z "$pid" ] && { rm -f "$PID_FILE"; return 0; }
    log "stopping Apicurio Registry (pid $pid)"
    stop_pid "Apicurio Registry" "$pid" 30
    rm -f "$PID_FILE"
}

case ${1:-} in
up)
    take_lock
    t0=${EPOCHREALTIME/./}
    start
    wait_ready
    ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
    log "up at $URL ($((ms / 1000)).$((ms % 1000 / 100)) s)"
    ;;
down)
    take_lock
    stop
    ;;
url) echo "$URL" ;;
status)
    if [ -n "$(registry_pid)" ] && ready; then
        echo "registry: up at $URL (pid $(registry_pid))"
    else
        echo "registry: down"
        exit 1
    fi
    ;;
pid) registry_pid ;;
reset)
    take_lock
    stop
    rm -rf "$DIR/data" "$LOG" "$DIR"/access*.log
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
