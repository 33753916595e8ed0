#!/usr/bin/python3
"""A minimal HTTP tracker for benchmarks: every announce gets the same fixed peer list.

Usage: mini_tracker.py PORT PEER_HOST:PORT [...] [--alt PEER_HOST:PORT ...]
Clients that cannot be given peers directly (aria2, Transmission, rqbit) find the seed this way.
Announces whose path starts with /alt/ get the peers after --alt instead (Transmission, which
refuses 127.x peers from a tracker, is given the seed at a non-loopback address of this host).
"""
import http.server
import socket
import struct
import sys

PEERS = b""
ALT = b""


def compact(peers) -> bytes:
    out = b""
    for peer in peers:
        host, p = peer.rsplit(":", 1)
        out += socket.inet_aton(host) + struct.pack(">H", int(p))
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        peers = ALT if self.path.startswith("/alt/") else PEERS
        body = b"d8:intervali30e5:peers%d:%se" % (len(peers), peers)
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. killed when its download completed)

    def log_message(self, *args):
        pass


def main() -> int:
    global PEERS, ALT
    port, args = int(sys.argv[1]), sys.argv[2:]
    split = args.index("--alt") if "--alt" in args else len(args)
    PEERS, ALT = compact(args[:split]), compact(args[split + 1 :])
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
