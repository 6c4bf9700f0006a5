#!/usr/bin/env bash
# Stops exactly the processes localstack/up.sh started (by recorded PID and command line, each
# with its whole process group): SIGINT (LocalStack can hang in its SIGTERM handler; SIGINT stops
# it in about 2 s), then SIGTERM after 10 s, then SIGKILL after 5 more. Logs and data stay in
# localstack/.run/; pass --clean to delete them too.
set -euo pipefail
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

failed=0
for name in "${SERVICES[@]}"; do
    if ! pid=$(live_pid "$name"); then
        rm -f "$(pid_file "$name")"
        continue
    fi
    for step in INT:100 TERM:50 KILL:20; do
        signal=${step%:*}
        kill "-$signal" -- "-$pid" 2>/dev/null || kill "-$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 1 "${step#*:}"); do
            [ -d "/proc/$pid" ] || break 2
            sleep 0.1
        done
        log "$name (pid $pid) still running after SIG$signal"
    done
    if [ -d "/proc/$pid" ]; then
        log "$name (pid $pid) could not be stopped; its PID file is kept"
        failed=1
        continue
    fi
    rm -f "$(pid_file "$name")"
    log "$name stopped (pid $pid)"
done

if [ "${1:-}" = --clean ]; then
    rm -rf "$RUN_DIR"
    log "removed $RUN_DIR"
fi
exit "$failed"
