//! A tiny HTTP/1.1 endpoint: Prometheus `/metrics` and a one-page dashboard at `/`.

use crate::state::State;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accepts connections forever.
pub async fn serve(l: TcpListener, st: Arc<State>) {
    loop {
        let Ok((mut sock, _)) = l.accept().await else { continue };
        let st = st.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (ctype, body, code) = match path.as_str() {
                "/metrics" => ("text/plain; version=0.0.4", metrics(&st).await, "200 OK"),
                "/" => ("text/html; charset=utf-8", dashboard(&st).await, "200 OK"),
                _ => ("text/plain", "not found\n".to_string(), "404 Not Found"),
            };
            let head = format!(
                "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        });
    }
}

async fn metrics(st: &State) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# TYPE floodgate_client_streams gauge\nfloodgate_client_streams {}",
        st.hub.client_streams()
    );
    let _ = writeln!(
        s,
        "# TYPE floodgate_relay_streams gauge\nfloodgate_relay_streams {}",
        st.hub.relay_streams()
    );
    if let Ok(dists) = st.db.list_distributions().await {
        let active = dists.iter().filter(|d| d.state == "active").count();
        let _ = writeln!(
            s,
            "# TYPE floodgate_distributions_active gauge\nfloodgate_distributions_active {active}"
        );
        let _ = writeln!(s, "# TYPE floodgate_dist_done gauge");
        for d in dists.iter().filter(|d| d.state == "active") {
            if let Ok(row) = st.db.stats(&d.id).await {
                let _ = writeln!(s, "floodgate_dist_done{{dist=\"{}\"}} {}", d.id, row.done);
                let _ = writeln!(s, "floodgate_dist_targets{{dist=\"{}\"}} {}", d.id, row.targets);
            }
        }
    }
    if let Ok(limits) = st.db.limits_with_usage().await {
        let _ = writeln!(s, "# TYPE floodgate_origin_leased_conns gauge");
        for (l, u) in limits {
            let _ = writeln!(s, "floodgate_origin_leased_conns{{origin=\"{}\"}} {}", l.origin, u.conns);
            let _ = writeln!(s, "floodgate_origin_leased_rate_bps{{origin=\"{}\"}} {}", l.origin, u.rate);
            let _ = writeln!(s, "floodgate_origin_live_leases{{origin=\"{}\"}} {}", l.origin, u.count);
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn dashboard(st: &State) -> String {
    let mut s = String::from(
        "<!doctype html><meta http-equiv=refresh content=2><title>Floodgate</title>\
         <style>body{font:14px sans-serif}td,th{padding:2px 8px;text-align:left}</style>\
         <h1>Floodgate control plane</h1><h2>Distributions</h2><table><tr><th>id<th>state<th>url<th>done/targets<th>progress<th>offload</tr>",
    );
    if let Ok(dists) = st.db.list_distributions().await {
        for d in dists.iter().take(100) {
            if let Ok(row) = st.db.stats(&d.id).await {
                let stats = crate::stats::build(&row, d.size);
                let _ = write!(
                    s,
                    "<tr><td>{}<td>{}<td>{}<td>{}/{}<td>{:.1}%<td>{:.1}</tr>",
                    esc(&d.id),
                    esc(&d.state),
                    esc(&d.origin_url),
                    stats.done,
                    stats.targets,
                    stats.progress * 100.0,
                    stats.offload_ratio
                );
            }
        }
    }
    s.push_str("</table><h2>Relays</h2><table><tr><th>id<th>zone<th>alive<th>load</tr>");
    if let Ok(relays) = st.db.list_relays().await {
        for r in relays {
            let _ =
                write!(s, "<tr><td>{}<td>{}<td>{}<td>{:.2}</tr>", esc(&r.id), esc(&r.zone), r.alive, r.load);
        }
    }
    let _ = write!(s, "</table><p>connected client streams: {}</p>", st.hub.client_streams());
    s
}
