#!/usr/bin/env bash
# scripts/stack.sh: the local stack activity runs against — a real Apache Kafka 4.1 broker
# (KRaft, one combined broker+controller node), Redis and PostgreSQL 15, all on loopback,
# with every byte of state under .stack/ in the repo root (gitignored). No Docker needed;
# docker-compose.yml is the same stack for those who have it.
#
# This script owns .stack/ and the processes it starts there, nothing else: it never
# touches the Debian system services (redis-server on 6379, the "main" PostgreSQL cluster
# on 5432) that the packages may have started.
#
#   scripts/stack.sh up        install missing packages (scripts/deps.sh), start whatever is
#                              not running yet, wait until all three answer real requests
#   scripts/stack.sh down      stop what `up` started (found by pid files), wait for exit
#   scripts/stack.sh env       print the export lines for ACTIVITY_KAFKA_BROKERS,
#                              ACTIVITY_REDIS_URL, ACTIVITY_PG_DSN  (eval "$(stack.sh env)")
#   scripts/stack.sh status    one line per component; exit 0 only if all are up
#   scripts/stack.sh reset     down, then delete all data (keeps the downloaded Kafka jars)
#   scripts/stack.sh pid kafka|redis|pg            print the pid (for kill -9 in fault tests)
#   scripts/stack.sh kafka-topics|kafka-groups ARGS  Kafka's TopicCommand / ConsumerGroupCommand
#   scripts/stack.sh kafka-delete-records ARGS  Kafka's DeleteRecordsCommand (--offset-json-file F)
#                              on the local broker (topics are never auto-created)
#   scripts/stack.sh start-X|stop-X|restart-X      one component, data kept (X: kafka|redis|pg);
#                              `stop-pg immediate` stops PostgreSQL without a checkpoint
#
# Environment (defaults in brackets) — override the ports and the state dir to run a second,
# independent stack next to the first one:
#   ACTIVITY_STACK_DIR [<repo>/.stack]           ACTIVITY_STACK_KAFKA_PORT [19092]
#   ACTIVITY_STACK_KAFKA_CONTROLLER_PORT [kafka port + 1]
#   ACTIVITY_STACK_REDIS_PORT [16379]            ACTIVITY_STACK_PG_PORT [15432]
#   ACTIVITY_STACK_TIMEOUT [120] seconds `up` waits     ACTIVITY_SKIP_DEPS=1 skips deps.sh
#   ACTIVITY_STACK_KAFKA_HEAP [512m]             ACTIVITY_STACK_KAFKA_LIBS [<repo>/.stack/kafka/libs]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
HOST=127.0.0.1
STACK_DIR=$(realpath -m "${ACTIVITY_STACK_DIR:-$ROOT/.stack}")
KAFKA_PORT=${ACTIVITY_STACK_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${ACTIVITY_STACK_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
REDIS_PORT=${ACTIVITY_STACK_REDIS_PORT:-16379}
PG_PORT=${ACTIVITY_STACK_PG_PORT:-15432}
TIMEOUT=${ACTIVITY_STACK_TIMEOUT:-120}
KAFKA_HEAP=${ACTIVITY_STACK_KAFKA_HEAP:-512m}
# The jars are a cache shared by every stack dir of this checkout: a second stack on other
# ports should not download 46 MB again.
KAFKA_LIBS=$(realpath -m "${ACTIVITY_STACK_KAFKA_LIBS:-$ROOT/.stack/kafka/libs}")
KAFKA_POM=$ROOT/scripts/kafka/pom.xml
PG_BIN=${ACTIVITY_STACK_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DB=activity

KAFKA_DIR=$STACK_DIR/kafka
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_PID=$KAFKA_DIR/kafka.pid
KAFKA_LOG=$KAFKA_DIR/kafka.log
REDIS_DIR=$STACK_DIR/redis
REDIS_PID=$REDIS_DIR/redis.pid
REDIS_LOG=$REDIS_DIR/redis.log
# PG_HOME (the data dir's parent, also the unix socket dir) is normally $STACK_DIR/pg, but
# see pg_resolve_home: it may be a symlink to a place the postgres user can reach.
PG_LINK=$STACK_DIR/pg
PG_HOME=$PG_LINK

log() { echo "stack: $*" >&2; }
die() {
    echo "stack: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/processes.sh
source "$ROOT/scripts/processes.sh"

# ---------------------------------------------------------------------------------------
# Process bookkeeping. A pid file alone is not proof: after a reboot or a crash the pid may
# belong to an unrelated process, so each component also checks what the process is.

kafka_pid() {
    local pid
    pid=$(read_pid "$KAFKA_PID")
    proc_alive "$pid" || return 0
    # Our broker is the java process whose command line names our server.properties.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $KAFKA_DIR/server.properties" &&
        echo "$pid"
    return 0
}

redis_pid() {
    local pid
    pid=$(read_pid "$REDIS_PID")
    proc_alive "$pid" || return 0
    # redis-server rewrites its title to "redis-server host:port" but chdirs to its `dir`.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ] &&
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$REDIS_DIR" ] && echo "$pid"
    return 0
}

pg_pid() {
    local pid
    pid=$(read_pid "$PG_HOME/data/postmaster.pid")
    proc_alive "$pid" || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-D $PG_HOME/data" && echo "$pid"
    return 0
}

# port_busy PORT: something (anything) accepts TCP connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }


# Everything that changes state holds this lock, so two `up`s started at once (parallel
# test jobs) do not start two brokers on one data dir. The lock is fd 9: every daemon is
# started with `9>&-`, or it would inherit the fd and hold the lock for its whole life.
take_lock() {
    mkdir -p "$STACK_DIR"
    exec 9>"$STACK_DIR/.lock"
    flock -w 300 9 || die "another stack.sh holds $STACK_DIR/.lock"
}

# ---------------------------------------------------------------------------------------
# Kafka

# The broker jars come from Maven Central through scripts/kafka/pom.xml. The cache is keyed
# on the pom's checksum, and a fetch goes to a temporary dir first, so an interrupted
# download or a version bump never leaves a mixed classpath behind.
kafka_libs_current() {
    [ "$(cat "$KAFKA_LIBS/.pom.sha256" 2>/dev/null)" = "$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)" ] &&
        compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null
}

kafka_fetch_libs() {
    kafka_libs_current && return 0
    command -v mvn >/dev/null || die "mvn not found (scripts/deps.sh installs it)"
    log "fetching Kafka broker jars with Maven (once)"
    local tmp=$KAFKA_LIBS.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp.log" 2>&1; then
        log_tail "$tmp.log"
        rm -rf "$tmp"
        die "Maven could not fetch the Kafka jars (is Maven Central reachable?)"
    fi
    sha256sum "$KAFKA_POM" | cut -d' ' -f1 >"$tmp/.pom.sha256"
    rm -rf "$KAFKA_LIBS" "$tmp.log"
    mv "$tmp" "$KAFKA_LIBS"
}

# For the one-shot tools (StorageTool): warnings only, on stderr, so stdout stays clean.
kafka_java() {
    java "-Dlog4j2.configurationFile=$KAFKA_DIR/tools-log4j2.properties" -cp "$KAFKA_LIBS/*" "$@"
}

kafka_write_config() {
    mkdir -p "$KAFKA_DATA"
    cat >"$KAFKA_DIR/server.properties" <<EOF
# Generated by scripts/stack.sh on every start; edit the script, not this file.
# One node that is both broker and controller (KRaft, no ZooKeeper).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

# Topics are created explicitly (a typo must not silently create a topic); 6 partitions
# by default so tests exercise several partitions per consumer.
num.partitions=6
auto.create.topics.enable=false
# A single node: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# The first consumer group (and transactional producer) creates these internal topics;
# 6 partitions instead of 50 makes that first join noticeably faster on 2 cores.
offsets.topic.num.partitions=6
transaction.state.log.num.partitions=6
# Groups form at once instead of waiting 3 s for more members (tests start one consumer).
group.initial.rebalance.delay.ms=0
# Keep every record forever: tests replay topics from offset 0.
log.retention.hours=-1
# After any restart (clean or kill -9) the controller rejects the new broker incarnation
# (DUPLICATE_BROKER_REGISTRATION) until the old one's session times out: 9 s by default,
# which made every restart take ~12 s. 4 s still leaves room for GC pauses on a busy host.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
# Groups on the consumer protocol (KIP-848, group.protocol=consumer) take their session
# timeout and heartbeat interval from the broker, not the client: 6 s / 1 s, the values
# test_consumer_group.sh gives classic members with -X, so a dead or frozen member of either
# protocol loses its partitions as fast (the broker defaults are 45 s / 5 s).
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.heartbeat.interval.ms=1000
EOF
    # Log4j 2 properties format (Kafka 4 dropped log4j 1.2).
    cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
# Generated by scripts/stack.sh. Everything goes to stdout, which stack.sh appends to
# kafka.log (so JVM crash messages land in the same file).
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
logger.request.name=kafka.request.logger
logger.request.level=WARN
logger.state.name=state.change.logger
logger.state.level=WARN
logger.cleaner.name=kafka.log.LogCleaner
logger.cleaner.level=WARN
EOF
    cat >"$KAFKA_DIR/tools-log4j2.properties" <<'EOF'
appender.stderr.type=Console
appender.stderr.name=STDERR
appender.stderr.target=SYSTEM_ERR
appender.stderr.layout.type=PatternLayout
appender.stderr.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.stderr.ref=STDERR
EOF
}

kafka_start() {
    [ -n "$(kafka_pid)" ] && return 0
    port_busy "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process stack.sh did not start (ss -ltnp)"
    port_busy "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT is taken by a process stack.sh did not start (ss -ltnp)"
    command -v java >/dev/null || die "java not found (scripts/deps.sh installs it)"
    kafka_fetch_libs
    kafka_write_config
    # KRaft needs its log dir formatted once with a cluster id; keep the id in a file so a
    # re-format after a partial failure uses the same one.
    if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
        [ -s "$KAFKA_DIR/cluster.id" ] ||
            kafka_java kafka.tools.StorageTool random-uuid >"$KAFKA_DIR/cluster.id"
        if ! kafka_java kafka.tools.StorageTool format --ignore-formatted \
            -t "$(cat "$KAFKA_DIR/cluster.id")" -c "$KAFKA_DIR/server.properties" \
            >>"$KAFKA_LOG" 2>&1; then
            log_tail "$KAFKA_LOG"
            die "formatting the Kafka log dir failed"
        fi
    fi
    log "starting Kafka on $HOST:$KAFKA_PORT"
    # setsid: the broker gets its own session, so it outlives this script and the terminal
    # or job that ran it. The inner shell records its own pid, then becomes java (exec).
    # shellcheck disable=SC2016 # $$ and $@ are for the inner shell
    KAFKA_PID=$KAFKA_PID setsid bash -c 'echo $$ >"$KAFKA_PID"; exec "$@"' kafka \
        java "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
        </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
    # Wait for the pid file so that kafka_pid works right after this returns.
    wait_for_file "$KAFKA_PID" 5 || true
}

kafka_ready() {
    # A real metadata request: succeeds once the broker serves clients, and shows broker 1.
    timeout 15 kcat -b "$HOST:$KAFKA_PORT" -L -m 5 2>/dev/null | grep -q "broker 1 at"
}

kafka_stop() {
    local pid
    pid=$(kafka_pid)
    [ -z "$pid" ] && { rm -f "$KAFKA_PID"; return 0; }
    log "stopping Kafka (pid $pid)"
    stop_pid kafka "$pid" 60
    rm -f "$KAFKA_PID"
}

# ---------------------------------------------------------------------------------------
# Redis

redis_start() {
    [ -n "$(redis_pid)" ] && return 0
    port_busy "$REDIS_PORT" && die "port $REDIS_PORT is taken by a process stack.sh did not start (ss -ltnp)"
    mkdir -p "$REDIS_DIR"
    cat >"$REDIS_DIR/redis.conf" <<EOF
# Generated by scripts/stack.sh on every start; edit the script, not this file.
bind $HOST
port $REDIS_PORT
daemonize yes
pidfile $REDIS_PID
logfile $REDIS_LOG
dir $REDIS_DIR
# Durability through the AOF only (fsync once a second, as in production); no RDB
# snapshots, whose fork would add latency spikes to benchmarks.
save ""
appendonly yes
appendfsync everysec
# Small hashes and sets stay in their compact encodings (listpack / intset).
hash-max-listpack-entries 512
set-max-intset-entries 512
EOF
    log "starting Redis on $HOST:$REDIS_PORT"
    rm -f "$REDIS_PID"
    redis-server "$REDIS_DIR/redis.conf" </dev/null >>"$REDIS_LOG" 2>&1 9>&- ||
        { log_tail "$REDIS_LOG"; die "redis-server failed to start"; }
}

redis_ready() { [ "$(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_stop() {
    local pid
    pid=$(redis_pid)
    [ -z "$pid" ] && return 0
    log "stopping Redis (pid $pid)"
    stop_pid redis "$pid" 30
}

# ---------------------------------------------------------------------------------------
# PostgreSQL. initdb and pg_ctl refuse to run as root, and everything here runs as root, so
# the server runs as the `postgres` user that Debian's package creates.

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        # From /: postgres may not be allowed into the caller's working directory.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@" # not root: run as whoever we are
    fi
}

# The postgres user must reach PG_HOME through every parent dir, and the socket path
# (PG_HOME/.s.PGSQL.PORT) must fit in 107 bytes. A clone under /root (mode 700) or a very
# deep path breaks one of these; then the data lives under /var/tmp and .stack/pg is a
# symlink to it, so everything else (reset, paths in messages) stays the same.
pg_resolve_home() {
    if [ -L "$PG_LINK" ]; then
        PG_HOME=$(readlink -f "$PG_LINK")
        return 0
    fi
    PG_HOME=$PG_LINK
    [ "${1:-}" = create ] || return 0
    mkdir -p "$PG_HOME"
    if [ "$(id -u)" -eq 0 ]; then
        chmod 755 "$STACK_DIR"
        chown postgres:postgres "$PG_HOME"
        chmod 755 "$PG_HOME"
    fi
    local sock="$PG_HOME/.s.PGSQL.$PG_PORT"
    if as_pg test -w "$PG_HOME" && [ "${#sock}" -le 100 ]; then
        return 0
    fi
    [ -e "$PG_HOME/data" ] && die "postgres cannot use $PG_HOME (unreachable or path too long)"
    local alt
    alt=/var/tmp/activity-stack-$(echo "$STACK_DIR" | sha256sum | cut -c1-12)/pg
    log "postgres cannot use $PG_HOME (parent dir not traversable or socket path too long); using $alt"
    rmdir "$PG_HOME"
    mkdir -p "$alt"
    chmod 755 "$(dirname "$alt")"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$alt"
    ln -s "$alt" "$PG_LINK"
    PG_HOME=$alt
}

pg_start() {
    pg_resolve_home create
    [ -n "$(pg_pid)" ] && return 0
    port_busy "$PG_PORT" && die "port $PG_PORT is taken by a process stack.sh did not start (ss -ltnp)"
    [ -x "$PG_BIN/pg_ctl" ] || die "$PG_BIN/pg_ctl not found (scripts/deps.sh installs postgresql)"
    local data=$PG_HOME/data
    if [ ! -f "$data/PG_VERSION" ]; then
        log "initialising PostgreSQL data dir (once)"
        rm -rf "$data"
        # trust auth: the server only listens on loopback and on a socket under .stack/.
        if ! as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$PG_HOME/initdb.log" 2>&1; then
            log_tail "$PG_HOME/initdb.log"
            die "initdb failed"
        fi
        echo "include_if_exists = 'stack.conf'" >>"$data/postgresql.conf"
    fi
    # Rewritten on every start so port overrides take effect.
    cat >"$data/stack.conf" <<EOF
# Generated by scripts/stack.sh on every start; edit the script, not this file.
port = $PG_PORT
listen_addresses = '$HOST'
unix_socket_directories = '$PG_HOME'
shared_buffers = 128MB
max_connections = 100
# Keep fsync on: crash tests must see real durability. Log to stderr (pg_ctl -l file).
logging_collector = off
log_line_prefix = '%m [%p] %d '
EOF
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$data/stack.conf"
    log "starting PostgreSQL on $HOST:$PG_PORT"
    # -W: do not wait here; `up` waits for all three components together.
    if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$PG_HOME/postgres.log" -W start </dev/null >/dev/null 9>&-; then
        log_tail "$PG_HOME/postgres.log"
        die "pg_ctl start failed"
    fi
}

pg_ready() {
    timeout 5 "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres
}

# The database is created once, after the server answers.
pg_create_db() {
    local have
    have=$("$PG_BIN/psql" -X -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -tA \
        -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")
    [ "$have" = 1 ] && return 0
    log "creating database $PG_DB"
    "$PG_BIN/psql" -X -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
}

# pg_stop [fast|immediate]: fast = clean shutdown; immediate = like a crash (recovery on
# the next start), for fault tests.
pg_stop() {
    pg_resolve_home
    local pid mode=${1:-fast}
    pid=$(pg_pid)
    [ -z "$pid" ] && return 0
    log "stopping PostgreSQL (pid $pid, mode $mode)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_HOME/data" -m "$mode" -w -t 60 stop >/dev/null ||
        stop_pid postgres "$pid" 30
    wait_gone "$pid" 30 || die "PostgreSQL (pid $pid) does not exit"
}

# ---------------------------------------------------------------------------------------
# Waiting

# wait_ready COMPONENT...: poll each component until it answers, up to $TIMEOUT seconds in
# all. A component whose process died fails at once, with the tail of its log.
wait_ready() {
    local deadline=$((SECONDS + TIMEOUT)) started=$SECONDS pending=("$@") still c
    while [ "${#pending[@]}" -gt 0 ]; do
        still=()
        for c in "${pending[@]}"; do
            if "${c}_ready"; then
                continue
            fi
            # Give daemons a few seconds to write their pid files before calling them dead.
            if [ $((SECONDS - started)) -ge 5 ] && [ -z "$("${c}_pid")" ]; then
                log_tail "$(component_log "$c")"
                die "$c exited during startup (log: $(component_log "$c"))"
            fi
            still+=("$c")
        done
        pending=("${still[@]+"${still[@]}"}")
        [ "${#pending[@]}" -eq 0 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for c in "${pending[@]}"; do log_tail "$(component_log "$c")"; done
            die "not ready after ${TIMEOUT}s: ${pending[*]}"
        fi
        sleep 0.5
    done
}

component_log() {
    case $1 in
    kafka) echo "$KAFKA_LOG" ;;
    redis) echo "$REDIS_LOG" ;;
    pg) echo "$PG_HOME/postgres.log" ;;
    esac
}

# ---------------------------------------------------------------------------------------
# Commands

cmd_env() {
    echo "export ACTIVITY_KAFKA_BROKERS=$HOST:$KAFKA_PORT"
    echo "export ACTIVITY_REDIS_URL=redis://$HOST:$REDIS_PORT/0"
    echo "export ACTIVITY_PG_DSN=postgresql://postgres@$HOST:$PG_PORT/$PG_DB"
}

cmd_up() {
    local t0=$SECONDS
    if [ "${ACTIVITY_SKIP_DEPS:-0}" != 1 ]; then
        "$ROOT/scripts/deps.sh"
    fi
    take_lock
    # Quick starters first, so PostgreSQL and Redis boot while Maven/the JVM work.
    pg_start
    redis_start
    kafka_start
    wait_ready pg redis kafka
    pg_create_db
    log "up in $((SECONDS - t0))s: kafka $HOST:$KAFKA_PORT, redis $HOST:$REDIS_PORT, postgres $HOST:$PG_PORT"
}

cmd_down() {
    take_lock
    # Kafka first: it is the slowest to stop, and nothing depends on it stopping last.
    kafka_stop
    redis_stop
    pg_stop fast
}

cmd_status() {
    pg_resolve_home
    local c pid state addr all=0
    for c in kafka redis pg; do
        pid=$("${c}_pid")
        case $c in
        kafka) addr=$HOST:$KAFKA_PORT ;;
        redis) addr=$HOST:$REDIS_PORT ;;
        pg) addr=$HOST:$PG_PORT ;;
        esac
        if [ -z "$pid" ]; then
            state=down
        elif "${c}_ready"; then
            state=up
        else
            state=starting # running, but not answering requests (yet)
        fi
        [ "$state" = up ] || all=1
        printf '%-6s %-9s %-11s %s\n' "$c" "$state" "${pid:+pid $pid}" "$addr"
    done
    return "$all"
}

