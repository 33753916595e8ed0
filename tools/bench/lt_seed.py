#!/usr/bin/python3
"""Seed a torrent with libtorrent on 127.0.0.1:PORT until killed (interop tests, benchmarks).

Usage: lt_seed.py TORRENT DATA_DIR PORT
Prints "ready" once the data is checked and the torrent is seeding.
"""
import sys
import time

import libtorrent as lt


def main() -> int:
    torrent, data, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = {
        "listen_interfaces": f"127.0.0.1:{port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
    }
    ses = lt.session(settings)
    handle = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": data})
    deadline = time.monotonic() + 300
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            print("never became a seed (data incomplete?)", file=sys.stderr)
            return 1
        time.sleep(0.05)
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
