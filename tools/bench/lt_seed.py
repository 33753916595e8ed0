#!/usr/bin/python3
"""Seed a torrent with libtorrent on HOST:PORT until killed (interop tests, benchmarks).

Usage: lt_seed.py TORRENT DATA_DIR PORT [HOST]      (HOST defaults to 127.0.0.1)
Prints "ready" once the data is checked and the torrent is seeding. Settings: lt_common.py.
"""
import sys
import time

import libtorrent as lt

from lt_common import settings


def main() -> int:
    torrent, data, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    host = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
    ses = lt.session(settings(f"{host}:{port}"))
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
