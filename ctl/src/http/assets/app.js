// Floodgate dashboard: polls /api/v1/overview once a second and renders it; actions call the
// JSON API with the admin token, asked for once per browser session (sessionStorage).
"use strict";

const TOKEN_KEY = "floodgate.adminToken";
const POLL_MS = 1000;
const $ = (sel) => document.querySelector(sel);

let lastOverview = null;

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function fmtBytes(n) {
  n = Number(n) || 0;
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
}
const fmtRate = (n) => fmtBytes(n) + "/s";
function fmtSecs(s) {
  s = Number(s) || 0;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  return (s / 3600).toFixed(1) + " h";
}
const fmtTime = (ms) => new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
const lim = (v) => (v === null || v === undefined ? "unlimited" : v);

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function showAuthState() {
  $("#auth-state").textContent = token() ? "admin token set for this session" : "no admin token in this session";
}

function notice(kind, text) {
  const n = $("#notice");
  n.className = kind;
  n.textContent = text;
}

// Asks for the admin token in a dialog; resolves to the token, or "" if the user declines.
function askToken() {
  return new Promise((resolve) => {
    const d = $("#token-dialog");
    const input = $("#token-input");
    input.value = "";
    d.addEventListener("close", () => {
      const t = d.returnValue === "ok" ? input.value.trim() : "";
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      showAuthState();
      resolve(t);
    }, { once: true });
    d.showModal();
    input.focus();
  });
}

async function api(method, path, body, tok) {
  const headers = { "accept": "application/json" };
  if (tok) headers["authorization"] = "Bearer " + tok;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, ok: r.ok, data };
}

// Runs an admin action: asks for the token once per session, shows refusals as refusals.
async function adminAction(label, method, path, body) {
  let tok = token();
  if (!tok) tok = await askToken();
  const r = await api(method, path, body, tok);
  if (r.status === 401 || r.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY);
    showAuthState();
    notice("refused", `${label} refused (HTTP ${r.status}): ${r.data?.error ?? "not allowed"}`);
    return null;
  }
  if (!r.ok) {
    notice("failed", `${label} failed (HTTP ${r.status}): ${r.data?.error ?? "error"}`);
    return null;
  }
  notice("ok", `${label}: done`);
  poll();
  return r.data;
}

function chart(d, limits) {
  const W = 560, H = 150, P = 4;
  const s = d.series || [];
  const host = (() => { try { return new URL(d.origin_url).host; } catch (_) { return ""; } })();
  const row = limits.find((l) => l.origin && host.startsWith(l.origin)) || limits.find((l) => !l.origin);
  const cap = row && row.max_rate_bps ? row.max_rate_bps : 0;
  let max = cap;
  for (const p of s) max = Math.max(max, p.bt_bps, p.http_relay_bps, p.origin_bps);
  if (max <= 0) max = 1;
  const t0 = s.length ? s[0].t_ms : 0, t1 = s.length ? s[s.length - 1].t_ms : 1;
  const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
  const y = (v) => H - 16 - (v / max) * (H - 30);
  const line = (k, color) =>
    s.length < 2 ? "" : `<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.map((p) => x(p.t_ms).toFixed(1) + "," + y(p[k]).toFixed(1)).join(" ")}"/>`;
  const capLine = cap ? `<line x1="${P}" x2="${W - P}" y1="${y(cap)}" y2="${y(cap)}" stroke="var(--origin)" stroke-dasharray="4 3"/><text x="${W - P}" y="${y(cap) - 3}" text-anchor="end" font-size="10" fill="var(--origin)">origin limit ${esc(fmtRate(cap))}</text>` : "";
  const span = s.length >= 2 ? "last " + fmtSecs((t1 - t0) / 1000) : "waiting for samples";
  return `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="rate by source">
    <text x="${P}" y="11" font-size="10" fill="#868e96">${esc(fmtRate(max))}</text>
    <text x="${W - P}" y="${H - 3}" text-anchor="end" font-size="10" fill="#868e96">${esc(span)}</text>
    <line x1="${P}" x2="${W - P}" y1="${H - 16}" y2="${H - 16}" stroke="#dee2e6"/>
    ${capLine}${line("origin_bps", "var(--origin)")}${line("http_relay_bps", "var(--relay)")}${line("bt_bps", "var(--bt)")}
  </svg>
  <div class="legend"><span><i style="background:var(--bt)"></i>BitTorrent</span><span><i style="background:var(--relay)"></i>HTTP from relays</span><span><i style="background:var(--origin)"></i>origin</span></div>`;
}

