#!/usr/bin/env python3
"""Handshake latency of a BitTorrent peer while it is busy: every INTERVAL s, open a new TCP
connection to HOST:PORT, send a BitTorrent handshake for INFO_HASH and time until the peer's
68-byte handshake is back. A peer whose runtime threads wait on the disk answers late.
Runs until killed (SIGTERM) or for DURATION s, then prints
`probes N median_ms P99_ms max_ms failed F`.

    bt_probe.py HOST:PORT INFO_HASH_HEX [INTERVAL] [DURATION]
"""
import os
import signal
import socket
import statistics
import sys
import time

addr, info_hash = sys.argv[1], bytes.fromhex(sys.argv[2])
interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
duration = float(sys.argv[4]) if len(sys.argv) > 4 else 3600.0
host, port = addr.rsplit(":", 1)
handshake = b"\x13BitTorrent protocol" + bytes(8) + info_hash + b"-PR0001-" + os.urandom(12)
lat, failed, stop = [], 0, False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
end = time.monotonic() + duration
while not stop and time.monotonic() < end:
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(handshake)
            got = b""
            while len(got) < 68:
                chunk = s.recv(68 - len(got))
                if not chunk:
                    raise ConnectionError("closed before its handshake")
                got += chunk
        lat.append((time.monotonic() - t0) * 1000)
    except (OSError, ConnectionError):
        failed += 1
    time.sleep(max(0.0, interval - (time.monotonic() - t0)))
lat.sort()
if lat:
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"probes {len(lat)} median_ms {statistics.median(lat):.1f} p99_ms {p99:.1f} max_ms {lat[-1]:.1f} failed {failed}")
else:
    print(f"probes 0 failed {failed}")
