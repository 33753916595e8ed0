#!/usr/bin/env python3
"""Chaos soak: one distribution to many agents through ctl and two relays on loopback, while
random processes are SIGKILLed and restarted, the origin fails in turn (5xx, stalls, cut
responses, down), and one agent's disk is too small for the file.

At the end it checks, and exits 1 if any check fails:
  - every agent that kept its disk has a byte-identical file and ctl counts it done;
  - the agent with the small disk failed with a disk-full reason, and ctl counts it failed;
  - no verified piece was fetched twice: an agent's received bytes, summed over all its lives
    (its /metrics scraped just before each kill), stay within the file plus a small allowance
    per life for the pieces in flight when it was killed;
  - the origin never served faster than ctl's leased limit (any 10 s window, 1.25 x slack) and
    in total no more than one copy per relay that pulled it plus the re-requested runs;
  - ctl's records match: the distribution is done, its origin bytes are not above what the
    origin served, the audit log holds the admin actions the soak made.

Run by tools/chaos-soak.sh, which builds the binaries. Needs root (the small disk is a tmpfs).
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOKENS = {"admin": "soak-admin-token", "relay": "soak-relay-token", "client": "soak-client-token"}
# fg-origin fault modes the origin cycles through (one at a time, the origin restarted between).
ORIGIN_MODES = {
    "healthy": [],
    "5xx": ["--fail-every", "3"],
    "stalls": ["--stall-every", "4", "--stall-after", "65536"],
    "cut": ["--truncate-after", "300000"],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs=20):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Proc:
    """One restartable process: its command, its log, its current Popen."""

    def __init__(self, name, cmd, log, env=None, port=None):
        self.name, self.cmd, self.log, self.env, self.port = name, cmd, log, env, port
        self.p = None
        self.lives = 0

    def start(self):
        out = open(self.log, "ab")
        out.write(f"--- life {self.lives + 1} at {time.time():.3f}\n".encode())
        out.flush()
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=out, env=self.env)
        self.lives += 1
        if self.port:
            wait_port(self.port)

    def kill(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()
        self.p = None

    def alive(self):
        return self.p is not None and self.p.poll() is None


def metric_sum(text, name):
    total = 0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            try:
                total += int(float(line.rsplit(" ", 1)[1]))
            except (ValueError, IndexError):
                pass
    return total


class Agent:
    def __init__(self, proc, out_dir, metrics_port, small_disk):
        self.proc, self.out_dir, self.metrics_port, self.small_disk = proc, out_dir, metrics_port, small_disk
        self.received_past_lives = 0  # bytes received in lives that ended (scraped before the kill)
        self.last_received = 0  # this life's last scrape
        self.kills = 0

    def scrape(self):
        try:
            text = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1.0)
        except OSError:
            return None
        self.last_received = metric_sum(text, "floodgate_agent_received_bytes_total")
        return text

    def kill(self):
        self.scrape()
        self.proc.kill()
        self.received_past_lives += self.last_received
        self.last_received = 0
        self.kills += 1

    def total_received(self):
        return self.received_past_lives + self.last_received


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory with floodgate, floodgate-relay, floodgate-ctl, fg-origin")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--chaos-secs", type=float, default=240, help="how long faults are injected")
    ap.add_argument("--rate", type=int, default=2_000_000, help="ctl's origin limit, bytes/s")
    ap.add_argument("--every", type=float, default=4.0, help="mean seconds between faults")
    ap.add_argument("--timeout", type=float, default=900, help="bound on the whole run after the chaos")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", help="write the summary here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("chaos soak: needs root (one agent's disk is a small tmpfs it mounts)")
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="fg-chaos.", dir="/var/tmp")
    procs, mounts = [], []
    faults = {}
    failures = []
    t_start = time.monotonic()

    def note(kind):
        faults[kind] = faults.get(kind, 0) + 1

    def log(msg):
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", flush=True)

    def check(ok, what):
        log(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    try:
        b = lambda n: os.path.join(a.bin, n)  # noqa: E731
        size = a.size_mib << 20
        payload = os.path.join(work, "payload.bin")
        digest = hashlib.sha256()
        with open(payload, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                digest.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        torrent = os.path.join(work, "payload.torrent")
        subprocess.run([b("floodgate"), "make-torrent", payload, "-o", torrent], check=True, capture_output=True)
        env = dict(os.environ, FLOODGATE_ADMIN_TOKEN=TOKENS["admin"], FLOODGATE_RELAY_TOKEN=TOKENS["relay"],
                   FLOODGATE_CLIENT_TOKEN=TOKENS["client"], RUST_LOG="info", NO_COLOR="1")

        # Origin: restarted on the same port in each fault mode; its served bytes are summed
        # over its lives and sampled every second for the rate check.
        origin_port = free_port()
        origin_served_past = 0
        origin_samples = []  # (monotonic time, cumulative body bytes)

        def origin_proc(mode):
            cmd = [b("fg-origin"), "--file", payload, "--listen", f"127.0.0.1:{origin_port}",
                   "--send-buffer", "65536"] + ORIGIN_MODES[mode]
            return Proc("origin", cmd, os.path.join(work, "origin.log"), env, origin_port)

        def origin_bytes_now():
            try:
                return json.loads(http_get(f"http://127.0.0.1:{origin_port}/__stats", 1.0))["body_bytes"]
            except (OSError, ValueError, KeyError):
                return None

        origin = origin_proc("healthy")
        origin.start()
        procs.append(origin)
        origin_mode = "healthy"
        url = f"http://127.0.0.1:{origin_port}/payload.bin"

        ctl_port, ctl_http = free_port(), free_port()
        ctl_url = f"http://127.0.0.1:{ctl_port}"
        ctl = Proc("ctl", [b("floodgate-ctl"), "serve", "--listen", f"127.0.0.1:{ctl_port}",
                           "--db", f"sqlite://{work}/ctl.db", "--http-listen", f"127.0.0.1:{ctl_http}",
                           "--relay-timeout-secs", "5", "--lease-ttl-secs", "10"],
                   os.path.join(work, "ctl.log"), env, ctl_port)
        ctl.start()
        procs.append(ctl)

        def ctljson(*args, check_rc=True):
            r = subprocess.run([b("floodgate-ctl"), *args, "--ctl", ctl_url, "--token", TOKENS["admin"], "--json"],
                               capture_output=True, text=True, timeout=20)
            if r.returncode != 0:
                if check_rc:
                    raise RuntimeError(f"floodgate-ctl {' '.join(args)}: {r.stderr.strip()}")
                return None
            return json.loads(r.stdout) if r.stdout.strip() else {}

        ctljson("limits", "set", "--rate", str(a.rate), "--conns", "6")

        relays = []
        for i in (1, 2):
            bt, http = free_port(), free_port()
            cmd = [b("floodgate-relay"), "--ctl", ctl_url, "--token", TOKENS["relay"], "--id", f"relay-{i}",
                   "--data-dir", os.path.join(work, f"relay{i}"), "--listen-bt", f"127.0.0.1:{bt}",
                   "--listen-http", f"127.0.0.1:{http}", "--origin-timeout", "3"]
            r = Proc(f"relay-{i}", cmd, os.path.join(work, f"relay{i}.log"), env, http)
            r.start()
            relays.append(r)
            procs.append(r)

        agents = []
        for i in range(a.agents):
            out = os.path.join(work, f"agent{i}")
            os.makedirs(out)
            small = i == 0
            if small:
                subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={max(size // 2, 1 << 20)}", "tmpfs", out], check=True)
                mounts.append(out)
            mport = free_port()
            cmd = [b("floodgate"), "agent", "--ctl", ctl_url, "--token", TOKENS["client"], "--id", f"agent-{i}",
                   "-o", out, "--listen", "127.0.0.1:0", "--metrics-listen", f"127.0.0.1:{mport}"]
            p = Proc(f"agent-{i}", cmd, os.path.join(work, f"agent{i}.log"), env, mport)
            p.start()
            agents.append(Agent(p, out, mport, small))
            procs.append(p)

        end = time.monotonic() + 30
        while time.monotonic() < end:
            c = ctljson("clients", check_rc=False) or []
            if len(c) >= a.agents:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("agents did not register with ctl")

        created = ctljson("dist", "create", url, "--torrent", torrent, "--targets", "all")
        dist = created["id"]
        log(f"distribution {dist}: {a.size_mib} MiB to {a.agents} agents, origin limit {a.rate} B/s, seed {a.seed}")
        t_created = time.monotonic()

        def sample_origin():
            v = origin_bytes_now()
            if v is not None:
                origin_samples.append((time.monotonic(), origin_served_past + v))

        def done_agents():
            return [ag for ag in agents if not ag.small_disk and os.path.exists(os.path.join(ag.out_dir, "payload.bin"))
                    and os.path.getsize(os.path.join(ag.out_dir, "payload.bin")) == size
                    and "download complete" in open(ag.proc.log, errors="replace").read()]

        # Chaos: one fault at a time, at random intervals, until --chaos-secs have passed.
        chaos_end = time.monotonic() + a.chaos_secs
        next_fault = time.monotonic() + rng.uniform(0.5, 1.5) * a.every
        down = []  # (restart at, what starts it again)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        slow_scrapes = 0
        bag = []
        while time.monotonic() < chaos_end:
            now = time.monotonic()
            t_scrape = time.monotonic()
            list(pool.map(Agent.scrape, [ag for ag in agents if ag.proc.alive()]))
            sample_origin()
            slow_scrapes += time.monotonic() - t_scrape > 1.0
            for item in [d for d in down if d[0] <= now]:
                down.remove(item)
                item[1]()
            if now >= next_fault and not down:
                # Shuffled rounds: every kind comes up once per round, in a random order.
                if not bag:
                    bag = ["agent", "agent", "agent", "relay", "relay-long", "ctl", "origin", "origin"]
                    rng.shuffle(bag)
                kind = bag.pop()
                if kind == "agent":
                    ag = rng.choice([x for x in agents if x.proc.alive()])
                    ag.kill()
                    down.append((now + rng.uniform(0.3, 3.0), ag.proc.start))
                    log(f"SIGKILL {ag.proc.name}")
                elif kind in ("relay", "relay-long"):
                    r = rng.choice(relays)
                    r.kill()
                    # relay-long stays down past ctl's relay timeout (5 s): ctl replaces it.
                    secs = rng.uniform(7, 10) if kind == "relay-long" else rng.uniform(1, 3)
                    down.append((now + secs, r.start))
                    log(f"SIGKILL {r.name} for {secs:.1f} s")
                elif kind == "ctl":
                    ctl.kill()
                    down.append((now + rng.uniform(0.5, 3.0), ctl.start))
                    log("SIGKILL ctl")
                else:
                    v = origin_bytes_now()
                    origin_served_past += v or 0
                    origin.kill()
                    origin_mode = rng.choice([m for m in ORIGIN_MODES if m != origin_mode])
                    fresh = origin_proc(origin_mode)
                    origin.cmd = fresh.cmd
                    secs = rng.uniform(0.2, 3.0)
                    down.append((now + secs, origin.start))
                    kind = f"origin-{origin_mode}"
                    log(f"origin down {secs:.1f} s, then {origin_mode}")
                note(kind)
                next_fault = time.monotonic() + rng.uniform(0.5, 1.5) * a.every
            time.sleep(0.25)

        # Heal: everything back up, the origin healthy, then wait for the end.
        for _, start in down:
            start()
        if origin_mode != "healthy":
            v = origin_bytes_now()
            origin_served_past += v or 0
            origin.kill()
            origin.cmd = origin_proc("healthy").cmd
            origin.start()
        for p in procs:
            if not p.alive():
                p.start()
        pool.shutdown()
        log(f"chaos over ({sum(faults.values())} faults, {slow_scrapes} metric scrapes over 1 s); waiting for the distribution to finish")
        want = [ag for ag in agents if not ag.small_disk]
        end = time.monotonic() + a.timeout
        state = None
        while time.monotonic() < end:
            for ag in agents:
                ag.scrape()
            sample_origin()
            d = ctljson("dist", "get", dist, check_rc=False)
            state = (d or {}).get("state")
            if len(done_agents()) == len(want) and state not in (None, "active"):
                break
            time.sleep(0.5)
        t_end = time.monotonic()
        time.sleep(3)  # the relays' last heartbeats
        for ag in agents:
            ag.scrape()
        sample_origin()
        d = ctljson("dist", "get", dist)
        stats = d.get("stats", {})

        # --- checks ---
        want_sha = digest.hexdigest()
        identical = 0
        for ag in want:
            path = os.path.join(ag.out_dir, "payload.bin")
            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                identical += h.hexdigest() == want_sha
            except OSError:
                pass
        check(identical == len(want), f"{identical} of {len(want)} agents with a full disk have a byte-identical file")
        small = agents[0]
        small_log = open(small.proc.log, errors="replace").read()
        check(re.search(r"disk full|no space", small_log, re.I) is not None,
              "the agent with the small disk says its disk is full")
        check(stats.get("done") == len(want) and stats.get("failed") == 1,
              f"ctl counts {stats.get('done')} done and {stats.get('failed')} failed (want {len(want)} and 1)")
        check(state == "done" or d.get("state") == "done", f"ctl's distribution state is {d.get('state')}")
        piece = 256 << 10 if size <= (256 << 20) else 1 << 20
        worst = 0.0
        over = []
        for ag in want:
            allowance = size + (ag.kills + 1) * 16 * piece
            got = ag.total_received()
            worst = max(worst, got / size)
            if got > allowance:
                over.append(f"{ag.proc.name} {got} > {allowance} ({ag.kills} kills)")
        check(not over, f"no verified piece fetched twice: most received by one agent {worst:.3f} x the file"
              + (f"; over: {over}" if over else ""))
        served = origin_samples[-1][1] if origin_samples else 0
        pulled_by = sum(1 for i in (1, 2) if os.path.isdir(os.path.join(work, f"relay{i}")) and
                        any(os.scandir(os.path.join(work, f"relay{i}"))))
        peak, peak_at = 0.0, 0.0
        for i, (t0, b0) in enumerate(origin_samples):
            for t1, b1 in origin_samples[i + 1:]:
                if t1 - t0 >= 10:
                    if (b1 - b0) / (t1 - t0) > peak:
                        peak, peak_at = (b1 - b0) / (t1 - t0), t0 - t_start
                    break
        check(peak <= 1.25 * a.rate, f"origin peak over 10 s windows {peak / 1e6:.2f} MB/s (from {peak_at:.1f} s) against the {a.rate / 1e6:.2f} MB/s limit")
        check(served <= pulled_by * size * 1.25,
              f"origin served {served / size:.2f} x the file with {pulled_by} relay(s) pulling")
        ctl_origin = stats.get("origin_bytes", 0)
        # A relay keeps its ctl counters on disk (relay/src/ledger.rs, written before each
        # pulled piece is stored): a relay killed with -9 loses none of what it pulled, so
        # every byte of the file is counted at least once.
        check(size <= ctl_origin <= served * 1.02 + (1 << 20),
              f"ctl's origin bytes {ctl_origin} between the file and what the origin served ({served})")
        delivered = sum(int(stats.get(k, 0)) for k in ("bytes_bt", "bytes_http_relay", "bytes_http_origin"))
        received = sum(ag.total_received() for ag in agents)
        check(0.97 * len(want) * size <= delivered <= received * 1.02 + (1 << 20),
              f"ctl's received bytes {delivered / size:.2f} x the file: at least the {len(want)} done copies, "
              f"at most what the agents' lives received ({received / size:.2f} x)")
        audit = ctljson("audit")
        actions = [e.get("action") for e in (audit if isinstance(audit, list) else audit.get("entries", []))]
        check(any("limit" in (x or "") for x in actions) and any("create" in (x or "") for x in actions),
              f"ctl's audit log has the soak's admin actions: {actions}")

        summary = {
            "seed": a.seed, "size_mib": a.size_mib, "agents": a.agents, "chaos_secs": a.chaos_secs,
            "faults": faults, "kills_per_agent": {ag.proc.name: ag.kills for ag in agents if ag.kills},
            "seconds_to_done": round(t_end - t_created, 1), "identical": identical, "expected": len(want),
            "worst_received_ratio": round(worst, 4), "origin_served_ratio": round(served / size, 3),
            "origin_peak_bps": round(peak), "origin_limit_bps": a.rate, "ctl_stats": stats,
            "failures": failures,
        }
        log("summary: " + json.dumps(summary))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(summary, f, indent=1)
    except Exception as e:  # the soak itself broke: that is a failure too
        failures.append(f"soak error: {e!r}")
        print(f"chaos soak: {e!r} (logs in {work})", file=sys.stderr)
        a.keep = True
    finally:
        for p in procs:
            p.kill()
        for m in mounts:
            subprocess.run(["umount", "-l", m], check=False)
        if a.keep or failures:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"CHAOS SOAK FAILED: {len(failures)} check(s): {failures}", file=sys.stderr)
        sys.exit(1)
    print("chaos soak passed")


if __name__ == "__main__":
    main()
