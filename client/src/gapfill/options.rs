//! The gap-filling options of `get` and `agent`: command-line flags, then the defaults. The
//! `--config` TOML file (keys named like the flags) is merged into the command line before it
//! is parsed (`floodgate_proto::with_config_file`), so flags override the file.

use std::path::PathBuf;
use std::time::Duration;

use floodgate_engine::gapfill::SwitchConfig;

/// Gap-filling flags (also accepted as keys of the `--config` TOML file).
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct HttpOptions {
    /// BitTorrent rate below which HTTP fills gaps, bytes/s [default: 500000].
    #[arg(long, value_name = "BYTES_PER_S")]
    pub bt_threshold: Option<u64>,
    /// Seconds between speed samples [default: 2].
    #[arg(long, value_name = "SECS")]
    pub check_interval: Option<f64>,
    /// Seconds of the sliding window the BitTorrent rate is measured over [default: 45].
    #[arg(long, value_name = "SECS")]
    pub window: Option<f64>,
    /// Seconds after a level change before HTTP use may be lowered [default: 120].
    #[arg(long, value_name = "SECS")]
    pub cooldown: Option<f64>,
    /// At the partial level, the most HTTP takes per decision period, percent of what is left [default: 30].
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub http_share: Option<u8>,
    /// Never use HTTP (BitTorrent only).
    #[arg(long)]
    pub no_http: bool,
    /// An HTTP source of the file (repeatable); used after relays, with the torrent's web seeds.
    /// For a multi-file torrent it is a BEP 19 web seed: the directory holding the torrent's
    /// directory, each file fetched at URL/NAME/PATH (percent-encoded).
    #[arg(long = "http-source", value_name = "URL")]
    pub http_sources: Vec<String>,
    /// A TOML file whose keys are this command's long flag names (`bt-threshold = 500000`,
    /// `http-source = ["…"]`, …); flags override it. Example: `deploy/config/agent.toml`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl HttpOptions {
    /// The switch settings: these options over `base`.
    pub(crate) fn switch(&self, base: SwitchConfig) -> anyhow::Result<SwitchConfig> {
        let secs = |v: Option<f64>, name: &str, d: Duration| -> anyhow::Result<Duration> {
            match v {
                None => Ok(d),
                Some(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
                Some(s) => anyhow::bail!("--{name} must be a positive number of seconds, not {s}"),
            }
        };
        let threshold = match self.bt_threshold {
            Some(0) => anyhow::bail!("--bt-threshold must be positive"),
            Some(t) => t,
            None => base.threshold,
        };
        let share = self.http_share.unwrap_or(base.share_percent);
        if !(1..=100).contains(&share) {
            anyhow::bail!("http-share must be 1–100, not {share}");
        }
        Ok(SwitchConfig {
            interval: secs(self.check_interval, "check-interval", base.interval)?,
            window: secs(self.window, "window", base.window)?,
            cooldown: secs(self.cooldown, "cooldown", base.cooldown)?,
            threshold,
            share_percent: share,
            ..base
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_defaults_and_bad_values_are_refused() {
        let opts = HttpOptions { window: Some(50.0), bt_threshold: Some(100_000), ..Default::default() };
        let sw = opts.switch(SwitchConfig::default()).unwrap();
        assert_eq!(sw.threshold, 100_000);
        assert_eq!(sw.window, Duration::from_secs(50));
        assert_eq!(sw.interval, Duration::from_secs(2));
        let bad = HttpOptions { cooldown: Some(-1.0), ..Default::default() };
        assert!(bad.switch(SwitchConfig::default()).is_err());
        let bad = HttpOptions { bt_threshold: Some(0), ..Default::default() };
        assert!(bad.switch(SwitchConfig::default()).is_err());
    }
}
