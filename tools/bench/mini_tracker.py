#!/usr/bin/python3
"""A minimal HTTP tracker for benchmarks: every announce gets the same fixed peer list.

Usage: mini_tracker.py PORT PEER_HOST:PORT [...]
Clients that cannot be given peers directly (aria2, Transmission, rqbit) find the seed this way.
"""
import http.server
import socket
import struct
import sys

PEERS = b""


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"d8:intervali30e5:peers%d:%se" % (len(PEERS), PEERS)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> int:
    global PEERS
    port = int(sys.argv[1])
    for peer in sys.argv[2:]:
        host, p = peer.rsplit(":", 1)
        PEERS += socket.inet_aton(host) + struct.pack(">H", int(p))
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
