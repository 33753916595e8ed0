//! ctl's web dashboard in a real browser: a throttled `fg-origin`, `floodgate-ctl serve
//! --http-listen`, one relay and two agents on 127.0.0.1, and headless Chromium driven over
//! CDP. The page must show a running distribution's progress advancing without a reload,
//! refuse a cancel without the admin token (and with a wrong one), cancel with it, and show
//! the change in its audit log. Screenshots go to `target/test-artifacts/`.

use std::time::Duration;

use serde_json::Value;

use super::cdp::{self, Browser};
use super::{artifact_dir, Fleet};
use crate::ctl::ADMIN;
use crate::e2e::ctl_json;

/// 12 MiB at 400 kB/s from the origin: about 30 s of pulling, long enough to watch progress
/// and cancel while the transfer runs.
const SIZE: usize = 12 * 1024 * 1024;

/// The distribution card's progress on screen, in percent.
fn progress_expr(id: &str) -> String {
    format!("(() => {{ const e = document.querySelector('#dist-{id} [data-field=progress]'); return e ? parseFloat(e.textContent) : null; }})()")
}

/// Clicks the card's cancel button and waits for the token dialog.
fn click_cancel(b: &mut Browser, id: &str) {
    b.eval(&format!("document.getElementById('cancel-{id}').click()")).expect("click cancel");
    b.wait_js("document.getElementById('token-dialog').open", Duration::from_secs(10))
        .expect("the token dialog did not open on cancel");
}

/// The notice line once its text contains `want`.
fn wait_notice(b: &mut Browser, want: &str) -> Value {
    let expr = format!(
        "(() => {{ const n = document.getElementById('notice'); return n.textContent.includes({want:?}) ? {{cls: n.className, text: n.textContent}} : null; }})()"
    );
    b.wait_js(&expr, Duration::from_secs(10)).unwrap_or_else(|| {
        let now = b.eval("document.getElementById('notice').textContent");
        panic!("notice never said {want:?}; it says {now:?}")
    })
}

fn card_state(b: &mut Browser, id: &str) -> Option<String> {
    b.eval(&format!("document.getElementById('dist-{id}')?.dataset.state ?? null"))
        .ok()?
        .as_str()
        .map(String::from)
}

/// The card's hash-conflict lines (and its failure reason), rendered by the page's own `renderDist` from the
/// distribution as the page last read it (`hash_conflicts` must be there, empty: no relay
/// disagrees in this fleet) with two conflicting relays put in. That ctl's JSON carries real
/// reports is `faststart_conflict`'s test; this checks the page reads the field.
fn hash_conflicts_are_shown_per_relay(b: &mut Browser, id: &str) {
    let expr = format!(
        "(() => {{ const o = lastOverview; const d = o && o.distributions.find((x) => x.id === {id:?}); if (!d) return null; \
         const copy = JSON.parse(JSON.stringify(d)); const field = Array.isArray(copy.hash_conflicts) ? copy.hash_conflicts.length : -1; \
         const without = renderDist(copy, o.limits).includes('hash conflicts'); \
         copy.hash_conflicts = [{{relay: 'relay-a', first_piece: 3, clients: 2, hash_seen_first: '', hash_from_relay: ''}}, \
           {{relay: 'relay-<b>', first_piece: 0, clients: 1, hash_seen_first: '', hash_from_relay: ''}}]; \
         const el = document.createElement('div'); el.innerHTML = renderDist(copy, o.limits); \
         const lines = [...el.querySelectorAll('[data-field=hash-conflicts] .conflict')].map((e) => [e.dataset.relay, e.textContent]); \
         const noReason = el.querySelector('[data-field=failure-reason]') === null; \
         copy.failure_reason = 'sha256 <mismatch> from relay-a'; el.innerHTML = renderDist(copy, o.limits); \
         const reasonEl = el.querySelector('[data-field=failure-reason]'); \
         return {{field, without, lines, noReason, reason: reasonEl && reasonEl.textContent}}; }})()"
    );
    let got = b.wait_js(&expr, Duration::from_secs(10)).expect("the page's last overview");
    assert_eq!(got["field"], 0, "the distribution's JSON has hash_conflicts, empty here: {got}");
    assert_eq!(got["without"], false, "no conflict line without conflicts: {got}");
    let want = serde_json::json!([
        ["relay-a", "relay-a: from piece 3, reported by 2 client(s)"],
        ["relay-<b>", "relay-<b>: from piece 0, reported by 1 client(s)"],
    ]);
    assert_eq!(got["lines"], want, "one line per conflicting relay, escaped: {got}");
    assert_eq!(got["noReason"], true, "no failure line for a distribution that has not failed: {got}");
    assert_eq!(got["reason"], "sha256 <mismatch> from relay-a", "a failure reason is shown, escaped: {got}");
}

