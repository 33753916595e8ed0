//! The HTTP server's limits, and the command-line flags that set them.

use std::time::Duration;

/// Limits of the HTTP server.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    /// Connections one IP address may hold.
    pub per_ip_conns: usize,
    /// Requests per second one IP address may make (burst the same); 0 = unlimited.
    pub per_ip_rate: u64,
    /// Time for a client to send a whole request head (and keep-alive idle time).
    pub head_timeout: Duration,
    /// Time for one body chunk (at most 256 KiB) to be taken by the client (slow-client timeout).
    pub write_timeout: Duration,
    /// How long a request waits for bytes not pulled yet.
    pub data_wait: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        HttpArgs::default().config()
    }
}

/// `floodgate-relay` flags for the HTTP server (flattened into the relay's command line; ctl
/// mode still starts its server with the defaults).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct HttpArgs {
    /// HTTP connections one client IP address may hold at once.
    #[arg(long, default_value_t = 64)]
    pub http_conns_per_ip: usize,
    /// HTTP requests per second one client IP address may make (0 = unlimited).
    #[arg(long, default_value_t = 200)]
    pub http_rate_per_ip: u64,
    /// Seconds a client has to send a whole request head (also the keep-alive idle time).
    #[arg(long, default_value_t = 15)]
    pub http_head_timeout: u64,
    /// Seconds a client has to take each 256 KiB of a response body.
    #[arg(long, default_value_t = 30)]
    pub http_write_timeout: u64,
    /// Seconds a request waits for bytes the relay has not pulled yet.
    #[arg(long, default_value_t = 60)]
    pub http_data_wait: u64,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            http_conns_per_ip: 64,
            http_rate_per_ip: 200,
            http_head_timeout: 15,
            http_write_timeout: 30,
            http_data_wait: 60,
        }
    }
}

impl HttpArgs {
    /// The server limits these flags describe (timeouts of at least one second).
    pub(crate) fn config(&self) -> ServerConfig {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        ServerConfig {
            per_ip_conns: self.http_conns_per_ip.max(1),
            per_ip_rate: self.http_rate_per_ip,
            head_timeout: secs(self.http_head_timeout),
            write_timeout: secs(self.http_write_timeout),
            data_wait: secs(self.http_data_wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::HttpArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        http: HttpArgs,
    }

    #[test]
    fn defaults_match_the_flags() {
        let parsed = Cli::parse_from(["relay"]).http;
        let d = HttpArgs::default();
        assert_eq!(parsed.http_conns_per_ip, d.http_conns_per_ip);
        assert_eq!(parsed.http_rate_per_ip, d.http_rate_per_ip);
        assert_eq!(parsed.http_head_timeout, d.http_head_timeout);
        assert_eq!(parsed.http_write_timeout, d.http_write_timeout);
        assert_eq!(parsed.http_data_wait, d.http_data_wait);
    }
}
