#!/usr/bin/python3
"""Download a torrent with libtorrent from explicit peers and print the elapsed seconds.

Usage: lt_get.py TORRENT OUTDIR PEER_HOST:PORT [...]
Peers also come from the torrent's tracker, if it has one. Seeds on for LT_SEED_FOR seconds
after finishing (default 0). Used by tools/bench-loopback.sh, tools/bench-fanout.sh and the
interop tests; run with Debian's /usr/bin/python3. Settings: lt_common.py.
"""
import os
import sys
import time

import libtorrent as lt

from lt_common import settings


def main() -> int:
    torrent, out, peers = sys.argv[1], sys.argv[2], sys.argv[3:]
    ses = lt.session(settings(os.environ.get("LT_LISTEN", "127.0.0.1:0")))
    info = lt.torrent_info(torrent)
    handle = ses.add_torrent({"ti": info, "save_path": out})
    start = time.monotonic()
    for peer in peers:
        host, port = peer.rsplit(":", 1)
        handle.connect_peer((host, int(port)))
    deadline = start + 600
    while True:
        st = handle.status()
        if st.is_seeding:
            break
        if time.monotonic() > deadline:
            print("timeout", file=sys.stderr)
            return 1
        time.sleep(0.01)
    print(f"{time.monotonic() - start:.3f}", flush=True)
    time.sleep(float(os.environ.get("LT_SEED_FOR", "0")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
