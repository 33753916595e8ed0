#!/usr/bin/env python3
"""Writes floodgate-ctl.json, the Grafana dashboard for floodgate-ctl's, the relays' and the
agents' /metrics.

Run it after changing a panel; the JSON is committed so Grafana can import it as is. The
integration test `metrics::deploy_files_query_only_exported_metrics` checks that every
metric the dashboard queries exists in some component's output (ctl, relay or agent)."""
import json, os

DS = {"type": "prometheus", "uid": "${datasource}"}
panels, y = [], 0
pid = 0


def panel(title, kind, targets, w=12, h=8, unit="short", x=None, **extra):
    global y, pid
    pid += 1
    if x is None:
        x = 0 if not panels or panels[-1]["gridPos"]["x"] + panels[-1]["gridPos"]["w"] + w > 24 else panels[-1]["gridPos"]["x"] + panels[-1]["gridPos"]["w"]
        if x == 0 and panels:
            y = panels[-1]["gridPos"]["y"] + panels[-1]["gridPos"]["h"]
    p = {
        "id": pid, "title": title, "type": kind, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l} for i, (e, l) in enumerate(targets)],
    }
    p.update(extra)
    panels.append(p)


D = 'dist=~"$dist"'
panel("Active distributions", "stat", [('floodgate_distributions{state="active"}', "active")], w=6, h=4)
panel("Relays alive", "stat", [('floodgate_ctl_relays{state="alive"}', "alive"), ('floodgate_ctl_relays{state="dead"}', "dead")], w=6, h=4)
panel("Clients online", "stat", [("floodgate_ctl_clients_online", "online"), ("floodgate_ctl_clients_registered", "registered")], w=6, h=4)
panel("Task streams", "stat", [("sum by (kind) (floodgate_ctl_connected_streams)", "{{kind}}")], w=6, h=4)
panel("Bytes received by source", "timeseries", [(f"sum by (source) (rate(floodgate_dist_received_bytes_total{{{D}}}[1m]))", "{{source}}")], unit="Bps")
panel("Origin bytes", "timeseries", [
    (f"sum by (dist) (rate(floodgate_dist_origin_bytes_total{{{D}}}[1m]))", "{{dist}}"),
    ("sum by (origin) (rate(floodgate_origin_bytes_total[1m]))", "host {{origin}}"),
], unit="Bps")
panel("Offload ratio (bytes delivered per origin byte)", "timeseries", [(f"floodgate_dist_offload_ratio{{{D}}}", "{{dist}}")], w=8)
panel("Progress", "timeseries", [(f"floodgate_dist_progress_ratio{{{D}}}", "{{dist}}")], w=8, unit="percentunit")
panel("Time against the Kumar-Ross bound", "timeseries", [
    (f"floodgate_dist_elapsed_seconds{{{D}}} / (floodgate_dist_min_time_seconds{{{D}}} > 0)", "{{dist}}"),
], w=8, unit="x")
panel("Download rate per running client", "timeseries", [
    (f'floodgate_dist_download_rate_bytes_per_second{{{D}}} / on (dist) floodgate_dist_targets{{{D},state="running"}}', "{{dist}}"),
], unit="Bps")
panel("Targets by state", "timeseries", [(f"sum by (state) (floodgate_dist_targets{{{D}}})", "{{state}}")])
panel("Origin rate: leased vs limit", "timeseries", [
    ("floodgate_global_leased_rate_bytes_per_second", "global leased"),
    ("floodgate_global_limit_rate_bytes_per_second", "global limit"),
    ("floodgate_origin_leased_rate_bytes_per_second", "{{origin}} leased"),
    ("floodgate_origin_limit_rate_bytes_per_second", "{{origin}} limit"),
], w=8, unit="Bps")
panel("Origin connections: leased vs limit", "timeseries", [
    ("floodgate_global_leased_connections", "global leased"),
    ("floodgate_global_limit_connections", "global limit"),
    ("floodgate_origin_leased_connections", "{{origin}} leased"),
    ("floodgate_origin_limit_connections", "{{origin}} limit"),
    ("floodgate_global_live_leases", "global live leases"),
], w=8)
panel("Origin byte window: granted vs limit", "timeseries", [
    ("floodgate_global_granted_window_bytes", "global granted"),
    ("floodgate_origin_granted_window_bytes", "{{origin}} granted"),
], w=8, unit="bytes")
panel("Lease requests", "timeseries", [("sum by (op, result) (rate(floodgate_ctl_lease_requests_total[5m]))", "{{op}} {{result}}")], unit="reqps")
panel("Relays: load and leases", "timeseries", [
    ("floodgate_ctl_relay_load_ratio", "{{relay}} load"),
    ("floodgate_ctl_relay_live_leases", "{{relay}} leases"),
    ("floodgate_ctl_relay_up", "{{relay}} up"),
])
panel("Relays: bytes served", "timeseries", [("rate(floodgate_ctl_relay_served_bytes_total[1m])", "{{relay}} ({{zone}})")], unit="Bps")

