# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034 # the variables are used by the scripts that source this
# Paths, ports and process helpers shared by start.sh and stop.sh (sourced, not run).
#
#   PORTCULLIS_PORT_BASE  default 18000; ports are base + the offsets in docs/ARCHITECTURE.md
#   PORTCULLIS_RUN_DIR    default deploy/local/run (certs, secrets, config, logs, pids, data)
#   PORTCULLIS_BIN        default build/debug/bin

# nginx and redis-server live in /usr/sbin on Debian, outside a normal user's PATH
PATH=$PATH:/usr/sbin:/sbin

local_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$local_dir/../.." && pwd)

port_base=${PORTCULLIS_PORT_BASE:-18000}
case "$port_base" in
    '' | *[!0-9]*)
        echo "PORTCULLIS_PORT_BASE must be a number" >&2
        exit 2
        ;;
esac
if [ "$port_base" -lt 1024 ] || [ "$port_base" -gt 64535 ]; then
    echo "PORTCULLIS_PORT_BASE must lie between 1024 and 64535" >&2
    exit 2
fi

run_dir=${PORTCULLIS_RUN_DIR:-$local_dir/run}
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)
bin_dir=${PORTCULLIS_BIN:-$repo_dir/build/debug/bin}
case "$bin_dir" in
    /*) ;;
    *) bin_dir=$repo_dir/$bin_dir ;;
esac

nginx_port=$((port_base + 443))
authn_port=$((port_base + 1))
authz_a_port=$((port_base + 2))
authz_b_port=$((port_base + 3))
broker_port=$((port_base + 4))
redis_port=$((port_base + 379))
idp_port=$((port_base + 900))
app_port=$((port_base + 80))

pid_dir=$run_dir/pids
log_dir=$run_dir/logs

# every process in start order; stop.sh goes the other way
services=(redis dev-idp sample-app databroker authenticate authorize-a authorize-b nginx)

# a word of each process' command line, so that a stale pid file never makes us signal an
# unrelated process that reuses the pid
service_marker() {
    case "$1" in
        redis) echo "redis-server" ;;
        dev-idp) echo "server.mjs" ;;
        sample-app) echo "app.mjs" ;;
        databroker) echo "portcullis-databroker" ;;
        authenticate) echo "portcullis-authenticate" ;;
        authorize-a | authorize-b) echo "portcullis-authorize" ;;
        nginx) echo "nginx" ;;
        *) echo "?" ;;
    esac
}

# prints the pid of a running service of ours, or nothing
service_pid() {
    local file=$pid_dir/$1.pid pid cmdline
    if [ ! -s "$file" ]; then
        return 0
    fi
    pid=$(cat "$file")
    case "$pid" in
        '' | *[!0-9]*) return 0 ;;
    esac
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
    case "$cmdline" in
        *"$(service_marker "$1")"*) echo "$pid" ;;
    esac
}

# true while the process exists and is not a zombie (start.sh's own children stay zombies until
# it exits)
process_alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null || true)
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# start.sh runs each service with setsid, so its process group holds it and its children
# (nginx's workers): signal the group, or the process alone when it leads no group
signal_service() {
    local signal=$1 pid=$2 pgid
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
    if [ "$pgid" = "$pid" ]; then
        kill "-$signal" -- "-$pid" 2>/dev/null || true
    else
        kill "-$signal" "$pid" 2>/dev/null || true
    fi
}

# stops every service that has a pid file: TERM, then KILL what is left after 5 s
stop_services() {
    local name pid i
    local -a alive=()
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do
        name=${services[$i]}
        pid=$(service_pid "$name")
        if [ -n "$pid" ]; then
            signal_service TERM "$pid"
            alive+=("$name:$pid")
        fi
    done

    for ((i = 0; i < 50 && ${#alive[@]} > 0; i++)); do
        local -a still=()
        local entry
        for entry in "${alive[@]}"; do
            if process_alive "${entry#*:}"; then
                still+=("$entry")
            fi
        done
        alive=("${still[@]}")
        if [ "${#alive[@]}" -gt 0 ]; then
            sleep 0.1
        fi
    done

    local entry
    for entry in "${alive[@]}"; do
        echo "${entry%%:*} (pid ${entry#*:}) did not stop in 5 s: killing it" >&2
        signal_service KILL "${entry#*:}"
    done
    for name in "${services[@]}"; do
        rm -f "$pid_dir/$name.pid"
    done
}
