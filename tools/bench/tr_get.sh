#!/usr/bin/env bash
# Download a torrent with Transmission 3.00 (transmission-cli) and exit as soon as it is complete
# (transmission-cli itself never exits). Used by tools/bench-loopback.sh.
#
#   tr_get.sh TORRENT OUTDIR PORT
#
# Transmission finds its peers through the torrent's tracker. It refuses tracker peers on 127.x
# ("martian" addresses), so the bench hands it the seed at this machine's non-loopback address
# (the kernel still carries that traffic over `lo`; binding Transmission to a 127.0.0.x address
# does not work for that destination: the kernel drops 127.x sources towards other addresses).
# TCP only, no DHT/LSD/PEX/port mapping, no speed limits, 64 MiB write cache, unencrypted
# preferred: what an expert would set for a local transfer. Note that Transmission 3.00 decides
# its interest in peers in its rechoke pass, every 10 s, so it starts requesting up to 10 s late.
set -euo pipefail
torrent="$1"; out="$2"; port="$3"
cfg="$(mktemp -d /var/tmp/tr-cfg.XXXXXX)"
trap 'rm -rf "$cfg"' EXIT
cat > "$cfg/settings.json" <<JSON
{
  "alt-speed-enabled": false,
  "cache-size-mb": 64,
  "dht-enabled": false,
  "download-dir": "$out",
  "encryption": 0,
  "incomplete-dir-enabled": false,
  "lpd-enabled": false,
  "message-level": 0,
  "peer-limit-global": 200,
  "peer-limit-per-torrent": 50,
  "peer-port": $port,
  "pex-enabled": false,
  "port-forwarding-enabled": false,
  "prefetch-enabled": true,
  "ratio-limit-enabled": false,
  "rename-partial-files": false,
  "speed-limit-down-enabled": false,
  "speed-limit-up-enabled": false,
  "utp-enabled": false
}
JSON
printf '#!/bin/sh\ntouch "%s/done"\n' "$cfg" > "$cfg/done.sh"
chmod +x "$cfg/done.sh"
transmission-cli -g "$cfg" -w "$out" -p "$port" -f "$cfg/done.sh" -et -D -U -M "$torrent" > "$cfg/log" 2>&1 &
pid=$!
while [ ! -e "$cfg/done" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then cat "$cfg/log" >&2; exit 1; fi
    sleep 0.05
done
# Killed rather than stopped: a graceful stop waits for the tracker's "stopped" announce.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
