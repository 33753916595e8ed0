//! A small Chrome DevTools Protocol client over a websocket (tungstenite): launches the
//! system Chromium headless with a fresh profile, opens one page and drives it with
//! `Runtime.evaluate`; every wait is bounded.

use floodgate_tests::{wait_for, ChildGuard};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The Chromium Debian installs (`tools/ci-setup.sh`).
pub(super) const CHROMIUM: &str = "/usr/bin/chromium";

/// Longest wait for one CDP answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium with one attached page.
pub(super) struct Browser {
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    _child: ChildGuard,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Launches Chromium (failing, not skipping, if it is missing) and opens `url`.
    pub(super) fn open(url: &str) -> Browser {
        assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is not installed: run tools/ci-setup.sh");
        let profile = tempfile::tempdir().expect("profile dir");
        let child = ChildGuard::spawn(
            Command::new(CHROMIUM)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--hide-scrollbars",
                    "--window-size=1400,1700",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("spawn chromium");
        // Chromium writes the port it bound and the browser's websocket path here.
        let active = profile.path().join("DevToolsActivePort");
        let (port, ws_path) = wait_for(Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&active).ok()?;
            let mut lines = text.lines();
            let port: u16 = lines.next()?.trim().parse().ok()?;
            let path = lines.next()?.trim().to_string();
            Some((port, path))
        })
        .expect("chromium did not report its DevTools port within 30 s");
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
        stream.set_read_timeout(Some(Duration::from_millis(500))).expect("read timeout");
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{ws_path}"), stream)
            .unwrap_or_else(|e| panic!("DevTools websocket handshake: {e}"));
        let mut b = Browser { ws, session: String::new(), next_id: 1, _child: child, _profile: profile };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = b.call("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("sessionId").to_string();
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b.call("Page.navigate", json!({"url": url}));
        b
    }

    /// Sends one command (to the page once attached) and returns its `result`; panics on a
    /// protocol error or after [`CALL_TIMEOUT`]. Events in between are skipped.
    pub(super) fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap_or_else(|e| panic!("CDP send {method}: {e}"));
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "CDP {method}: no answer within {CALL_TIMEOUT:?}");
            let m = match self.ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    continue
                }
                Err(e) => panic!("CDP read ({method}): {e}"),
            };
            let Message::Text(text) = m else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
            if v["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(err) = v.get("error") {
                panic!("CDP {method}: {err}");
            }
            return v["result"].clone();
        }
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its JSON value, or the
    /// exception text as `Err`.
    pub(super) fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(ex.to_string());
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expr` every 100 ms until it evaluates to something other than null/false/"",
    /// for at most `timeout`.
    pub(super) fn wait_js(&mut self, expr: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(v) = self.eval(expr) {
                let empty = v.is_null() || v == json!(false) || v == json!("");
                if !empty {
                    return Some(v);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub(super) fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = r["data"].as_str().expect("screenshot data");
        let png = data_encoding::BASE64.decode(data.as_bytes()).expect("screenshot base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifact dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}
