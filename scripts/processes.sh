# shellcheck shell=bash
# scripts/processes.sh: process helpers shared by stack.sh and registry.sh (sourced, not
# run). Each server is found through a pid file and stopped by pid, so that `down` stops
# exactly what `up` started. The sourcing script defines log() and die().

# read_pid FILE: the number on the file's first line (nothing if there is none).
read_pid() {
    if [ -r "$1" ]; then head -n1 "$1" 2>/dev/null | tr -dc '0-9'; fi
    return 0
}

proc_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# wait_gone PID SECONDS: wait for a process to exit; 1 if it is still there.
wait_gone() {
    local pid=$1 i
    for ((i = 0; i < $2 * 10; i++)); do
        proc_alive "$pid" || return 0
        sleep 0.1
    done
    return 1
}

# wait_for_file FILE SECONDS: wait until FILE exists and is not empty (a pid file being
# written by a server starting in the background); 1 if it never appears.
wait_for_file() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# stop_pid NAME PID GRACE: SIGTERM (each server shuts down cleanly on it: Kafka does a
# controlled shutdown, Redis fsyncs its AOF), then SIGKILL if it hangs past GRACE seconds.
stop_pid() {
    local name=$1 pid=$2 grace=$3
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" "$grace"; then
        log "$name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "$name (pid $pid) does not exit"
    fi
}

log_tail() {
    echo "---- last lines of $1 ----" >&2
    tail -n "${2:-40}" "$1" >&2 2>/dev/null || echo "(no log yet)" >&2
    echo "----" >&2
}
