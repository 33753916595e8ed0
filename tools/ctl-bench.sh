#!/usr/bin/env bash
# ctl benchmark: CLIENTS client streams on ctl, time from CreateDistribution to every client
# holding its task, ctl memory and CPU, lease requests and progress reports per second.
# Usage: [ENV...] tools/ctl-bench.sh [CLIENTS] [PROFILE] [CONNS] [ctl-load flags...]
#   PROFILE: release (default) or debug; CONNS: HTTP/2 connections the streams share (default 100).
#   PROGRESS_BATCH=N   ctl's --progress-batch (default 512; 1 = one transaction per report).
#   DB=sqlite|postgres SQLite file (default) or a fresh PostgreSQL database on 127.0.0.1:5432
#                      (tools/setup-postgres.sh), created here and dropped on exit.
#   REPLICAS=N         ctl replicas (N > 1 needs DB=postgres); clients are spread over them.
#   SOURCE_ADDRS=A-B   local addresses the load generator's connections are bound to
#                      (e.g. 127.0.0.2-127.0.0.9: ~28k source ports per address pair).
#   STEADY_SECS=S      steady phase: every client reports every 5 s for S s while leases go on.
#   FAILOVER=1         after the phases, kill -9 the last replica; time its clients' move.
# Extra arguments go to ctl-load (e.g. --lease-secs 0 --progress-secs 0).
set -euo pipefail
CLIENTS="${1:-10000}"
PROFILE="${2:-release}"
CONNS="${3:-100}"
shift $(( $# < 3 ? $# : 3 ))
DB="${DB:-sqlite}"
REPLICAS="${REPLICAS:-1}"
cd "$(dirname "$0")/.."
# Every connection is a descriptor on both ends; raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
if [ "$PROFILE" = release ]; then
    cargo build --release -p floodgate-ctl --bins
else
    cargo build -p floodgate-ctl --bins
fi
BIN="target/$PROFILE"
DIR="$(mktemp -d)"
PIDS=()
PGDB=""
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$PGDB" ]; then
        psql -h 127.0.0.1 -U postgres -d postgres -q -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
case "$DB" in
    sqlite) URL="sqlite://$DIR/bench.db" ;;
    postgres)
        PGDB="floodgate_bench_$$_$RANDOM"
        psql -h 127.0.0.1 -U postgres -d postgres -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PGDB"
        URL="postgres://postgres@127.0.0.1:5432/$PGDB" ;;
    *) echo "DB must be sqlite or postgres" >&2; exit 2 ;;
esac
if [ "$REPLICAS" -gt 1 ] && [ "$DB" != postgres ]; then
    echo "REPLICAS > 1 needs DB=postgres" >&2; exit 2
fi
export FLOODGATE_ADMIN_TOKEN=bench-admin-token FLOODGATE_RELAY_TOKEN=bench-relay-token FLOODGATE_CLIENT_TOKEN=bench-client-token
ARGS=()
for r in $(seq 0 $((REPLICAS - 1))); do
    PORT=$((17400 + r))
    RUST_LOG=warn "$BIN/floodgate-ctl" serve --listen "127.0.0.1:$PORT" --db "$URL" \
        --progress-batch "${PROGRESS_BATCH:-512}" &
    PIDS+=($!)
    for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
    ARGS+=(--ctl "http://127.0.0.1:$PORT" --pid "${PIDS[-1]}")
done
[ -n "${SOURCE_ADDRS:-}" ] && ARGS+=(--source-addrs "$SOURCE_ADDRS")
[ -n "${STEADY_SECS:-}" ] && ARGS+=(--steady-secs "$STEADY_SECS")
[ "${FAILOVER:-0}" = 1 ] && ARGS+=(--failover)
echo "ctl-bench: $CLIENTS clients, $CONNS conns, $DB, $REPLICAS replica(s), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
FLOODGATE_TOKEN=bench-admin-token "$BIN/ctl-load" --clients "$CLIENTS" --conns "$CONNS" "${ARGS[@]}" "$@"
echo "ctl-bench: done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
