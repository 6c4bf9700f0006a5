#!/usr/bin/env bash
# Stops exactly the processes localstack/up.sh started (by recorded PID and command line, each
# with its whole process group): SIGTERM, then SIGKILL after 15 s. Logs and data stay in
# localstack/.run/; pass --clean to delete them too.
set -euo pipefail
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for name in "${SERVICES[@]}"; do
    if ! pid=$(live_pid "$name"); then
        rm -f "$(pid_file "$name")"
        continue
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
        log "$name (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pid_file "$name")"
    log "$name stopped (pid $pid)"
done

if [ "${1:-}" = --clean ]; then
    rm -rf "$RUN_DIR"
    log "removed $RUN_DIR"
fi
