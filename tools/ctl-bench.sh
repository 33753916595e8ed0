#!/usr/bin/env bash
# ctl benchmark: 10,000 client streams on one ctl (SQLite), time from CreateDistribution to
# every client holding its task, ctl memory, lease requests and progress reports per second.
# Usage: [PROGRESS_BATCH=N] tools/ctl-bench.sh [CLIENTS] [PROFILE] [CONNS]
#   PROGRESS_BATCH: ctl's --progress-batch (default 512; 1 = one transaction per report).
#   PROFILE: release (default) or debug; CONNS: HTTP/2 connections the streams share (default 100).
set -euo pipefail
CLIENTS="${1:-10000}"
PROFILE="${2:-release}"
CONNS="${3:-100}"
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$PROFILE" = release ]; then
    cargo build --release -p floodgate-ctl --bins
else
    cargo build -p floodgate-ctl --bins
fi
BIN="target/$PROFILE"
DIR="$(mktemp -d)"
export FLOODGATE_ADMIN_TOKEN=bench-admin-token FLOODGATE_RELAY_TOKEN=bench-relay-token FLOODGATE_CLIENT_TOKEN=bench-client-token
PORT=17400
RUST_LOG=warn "$BIN/floodgate-ctl" serve --listen "127.0.0.1:$PORT" --db "sqlite://$DIR/bench.db" \
    --progress-batch "${PROGRESS_BATCH:-512}" &
CTL=$!
trap 'kill $CTL 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
FLOODGATE_TOKEN=bench-admin-token "$BIN/ctl-load" --ctl "http://127.0.0.1:$PORT" --clients "$CLIENTS" --conns "$CONNS" --pid "$CTL"
