#!/usr/bin/env python3
"""Figures of tools/bench-hybrid-netns.sh: per group, and the issue's goals.

Usage: hybrid_netns_report.py RESULTS_DIR [GROUP]
With GROUP, prints that group's lines (as it finishes); without, a Markdown table of every
group in RESULTS_DIR and which goals were met. RESULTS_DIR holds `setup` (key=value) and one
folder per group: `before` / `after` (relay http_bytes, relay bt_bytes, relay origin_bytes,
fg-origin body_bytes, task state), `clients` (index, hostile 0/1, seconds or nan, ok/wrong/timeout)
and, for floodgate, each client's `--json` summary `c<i>.json`.
"""
import json
import math
import os
import sys

GROUPS = ("floodgate", "libtorrent", "aria2")
HEALTHY_HTTP_SHARE = 0.05  # "HTTP bytes ≈ 0": at most 5 % of the file per healthy client


def mib(b: float) -> str:
    return f"{b / 1048576:.0f} MiB"


def load(res: str, group: str) -> dict:
    d = os.path.join(res, group)

    def counters(name: str) -> list:
        with open(os.path.join(d, name)) as f:
            return [int(x) for x in f.read().split()[:4]]

    before, after = counters("before"), counters("after")
    delta = [a - b for a, b in zip(after, before)]
    clients = []
    with open(os.path.join(d, "clients")) as f:
        for line in f:
            i, hostile, secs, status = line.split()
            c = {"i": int(i), "hostile": hostile == "1", "secs": float(secs), "status": status}
            path = os.path.join(d, f"c{i}.json")
            if os.path.exists(path):
                with open(path) as j:
                    try:
                        c["json"] = json.loads(j.readline())
                    except ValueError:
                        pass
            clients.append(c)
    return {"http": delta[0], "bt": delta[1], "origin": delta[2], "fg_origin": delta[3], "clients": clients}


