//! Sizes and rates on the command line: `256MiB`, `1GiB`, `500MB`; `80mbit`, `10gbit`, `50MB/s`.

/// Why a size or a rate did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot read {what} {text:?} (e.g. {example})")]
pub struct UnitError {
    /// "size" or "rate".
    pub what: &'static str,
    /// The text given.
    pub text: String,
    /// A valid example.
    pub example: &'static str,
}

fn split(s: &str) -> (f64, String) {
    let s = s.trim();
    let at = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E')).unwrap_or(s.len());
    let (n, u) = s.split_at(at);
    (n.parse().unwrap_or(f64::NAN), u.trim().to_ascii_lowercase())
}

/// A size in bytes: a number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB).
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let err = || UnitError { what: "size", text: s.to_string(), example: "256MiB" };
    let (n, u) = split(s);
    let m: f64 = match u.as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let v = n * m;
    if v.is_finite() && v >= 1.0 {
        Ok(v as u64)
    } else {
        Err(err())
    }
}

/// A rate in bytes/s: bits (`bit`, `kbit`, `mbit`, `gbit`) or bytes per second (`B/s`, `KB/s`,
/// `MB/s`, `GB/s`). A bare number is Mbit/s.
pub fn parse_rate(s: &str) -> Result<f64, UnitError> {
    let err = || UnitError { what: "rate", text: s.to_string(), example: "80mbit" };
    let (n, u) = split(s);
    let m = match u.trim_end_matches("/s").trim_end_matches("ps") {
        "" | "mbit" | "m" => 1e6 / 8.0,
        "bit" => 1.0 / 8.0,
        "kbit" | "k" => 1e3 / 8.0,
        "gbit" | "g" => 1e9 / 8.0,
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        _ => return Err(err()),
    };
    let v = n * m;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(err())
    }
}

/// A rate for people: `12.3 Mbit/s`.
pub fn show_rate(bytes_per_s: f64) -> String {
    let bits = bytes_per_s * 8.0;
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else {
        format!("{:.1} Mbit/s", bits / 1e6)
    }
}

/// A size for people: `1.00 GiB`.
pub fn show_size(bytes: f64) -> String {
    const G: f64 = 1024.0 * 1024.0 * 1024.0;
    if bytes >= 1024.0 * G {
        format!("{:.2} TiB", bytes / 1024.0 / G)
    } else if bytes >= G {
        format!("{:.2} GiB", bytes / G)
    } else {
        format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
    }
}
