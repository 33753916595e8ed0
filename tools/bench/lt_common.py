"""libtorrent settings shared by lt_seed.py and lt_get.py (benchmarks and interop tests).

What an expert would set for a fast local transfer, starting from libtorrent's own
`high_performance_seed()` preset (bigger send buffers and disk queues, more requests in flight,
no unchoke-slot limit):
- TCP only: libtorrent prefers uTP for outgoing connections, and its uTP over loopback crawls
  (a libtorrent -> libtorrent run over uTP moved 6 MiB/s where TCP moves hundreds).
- no rate limits at all, and no IP overhead accounting against them;
- several connections from one IP (every peer here is on 127.0.0.1);
- no DHT, LSD, UPnP, NAT-PMP, and no alerts (nothing reads them).
"""
import libtorrent as lt


def settings(listen: str) -> dict:
    s = lt.high_performance_seed()
    s.update(
        {
            "listen_interfaces": listen,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "allow_multiple_connections_per_ip": True,
            "rate_limit_ip_overhead": False,
            "upload_rate_limit": 0,
            "download_rate_limit": 0,
            "alert_mask": 0,
        }
    )
    return s