# Relays' own /metrics (floodgate-relay --listen-http ADDR, path /metrics).
panel("Relay uploads by protocol", "timeseries", [("sum by (instance, protocol) (rate(floodgate_relay_served_bytes_total[1m]))", "{{instance}} {{protocol}}")], unit="Bps")
panel("Relay origin pull per task", "timeseries", [("sum by (instance, task) (rate(floodgate_relay_origin_bytes_total[1m]))", "{{instance}} {{task}}")], unit="Bps")
panel("Relay peers", "timeseries", [("sum by (instance) (floodgate_relay_peers)", "{{instance}}")], w=8)
panel("Relay hash failures", "timeseries", [("sum by (instance) (increase(floodgate_relay_hash_failures_total[5m]))", "{{instance}}")], w=8)
panel("Relay origin retries", "timeseries", [("sum by (instance) (rate(floodgate_relay_origin_retries_total[5m]))", "{{instance}}")], w=8, unit="reqps")
# Agents' /metrics (floodgate agent --metrics-listen ADDR).
panel("Agents: bytes received by source", "timeseries", [(f"sum by (source) (rate(floodgate_agent_received_bytes_total{{{D}}}[1m]))", "{{source}}")], unit="Bps")
panel("Agents: download rate", "timeseries", [(f"floodgate_agent_download_rate_bytes_per_second{{{D}}}", "{{instance}} {{dist}}")], unit="Bps")
panel("Agents: gap-fill switches by level", "timeseries", [(f"sum by (level) (increase(floodgate_agent_gapfill_switches_total{{{D}}}[5m]))", "to {{level}}")], w=8)
panel("Agents at each gap-fill level", "timeseries", [(f"sum by (level) (floodgate_agent_gapfill_level{{{D}}})", "{{level}}")], w=8)
panel("Agents: hash failures", "timeseries", [(f"sum by (source) (increase(floodgate_agent_hash_failures_total{{{D}}}[5m]))", "{{source}}")], w=8)

dash = {
    "title": "Floodgate control plane",
    "uid": "floodgate-ctl",
    "tags": ["floodgate"],
    "timezone": "utc",
    "schemaVersion": 39,
    "version": 1,
    "refresh": "10s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {"name": "dist", "type": "query", "datasource": DS, "label": "Distribution",
         "query": {"query": "label_values(floodgate_dist_progress_ratio, dist)", "refId": "dist"},
         "definition": "label_values(floodgate_dist_progress_ratio, dist)",
         "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
         "current": {"text": "All", "value": "$__all"}},
    ]},
    "panels": panels,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floodgate-ctl.json")
with open(out, "w") as f:
    json.dump(dash, f, indent=2)
    f.write("\n")
print(f"wrote {out}: {len(panels)} panels")
