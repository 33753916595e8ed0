//! Logging set-up shared by every binary: `tracing` to stderr as text or as one JSON object
//! per line (`--log-format json`), filtered by `RUST_LOG` or the binary's default filter.

use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, spans), for log
    /// collectors.
    Json,
}

/// Installs the global `tracing` subscriber writing to stderr in `format`. The filter comes
/// from `RUST_LOG` when set and valid, else `default_filter` (e.g. `"info"`).
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
}