#[test]
fn dashboard_shows_progress_and_cancels_only_with_the_admin_token() {
    assert!(
        std::path::Path::new(cdp::CHROMIUM).exists(),
        "{} is not installed: run tools/ci-setup.sh",
        cdp::CHROMIUM
    );
    let fleet = Fleet::start(SIZE, 400_000, 2);
    let (ctl, http, url) = (&fleet.ctl, fleet.http, fleet.origin.url());
    let id = fleet.distribute();

    let mut b = Browser::open(&format!("http://{http}/"));
    b.wait_js(&format!("document.getElementById('dist-{id}')"), Duration::from_secs(15))
        .expect("the distribution did not appear on the dashboard");
    hash_conflicts_are_shown_per_relay(&mut b, &id);

    // Progress advances on screen without a reload.
    let first = b
        .wait_js(
            &format!("(() => {{ const p = {}; return p > 0 ? p : null; }})()", progress_expr(&id)),
            Duration::from_secs(30),
        )
        .and_then(|v| v.as_f64())
        .expect("no progress shown within 30 s");
    let later = b
        .wait_js(
            &format!("(() => {{ const p = {}; return p > {first} ? p : null; }})()", progress_expr(&id)),
            Duration::from_secs(20),
        )
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("progress stayed at {first}% for 20 s"));
    assert!(later < 100.0, "the transfer finished before the test could cancel it ({later}%)");
    let targets = b
        .eval(&format!("document.querySelector('#dist-{id} [data-field=targets]').textContent"))
        .expect("targets");
    assert!(targets.as_str().is_some_and(|t| t.starts_with("2:")), "targets on screen: {targets}");
    // The chart has drawn at least one BitTorrent or origin line by now.
    b.wait_js(
        &format!("document.querySelectorAll('#dist-{id} svg polyline').length > 0"),
        Duration::from_secs(10),
    )
    .expect("no rate chart lines");
    // Neither the real relay nor the agents report capacities: the bound shown is taken over
    // the rates ctl measured while the transfer runs, and says so.
    b.wait_js(
        &format!(
            "document.querySelector('#dist-{id} [data-field=bound-basis]')?.textContent.includes('measured rates') || null"
        ),
        Duration::from_secs(10),
    )
    .expect("the dashboard did not show a bound from measured rates");
    b.screenshot(&artifact_dir().join("dashboard-progress.png"));

    // Without a token: refused, shown as refused, nothing changes.
    click_cancel(&mut b, &id);
    b.eval("document.getElementById('token-cancel').click()").expect("decline token");
    let n = wait_notice(&mut b, "refused");
    assert_eq!(n["cls"], "refused", "{n}");
    assert!(n["text"].as_str().is_some_and(|t| t.contains("HTTP 401")), "{n}");
    // With a wrong token: refused too.
    click_cancel(&mut b, &id);
    b.eval("document.getElementById('token-input').value = 'not-the-admin-token'; document.getElementById('token-ok').click()")
        .expect("wrong token");
    let n = wait_notice(&mut b, "HTTP 403");
    assert_eq!(n["cls"], "refused", "{n}");
    assert_eq!(card_state(&mut b, &id).as_deref(), Some("active"));
    let d = ctl_json(ctl, &["dist", "get", &id]).expect("dist get");
    assert_eq!(d["state"], "active", "a refused cancel changed the distribution: {d}");

    // With the admin token: cancelled, on screen and in ctl.
    click_cancel(&mut b, &id);
    b.eval(&format!("document.getElementById('token-input').value = {ADMIN:?}; document.getElementById('token-ok').click()"))
        .expect("admin token");
    b.wait_js(
        &format!("document.getElementById('dist-{id}')?.dataset.state === 'cancelled'"),
        Duration::from_secs(10),
    )
    .expect("the dashboard did not show the distribution cancelled");
    let d = ctl_json(ctl, &["dist", "get", &id]).expect("dist get");
    assert_eq!(d["state"], "cancelled", "{d}");

    // The audit log records exactly the one accepted cancel (refusals change nothing), on
    // screen and through the CLI.
    b.wait_js(
        "document.getElementById('audit').textContent.includes('dist.cancel')",
        Duration::from_secs(10),
    )
    .expect("the audit table did not show the cancel");
    let audit = ctl_json(ctl, &["audit"]).expect("audit");
    let cancels: Vec<&Value> =
        audit.as_array().expect("audit array").iter().filter(|e| e["action"] == "dist.cancel").collect();
    assert_eq!(cancels.len(), 1, "{audit}");
    assert_eq!(cancels[0]["target"], id.as_str());
    assert_eq!(cancels[0]["via"], "http");
    assert_eq!(cancels[0]["role"], "admin");
    assert!(
        audit
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["action"] == "dist.create" && e["via"] == "grpc")),
        "{audit}"
    );

    // The token is kept for the session: creating from the form asks nothing more.
    b.eval(&format!(
        "document.getElementById('create-url').value = {url:?}; document.getElementById('create-targets').value = 'label:web'; document.getElementById('create-submit').click()"
    ))
    .expect("submit create");
    let n = wait_notice(&mut b, "created d-");
    assert_eq!(n["cls"], "ok", "{n}");
    let open = b.eval("document.getElementById('token-dialog').open").expect("dialog state");
    assert_eq!(open, Value::Bool(false), "the token was asked for again");
    let dists = ctl_json(ctl, &["dist", "list"]).expect("dist list");
    assert_eq!(dists.as_array().map(Vec::len), Some(2), "{dists}");
    b.wait_js("document.querySelectorAll('article.dist').length === 2", Duration::from_secs(10))
        .expect("the new distribution did not appear");
    b.screenshot(&artifact_dir().join("dashboard.png"));
}