function renderDist(d, limits) {
  const s = d.stats;
  const pct = (s.progress * 100).toFixed(1);
  // min_time_basis: "configured" (reported capacities), "measured" (current rates) or "none".
  // A bound from measured rates follows what the transfer reached (ramp-up included): an
  // estimate, not a lower bound, and labelled so.
  const measured = s.min_time_basis === "measured";
  const basis = measured ? "measured rates" : "configured rates";
  const bound = s.min_time_secs > 0
    ? `${fmtSecs(d.elapsed_secs)} vs ${measured ? "estimate" : "bound"} ${fmtSecs(s.min_time_secs)} (${(d.elapsed_secs / s.min_time_secs).toFixed(2)}×) <span class="muted" data-field="bound-basis">from ${basis}</span>`
    : `${fmtSecs(d.elapsed_secs)} <span class="muted" data-field="bound-basis">(bound unknown yet: no rates)</span>`;
  // Relays whose piece hashes disagreed with another relay's (agents' reports): one line each.
  const conflicts = (d.hash_conflicts || []).map((c) =>
    `<div class="conflict" data-relay="${esc(c.relay)}"><code>${esc(c.relay)}</code>: from piece ${Number(c.first_piece)}, reported by ${Number(c.clients)} client(s)</div>`).join("");
  const conflictRow = conflicts
    ? `<dt class="warn">hash conflicts</dt><dd data-field="hash-conflicts">${conflicts}</dd>` : "";
  // Why a distribution failed (a relay's SHA-256 mismatch, say), when it did.
  const failureRow = d.failure_reason
    ? `<dt class="warn">failed because</dt><dd data-field="failure-reason">${esc(d.failure_reason)}</dd>` : "";
  const cancel = d.state === "active"
    ? `<button type="button" class="cancel" id="cancel-${esc(d.id)}" data-id="${esc(d.id)}">Cancel</button>` : "";
  return `<article class="dist" id="dist-${esc(d.id)}" data-state="${esc(d.state)}" data-progress="${s.progress}">
    <div>
      <h3><code>${esc(d.id)}</code> <span class="badge ${esc(d.state)}" data-field="state">${esc(d.state)}</span> ${cancel}</h3>
      <div class="url" title="${esc(d.origin_url)}">${esc(d.origin_url)}</div>
      <div class="bar"><div style="width:${pct}%"></div></div>
      <dl class="kv">
        <dt>progress</dt><dd data-field="progress">${pct}%</dd>
        <dt>targets</dt><dd data-field="targets">${s.targets}: ${s.pending} pending, ${s.running} running, ${s.done} done, ${s.failed} failed${s.cancelled ? ", " + s.cancelled + " cancelled" : ""}</dd>
        <dt>rate</dt><dd data-field="rate">${fmtRate(s.speed_bps)}</dd>
        <dt>bytes</dt><dd data-field="bytes">BT ${fmtBytes(s.bytes_bt)} · HTTP from relays ${fmtBytes(s.bytes_http_relay)} · origin (clients) ${fmtBytes(s.bytes_http_origin)}</dd>
        <dt>origin total</dt><dd data-field="origin">${fmtBytes(s.origin_bytes)} for a ${d.size ? fmtBytes(d.size) : "?"} file × ${d.relay_ids.length} relay(s)</dd>
        <dt>offload</dt><dd data-field="offload">${s.offload_ratio.toFixed(2)}×</dd>
        <dt>time</dt><dd data-field="time">${bound}</dd>
        <dt>relays</dt><dd>${esc(d.relay_ids.join(", ") || "none")}</dd>
        ${failureRow}${conflictRow}
      </dl>
    </div>
    <div>${chart(d, limits)}</div>
  </article>`;
}

