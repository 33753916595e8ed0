#!/usr/bin/python3
"""Download a torrent with libtorrent from explicit peers and print the elapsed seconds.

Usage: lt_get.py TORRENT OUTDIR PEER_HOST:PORT [...]
Used by tools/bench-loopback.sh and the interop tests; run with Debian's /usr/bin/python3.
"""
import sys
import time

import libtorrent as lt


def main() -> int:
    torrent, out, peers = sys.argv[1], sys.argv[2], sys.argv[3:]
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
    }
    ses = lt.session(settings)
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
    print(f"{time.monotonic() - start:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