cmd_reset() {
    cmd_down
    pg_resolve_home
    log "deleting stack data under $STACK_DIR (keeping $KAFKA_LIBS)"
    if [ -L "$PG_LINK" ]; then
        rm -rf "$PG_HOME"
        # the /var/tmp/activity-stack-<hash> dir that pg_resolve_home made for it
        rmdir "$(dirname "$PG_HOME")" 2>/dev/null || true
    fi
    rm -rf "$PG_LINK" "$REDIS_DIR" "$KAFKA_DATA" "$KAFKA_DIR/cluster.id" "$KAFKA_LOG" \
        "$KAFKA_DIR"/*.properties "$KAFKA_PID"
}

cmd_pid() {
    pg_resolve_home
    case ${1:-} in
    kafka | redis | pg) "${1}_pid" ;;
    *) die "usage: stack.sh pid kafka|redis|pg" ;;
    esac
}

# kafka-topics / kafka-groups ARGS...: Kafka's own admin tools against the local broker,
# e.g. `stack.sh kafka-topics --create --topic activity.web_events --partitions 6`
# (topics are not auto-created), `stack.sh kafka-groups --describe --all-groups`.
cmd_kafka_tool() {
    local class=$1
    shift
    if ! kafka_libs_current; then
        # Never swap the jars under a running broker: it loads classes lazily from them.
        [ -n "$(kafka_pid)" ] && die "scripts/kafka/pom.xml changed; run: scripts/stack.sh restart-kafka"
        kafka_fetch_libs
    fi
    mkdir -p "$KAFKA_DIR"
    [ -f "$KAFKA_DIR/tools-log4j2.properties" ] || kafka_write_config
    kafka_java "$class" --bootstrap-server "$HOST:$KAFKA_PORT" "$@"
}

# start-X / stop-X / restart-X: one component, keeping its data (fault tests).
cmd_component() {
    local action=$1 c=$2
    shift 2
    take_lock
    pg_resolve_home
    case $action in
    stop) "${c}_stop" "$@" ;;
    start)
        "${c}_start"
        wait_ready "$c"
        ;;
    restart)
        "${c}_stop" "$@"
        "${c}_start"
        wait_ready "$c"
        ;;
    esac
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    pid) cmd_pid "$@" ;;
    kafka-topics) cmd_kafka_tool org.apache.kafka.tools.TopicCommand "$@" ;;
    kafka-groups) cmd_kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@" ;;
    kafka-delete-records) cmd_kafka_tool org.apache.kafka.tools.DeleteRecordsCommand "$@" ;;
    start-kafka | stop-kafka | restart-kafka | start-redis | stop-redis | restart-redis | \
        start-pg | stop-pg | restart-pg)
        cmd_component "${cmd%%-*}" "${cmd#*-}" "$@"
        ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
