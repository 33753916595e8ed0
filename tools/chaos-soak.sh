#!/usr/bin/env bash
# Chaos soak (tools/chaos/soak.py): a distribution through ctl and two relays to many agents on
# loopback while random relays, agents and ctl are SIGKILLed and restarted, the origin cycles
# through 5xx, stalls, cut responses and downtime, and one agent's disk is too small. Checks at
# the end: byte-identical files, no verified piece fetched twice, origin within ctl's limit,
# ctl's records right. Needs root (a tmpfs for the small disk).
#
#   tools/chaos-soak.sh                 full soak: release build, 256 MiB, 20 agents, 4 min of faults
#   tools/chaos-soak.sh --ci            short soak for CI: debug build, 32 MiB, 8 agents, 40 s
#   tools/chaos-soak.sh [--ci] -- ARGS  extra arguments for soak.py (--seed N, --agents N, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
ci=0
if [ "${1:-}" = --ci ]; then ci=1; shift; fi
[ "${1:-}" = -- ] && shift
if [ "$ci" -eq 1 ]; then
    cargo build -q --workspace --bins
    exec python3 tools/chaos/soak.py --bin "$PWD/target/debug" --size-mib 32 --agents 8 \
        --chaos-secs 40 --rate 1000000 --every 3 --timeout 300 "$@"
fi
cargo build --release -q -p floodgate -p floodgate-relay -p floodgate-ctl -p floodgate-tools
exec python3 tools/chaos/soak.py --bin "$PWD/target/release" "$@"
