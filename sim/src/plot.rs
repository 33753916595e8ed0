//! The per-second curves as a PNG (plotters, bitmap backend): clients done, and the byte rates
//! by path. Text uses DejaVu Sans when the machine has it; without it the plot has no labels.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Outcome;

/// Why the plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(String);

const FONTS: [&str; 2] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"];

fn register_font() -> bool {
    for f in FONTS {
        if let Ok(bytes) = std::fs::read(f) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Draws `out`'s curves to `path` (two panels: clients done; MB/s by path).
pub fn plot(out: &Outcome, path: &Path, title: &str) -> Result<(), PlotError> {
    let e = |x: &dyn std::fmt::Display| PlotError(x.to_string());
    let text = register_font();
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, bottom) = root.split_vertically(400);
    let t_max = out.seconds.last().map_or(1.0, |s| s.t).max(1.0);
    let clients = out.clients.max(1) as f64;

    let mut a = ChartBuilder::on(&top);
    a.margin(15).x_label_area_size(if text { 30 } else { 5 }).y_label_area_size(if text { 60 } else { 5 });
    if text {
        a.caption(format!("{title}: clients done (bound {:.1} s)", out.bound), ("sans-serif", 20));
    }
    let mut a = a.build_cartesian_2d(0.0..t_max, 0.0..clients).map_err(|x| e(&x))?;
    if text {
        a.configure_mesh().x_desc("s").y_desc("clients").draw().map_err(|x| e(&x))?;
    }
    a.draw_series(LineSeries::new(out.seconds.iter().map(|s| (s.t, s.done as f64)), &BLUE))
        .map_err(|x| e(&x))?;
    a.draw_series(LineSeries::new([(out.bound, 0.0), (out.bound, clients)], &BLACK)).map_err(|x| e(&x))?;

    let mb = |v: f64| v / 1e6;
    let y_max = out
        .seconds
        .iter()
        .map(|s| mb(s.bt.max(s.http).max(s.origin_relays + s.origin_clients).max(s.relay_up)))
        .fold(1.0, f64::max);
    let mut b = ChartBuilder::on(&bottom);
    b.margin(15).x_label_area_size(if text { 30 } else { 5 }).y_label_area_size(if text { 60 } else { 5 });
    if text {
        b.caption(
            "MB/s: BitTorrent (red), HTTP from relays (green), origin (black), relay upload (blue)",
            ("sans-serif", 16),
        );
    }
    let mut b = b.build_cartesian_2d(0.0..t_max, 0.0..y_max * 1.05).map_err(|x| e(&x))?;
    if text {
        b.configure_mesh().x_desc("s").y_desc("MB/s").draw().map_err(|x| e(&x))?;
    }
    type Get = fn(&crate::Second) -> f64;
    let series: [(Get, RGBColor); 4] = [
        (|s| s.bt, RED),
        (|s| s.http, GREEN),
        (|s| s.origin_relays + s.origin_clients, BLACK),
        (|s| s.relay_up, BLUE),
    ];
    for (get, color) in series {
        b.draw_series(LineSeries::new(out.seconds.iter().map(|s| (s.t, mb(get(s)))), &color))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