function table(el, head, rows) {
  el.innerHTML = `<tr>${head.map((h) => `<th${h.endsWith("#") ? ' class="num"' : ""}>${esc(h.replace(/#$/, ""))}</th>`).join("")}</tr>` +
    (rows.length ? rows.join("") : `<tr><td colspan="${head.length}" class="muted">none</td></tr>`);
}

function meter(used, max) {
  if (max === null || max === undefined || max <= 0) return "";
  const f = Math.min(1, used / max);
  return `<span class="meter" title="${(f * 100).toFixed(0)}%"><div style="width:${(f * 100).toFixed(0)}%"></div></span>`;
}

function render(o) {
  lastOverview = o;
  const ds = o.distributions;
  $("#dists").innerHTML = ds.length ? ds.map((d) => renderDist(d, o.limits)).join("") : '<p class="muted">no distributions yet</p>';
  table($("#limits"), ["scope", "connections", "rate", "bytes in window", "leases#"], o.limits.map((l) => `<tr>
    <td>${esc(l.origin || "global")}</td>
    <td>${meter(l.used_conns, l.max_conns)}${l.used_conns} / ${esc(lim(l.max_conns))}</td>
    <td>${meter(l.used_rate_bps, l.max_rate_bps)}${fmtRate(l.used_rate_bps)} / ${l.max_rate_bps == null ? "unlimited" : fmtRate(l.max_rate_bps)}</td>
    <td>${meter(l.used_bytes_in_window, l.max_bytes)}${fmtBytes(l.used_bytes_in_window)} / ${l.max_bytes == null ? "unlimited" : fmtBytes(l.max_bytes)} per ${fmtSecs(l.window_secs)}</td>
    <td class="num">${l.live_leases}</td></tr>`));
  table($("#relays"), ["id", "zone", "state", "load#", "live leases#", "leased rate#", "served#"], o.relays.map((r) => `<tr>
    <td><code>${esc(r.id)}</code></td><td>${esc(r.zone || "—")}</td>
    <td class="${r.alive ? "online" : "offline"}">${r.alive ? "alive" : "dead"}</td>
    <td class="num">${(r.load * 100).toFixed(0)}%</td><td class="num">${r.live_leases}</td>
    <td class="num">${fmtRate(r.leased_rate_bps)}</td><td class="num">${fmtBytes(r.bytes_served)}</td></tr>`));
  $("#clients-online").textContent = `(${o.clients_online} online of ${o.clients.length})`;
  table($("#clients"), ["id", "zone", "labels", "state", "last seen"], o.clients.map((c) => `<tr>
    <td><code>${esc(c.id)}</code></td><td>${esc(c.zone || "—")}</td><td>${esc(c.labels.join(", "))}</td>
    <td class="${c.online ? "online" : "offline"}">${c.online ? "online" : "offline"}</td>
    <td>${c.last_seen_unix_ms ? esc(fmtTime(c.last_seen_unix_ms)) : "—"}</td></tr>`));
  table($("#audit"), ["time", "role", "via", "peer", "action", "target", "change"], o.audit.map((e) => `<tr>
    <td>${esc(fmtTime(e.at_unix_ms))}</td><td>${esc(e.role)}</td><td>${esc(e.via)}</td><td>${esc(e.peer)}</td>
    <td><code>${esc(e.action)}</code></td><td><code>${esc(e.target)}</code></td><td class="detail"><code>${esc(e.detail)}</code></td></tr>`));
  $("#status").textContent = `updated ${new Date(o.now_unix_ms).toLocaleTimeString()} · ${o.streams.client} client / ${o.streams.relay} relay streams`;
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const r = await api("GET", "/api/v1/overview", undefined, token());
    if (r.status === 401 || r.status === 403) {
      $("#status").textContent = "reads need the admin token on this listener";
      if (!$("#token-dialog").open && await askToken()) setTimeout(poll, 0);
    } else if (r.ok && r.data) {
      render(r.data);
    } else {
      $("#status").textContent = `overview failed (HTTP ${r.status})`;
    }
  } catch (e) {
    $("#status").textContent = "ctl unreachable: " + e;
  } finally {
    polling = false;
  }
}

document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button.cancel");
  if (b) adminAction(`cancel ${b.dataset.id}`, "POST", `/api/v1/distributions/${encodeURIComponent(b.dataset.id)}/cancel`);
});

$("#create-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const r = await adminAction("create", "POST", "/api/v1/distributions", {
    origin_url: f.get("origin_url"), targets: f.get("targets"),
    size: Number(f.get("size") || 0), priority: Number(f.get("priority") || 5),
  });
  if (r) notice("ok", `created ${r.id} (${r.target_count} targets, relays: ${r.relay_ids.join(", ") || "none"})`);
});

$("#limits-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const num = (k) => (f.get(k) === "" || f.get(k) === null ? null : Number(f.get(k)));
  await adminAction("set limits", "PUT", "/api/v1/limits", {
    origin: f.get("origin") || "", max_conns: num("max_conns"), max_rate_bps: num("max_rate_bps"),
    max_bytes: num("max_bytes"), window_secs: num("window_secs") || 3600,
  });
});

$("#forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showAuthState();
  notice("ok", "admin token forgotten");
});

showAuthState();
poll();
setInterval(poll, POLL_MS);