def setup(res: str) -> dict:
    out = {}
    with open(os.path.join(res, "setup")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            out[k] = v
    return out


def summary(g: dict, size: int, threshold: int) -> dict:
    ok = [c for c in g["clients"] if c["status"] == "ok"]
    times = sorted(c["secs"] for c in g["clients"])
    for c in g["clients"]:
        c["rate"] = size / c["secs"] if c["status"] == "ok" and c["secs"] > 0 else 0.0
    hostile = [c["rate"] for c in g["clients"] if c["hostile"]]
    healthy = [c["rate"] for c in g["clients"] if not c["hostile"]]
    return {
        "complete": len(ok),
        "n": len(g["clients"]),
        "last": times[-1] if len(ok) == len(g["clients"]) else math.inf,
        "median": times[(len(times) - 1) // 2],
        "hostile": hostile,
        "healthy": healthy,
        "below": sum(1 for c in g["clients"] if c["rate"] < threshold),
    }


def rates(rs: list) -> str:
    if not rs:
        return "–"
    return f"{sum(rs) / len(rs) / 1e6:.2f} ({min(rs) / 1e6:.2f}–{max(rs) / 1e6:.2f})"


def group_lines(name: str, g: dict, size: int, threshold: int) -> None:
    s = summary(g, size, threshold)
    print(
        f"{name:<11} {s['complete']}/{s['n']} complete  last {s['last']:.1f} s  median {s['median']:.1f} s  "
        f"HTTP served {mib(g['http'])} ({g['http'] / size:.2f} x file)  relay BT {mib(g['bt'])}  "
        f"origin {g['origin'] + g['fg_origin']} B"
    )
    for c in g["clients"]:
        flag = "hostile" if c["hostile"] else "healthy"
        mark = ">=" if c["rate"] >= threshold else "< "
        extra = ""
        if "json" in c:
            j = c["json"]
            levels = " ".join(f"{w['to']}@{w['at_s']:.0f}s" for w in j.get("switches", []))
            extra = f"  bt {mib(j.get('bt_bytes', 0))} http {mib(j.get('http_bytes', 0))}  {levels}"
        print(
            f"  c{c['i']:<3} {flag}  {c['secs']:7.1f} s  {c['rate'] / 1e6:6.2f} MB/s {mark} threshold  {c['status']}{extra}"
        )


def table(res: str) -> None:
    st = setup(res)
    size, threshold = int(st["size"]), int(st["threshold"])
    groups = {g: load(res, g) for g in GROUPS if os.path.isdir(os.path.join(res, g))}
    sums = {g: summary(v, size, threshold) for g, v in groups.items()}
    print(
        f"\n{st['clients']} clients, hostile ({st['hostile_mode']}): {st['hostile'] or 'none'}; "
        f"file {mib(size)}; relay up {st['relay_up']}, clients up {st['up']} / down {st['down']} Mbit/s; "
        f"threshold {threshold / 1e6:.2f} MB/s; {st['machine']}; extra get flags: {st['fg_args'] or 'none'}\n"
    )
    print(
        "| group | complete | last completion | median | hostile clients MB/s: mean (min–max) "
        "| healthy clients MB/s: mean (min–max) | clients below threshold | HTTP bytes served (× file) "
        "| relay BT bytes | origin bytes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, g in groups.items():
        s = sums[name]
        print(
            f"| {name} | {s['complete']}/{s['n']} | {s['last']:.1f} s | {s['median']:.1f} s | {rates(s['hostile'])} "
            f"| {rates(s['healthy'])} | {s['below']} | {mib(g['http'])} ({g['http'] / size:.2f}) | {mib(g['bt'])} "
            f"| {g['origin'] + g['fg_origin']} |"
        )
    fg = groups.get("floodgate")
    if fg is None:
        return
    print()
    healthy_http = [c.get("json", {}).get("http_bytes", math.inf) for c in fg["clients"] if not c["hostile"]]
    hostile_http = [c.get("json", {}).get("http_bytes", 0) for c in fg["clients"] if c["hostile"]]
    print(
        f"floodgate HTTP by client: hostile {mib(sum(hostile_http))} in all, healthy {mib(sum(healthy_http))} "
        f"in all (max {max(healthy_http, default=0) / size:.3f} x file for one healthy client)"
    )
    goals = []
    h = sums["floodgate"]["hostile"]
    if h:
        goals.append(
            (
                "every P2P-hostile floodgate client averages >= the threshold",
                min(h) >= threshold,
                f"min {min(h) / 1e6:.2f} MB/s vs {threshold / 1e6:.2f}",
            )
        )
    for other in ("libtorrent", "aria2"):
        if other not in groups:
            continue
        o = groups[other]
        goals.append(
            (
                f"floodgate HTTP bytes <= 0.5 x {other}'s",
                fg["http"] <= 0.5 * o["http"],
                f"{mib(fg['http'])} vs {mib(o['http'])} ({fg['http'] / max(o['http'], 1):.2f} x)",
            )
        )
        goals.append(
            (
                f"floodgate last completion no later than {other}'s",
                sums["floodgate"]["last"] <= sums[other]["last"],
                f"{sums['floodgate']['last']:.1f} s vs {sums[other]['last']:.1f} s",
            )
        )
    if healthy_http:
        goals.append(
            (
                f"healthy floodgate clients take HTTP ~ 0 (<= {HEALTHY_HTTP_SHARE:.0%} of the file each)",
                max(healthy_http) <= HEALTHY_HTTP_SHARE * size,
                f"max {max(healthy_http) / size:.3f} x file",
            )
        )
    for text, met, detail in goals:
        print(f"- {'MET   ' if met else 'MISSED'} {text}: {detail}")


def main() -> int:
    res = sys.argv[1]
    if len(sys.argv) > 2:
        st = setup(res)
        group_lines(sys.argv[2], load(res, sys.argv[2]), int(st["size"]), int(st["threshold"]))
    else:
        table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
