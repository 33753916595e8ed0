#!/usr/bin/env bash
# Relay memory with many BitTorrent peers connected: a standalone relay that has pulled (and
# seeds) a file, then PEERS connections from 127.0.0.1 that each send a BitTorrent handshake for
# the task's torrent and INTERESTED, read the relay's handshake and BITFIELD, and stay open.
# Prints the relay's VmRSS (/proc/PID/status) before and with the peers, and the relay's own
# peer count from /tasks.
#
#   tools/bench-relay-peers.sh [PEERS] [SIZE_MIB]        (defaults: 1000, 256)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
size_mib="${2:-256}"
# Both the relay and the peers' process need a descriptor per connection.
hard="$(ulimit -Hn)"
want=$((2 * n + 256))
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    echo "ulimit -Hn is $hard; $n peers need about $want descriptors" >&2
    exit 1
fi
ulimit -n "$want"

cargo build --release -q -p floodgate-relay -p floodgate -p floodgate-tools
bin="$PWD/target/release"
work="$(mktemp -d /var/tmp/fg-relay-peers.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0; sleep 0.05; done; return 1; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/payload.bin"
"$bin/floodgate" make-torrent "$work/payload.bin" -o "$work/p.torrent" > /dev/null 2>&1
origin_port=$(port)
"$bin/fg-origin" --file "$work/payload.bin" --listen "127.0.0.1:$origin_port" 2> /dev/null &
pids+=($!)
wait_port "$origin_port"
http_port=$(port)
bt_port=$(port)
"$bin/floodgate-relay" --origin "http://127.0.0.1:$origin_port/payload.bin" --torrent "$work/p.torrent" \
    --data-dir "$work/relay" --listen-http "127.0.0.1:$http_port" --listen-bt "127.0.0.1:$bt_port" \
    > "$work/relay.id" 2> "$work/relay.log" &
relay_pid=$!
pids+=("$relay_pid")
wait_port "$http_port" || { echo "relay did not start"; cat "$work/relay.log"; exit 1; }
id="$(head -n1 "$work/relay.id")"
for _ in $(seq 1 600); do
    curl -s "http://127.0.0.1:$http_port/tasks" | grep -q '"state":"complete"' && break
    sleep 0.2
done
curl -s "http://127.0.0.1:$http_port/tasks" | grep -q '"state":"complete"' || { echo "the relay's pull did not finish"; exit 1; }
sleep 2
before=$(rss_kib "$relay_pid")

python3 - "$bt_port" "$id" "$n" "$http_port" "$relay_pid" "$before" << 'PY'
import json, os, selectors, socket, sys, time, urllib.request

bt_port, info_hash, n, http_port, pid, before = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
INTERESTED = b"\x00\x00\x00\x01\x02"
sel = selectors.DefaultSelector()
got = {}
for i in range(n):
    s = socket.create_connection(("127.0.0.1", int(bt_port)), timeout=10)
    peer_id = b"-FGBENCH-" + b"%011d" % i
    s.sendall(b"\x13BitTorrent protocol" + bytes(8) + info_hash + peer_id + INTERESTED)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    got[s] = b""
# Read the relay's handshake and bitfield on every connection (bounded).
deadline = time.time() + 60
def answered(b):
    # Handshake (68 bytes) with our info-hash, then at least one message's length prefix.
    return len(b) >= 73 and b[28:48] == info_hash
while time.time() < deadline and not all(answered(b) for b in got.values()):
    for key, _ in sel.select(timeout=0.5):
        try:
            data = key.fileobj.recv(65536)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(key.fileobj)
            continue
        got[key.fileobj] += data
ok = sum(answered(b) for b in got.values())
time.sleep(2)
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
with_peers = rss()
tasks = json.load(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/tasks", timeout=10))
peers = tasks[0]["peers"]
print(f"relay RSS before: {before / 1024:.1f} MiB; with {ok}/{n} peers answered (relay counts {peers}): "
      f"{with_peers / 1024:.1f} MiB (+{(with_peers - before) / n:.1f} KiB per peer)")
if ok < n or peers < n:
    sys.exit("not every peer was accepted")
PY
