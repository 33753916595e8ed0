#!/usr/bin/env python3
"""Latency probe: one small Range request every 50 ms on a fresh connection, for SECONDS.

    probe.py URL SECONDS [RANGE_BYTES]          (default range: 4096 bytes at offset 0)

Run it beside a load generator: it measures how long an ordinary small request waits while
the server is busy (a server whose threads are stuck in disk reads answers it late). The range
is the file's first bytes, so after the first request its pages are hot and the time is the
server's, not the disk's. Prints `probe: n=N errors=E p50=… p99=… max=… ms`; exits 1 if no
request succeeded. Every request has a 60 s timeout; the whole run is bounded by
SECONDS + 60 s.
"""

import http.client
import sys
import time
import urllib.parse

INTERVAL = 0.05
TIMEOUT = 60.0


def one(host, port, path, length):
    """One GET with a Range of `length` bytes; returns seconds taken, raises on a bad answer."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers={"Range": f"bytes=0-{length - 1}", "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 206 or len(body) != length:
            raise RuntimeError(f"status {resp.status}, {len(body)} bytes")
    finally:
        conn.close()
    return time.monotonic() - t0


def percentile(sorted_values, p):
    """The p-th percentile (nearest rank) of an ascending list."""
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    url = urllib.parse.urlsplit(sys.argv[1])
    seconds = float(sys.argv[2])
    length = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    path = url.path + (f"?{url.query}" if url.query else "")
    times, errors = [], 0
    start = time.monotonic()
    end, hard_end = start + seconds, start + seconds + TIMEOUT
    tick = start
    while tick < end and time.monotonic() < hard_end:
        try:
            times.append(one(url.hostname, url.port or 80, path, length))
        except Exception as e:  # noqa: BLE001 - every failure counts, whatever it is
            errors += 1
            print(f"probe: {e}", file=sys.stderr)
        tick += INTERVAL
        time.sleep(max(0.0, tick - time.monotonic()))
    if not times:
        print(f"probe: n=0 errors={errors}")
        sys.exit(1)
    times.sort()
    ms = [t * 1000 for t in times]
    print(
        f"probe: n={len(ms)} errors={errors} p50={percentile(ms, 50):.1f} "
        f"p99={percentile(ms, 99):.1f} max={ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
