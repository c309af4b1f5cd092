#!/usr/bin/env bash
# ports.sh — are these loopback ports free, and if not, which process holds each?
#
# Usage:
#     scripts/ports.sh NAME=PORT ...     # e.g. scripts/ports.sh portal=7071 azurite-blob=10000
#
# Exits 0 when every port is free. Otherwise prints one line per taken port on stderr, e.g.
#     port 7071 (portal) is taken by pid 4242: target/debug/funchost --port 7071 ...
# and exits 1 (2 for a port that is not a number from 1 to 65535, or one named twice).
# scripts/run and scripts/azurite.sh ask it before they start anything, so a second portal
# stops with this message instead of dying half-started on "Address already in use".
#
# A port is taken when something accepts connections on 127.0.0.1:PORT, the address the
# runner and Azurite bind (bash's /dev/tcp, no tool needed). Which process holds it is asked
# of `ss -ltnp`, else read from /proc/net/tcp{,6} and /proc/*/fd; when neither can tell (a
# process of another user, no /proc), the line says so and the port is still reported.
set -euo pipefail

# Whether something accepts connections on 127.0.0.1:$1. A connection that neither opens nor
# is refused within 2 s (a full backlog) counts as taken too.
port_is_taken() {
    local status=0
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null || status=$?
    [[ $status -eq 0 || $status -eq 124 ]]
}

# The pid listening on port $1 according to `ss -ltnp`; nothing when ss is missing or does
# not show the process.
holder_from_ss() {
    command -v ss >/dev/null || return 0
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true
}

# The pid listening on port $1 according to /proc: the listening socket's inode in
# /proc/net/tcp{,6} (state 0A, local port in hex), then the process with an fd on it.
holder_from_proc() {
    local hex inode fd
    hex="$(printf '%04X' "$1")"
    for inode in $(awk -v port=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == port { print $10 }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
        fd="$(find /proc/[0-9]*/fd -lname "socket:\[$inode\]" 2>/dev/null | head -n 1 || true)"
        if [[ -n "$fd" ]]; then
            fd="${fd#/proc/}"
            echo "${fd%%/*}"
            return 0
        fi
    done
}

# "pid N: its command line" (cut short), or what could not be told.
describe_holder() {
    local port="$1" pid cmdline
    pid="$(holder_from_ss "$port")"
    [[ -n "$pid" ]] || pid="$(holder_from_proc "$port")"
    if [[ -z "$pid" ]]; then
        echo "a process this user cannot see (try: sudo ss -ltnp 'sport = :$port')"
        return 0
    fi
    # Arguments are separated by NULs; any control character would steer the terminal.
    cmdline="$(LC_ALL=C tr -c '[:print:]' ' ' <"/proc/$pid/cmdline" 2>/dev/null | tr -s ' ' | cut -c 1-160 || true)"
    [[ -n "${cmdline// /}" ]] || cmdline="$(LC_ALL=C tr -c '[:print:]' ' ' <"/proc/$pid/comm" 2>/dev/null || true)"
    [[ -n "${cmdline// /}" ]] || cmdline='?'
    echo "pid $pid: ${cmdline% }"
}

main() {
    local pair name port taken=0
    local -A seen=()
    for pair in "$@"; do
        name="${pair%%=*}"
        port="${pair#*=}"
        if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
            echo "port '$port' ($name) is not a port number (1-65535)" >&2
            return 2
        fi
        port=$((10#$port))
        if [[ -n "${seen[$port]:-}" ]]; then
            echo "port $port is given twice: for ${seen[$port]} and for $name" >&2
            return 2
        fi
        seen[$port]="$name"
    done
    for pair in "$@"; do
        name="${pair%%=*}"
        port=$((10#${pair#*=}))
        if port_is_taken "$port"; then
            echo "port $port ($name) is taken by $(describe_holder "$port")" >&2
            taken=1
        fi
    done
    return "$taken"
}

# Sourced (by a test), it only defines the functions.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
