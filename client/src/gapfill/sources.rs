//! The HTTP sources of one download, in the order they are used: relays, then the torrent's
//! web seeds (BEP 19 `url-list`, magnet `ws=`) and sources given by hand, then the origin.
//! A source that errors is backed off; one whose bytes fail a piece hash is demoted, and
//! dropped on a second strike; one whose length or validators do not fit is dropped at once; one
//! that keeps failing in ways that may pass (down, 5xx, stalls) rests, tried every 30 s. A
//! relay whose piece hashes disagree with another relay's is dropped for the rest of the
//! download ([`Source::is_relay_at`], [`Source::exclude`]), whatever it served so far.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floodgate_fetch::{backoff, HttpUrl, Validators};

use super::webseed::FileValidators;

/// Hash failures after which a source is dropped (the first one demotes it).
const DROP_AFTER_STRIKES: u32 = 2;
/// Errors in a row after which a source is only tried every [`RESTING_RETRY`].
const REST_AFTER_ERRORS: u32 = 8;
/// How often a source that keeps failing is tried again (libtorrent waits 30 s before it
/// retries a failed web seed). A relay that was down or restarting comes back this way; it is
/// never dropped for errors that may pass.
const RESTING_RETRY: Duration = Duration::from_secs(30);

/// Where a source sits in the order, and how its bytes are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum SourceKind {
    /// A relay's `/tasks/<id>/data`.
    Relay,
    /// A web seed of the torrent, or a source given with `--http-source`.
    WebSeed,
    /// The origin itself (only under an origin lease).
    Origin,
}

/// One source and what has been learnt of it.
#[derive(Debug)]
pub(super) struct Source {
    /// The parsed URL.
    pub url: HttpUrl,
    /// Its place in the order.
    pub kind: SourceKind,
    /// Length and ETag, once probed (a source addressing the whole torrent).
    pub validators: Option<Validators>,
    /// For a BEP 19 web seed of a multi-file torrent (the URL names a directory, each file is
    /// fetched at its own URL): what its files answered so far. `None` for a source that
    /// addresses the torrent as one byte stream (relays, the origin, single-file web seeds).
    pub files: Option<FileValidators>,
    /// Workers fetching from it now.
    pub busy: usize,
    /// Body bytes received from it.
    pub bytes: u64,
    /// Bytes/s of its last requests (moving average; 0 before the first).
    pub rate: f64,
    /// Pieces of its that failed their hash.
    pub strikes: u32,
    /// Errors in a row.
    pub errors: u32,
    /// Not used before this instant (backoff).
    pub not_before: Option<Instant>,
    /// Given up: wrong file, repeated bad bytes, or repeated errors.
    pub dropped: Option<String>,
}

impl Source {
    /// A source not probed yet.
    pub(super) fn new(url: HttpUrl, kind: SourceKind) -> Self {
        Source {
            url,
            kind,
            validators: None,
            files: None,
            busy: 0,
            bytes: 0,
            rate: 0.0,
            strikes: 0,
            errors: 0,
            not_before: None,
            dropped: None,
        }
    }

    /// Whether a worker may use it at `now` (with at most `per_source` workers on it).
    pub(super) fn usable(&self, now: Instant, per_source: usize) -> bool {
        self.dropped.is_none() && self.busy < per_source && self.not_before.is_none_or(|t| now >= t)
    }

    /// Records a request that delivered `bytes` in `took`.
    pub(super) fn succeeded(&mut self, bytes: u64, took: Duration) {
        self.errors = 0;
        self.not_before = None;
        let rate = bytes as f64 / took.as_secs_f64().max(1e-3);
        self.rate = if self.rate == 0.0 { rate } else { 0.7 * self.rate + 0.3 * rate };
    }

    /// Records a failed request: dropped if the error cannot pass (`fatal`), else backed off,
    /// and after many in a row tried only every [`RESTING_RETRY`].
    pub(super) fn failed(&mut self, why: &str, fatal: bool, now: Instant) {
        self.errors += 1;
        if fatal {
            self.drop_it(why);
        } else if self.errors >= REST_AFTER_ERRORS {
            if self.errors == REST_AFTER_ERRORS {
                tracing::warn!(source = %self.url, reason = why, errors = self.errors, "HTTP source keeps failing; retrying it every 30 s");
            }
            self.not_before = Some(now + RESTING_RETRY);
        } else {
            self.not_before = Some(now + backoff(self.errors - 1));
        }
    }

    /// Records a piece whose bytes failed the hash: demoted, then dropped.
    pub(super) fn struck(&mut self) {
        self.strikes += 1;
        if self.strikes >= DROP_AFTER_STRIKES {
            self.drop_it("its bytes failed piece hashes");
        }
    }

    /// Whether this is a relay's source at `addr` (the relay's HTTP address).
    pub(super) fn is_relay_at(&self, addr: SocketAddr) -> bool {
        self.kind == SourceKind::Relay
            && self.url.port == addr.port()
            && self.url.host.parse::<IpAddr>().is_ok_and(|ip| ip == addr.ip())
    }

    /// Drops it for good whatever it did so far (its relay is not to be used for this
    /// download); a request on it now ends after its current piece.
    pub(super) fn exclude(&mut self, why: &str) {
        self.drop_it(why);
    }

    fn drop_it(&mut self, why: &str) {
        if self.dropped.is_none() {
            tracing::warn!(source = %self.url, reason = why, "HTTP source dropped");
            self.dropped = Some(why.to_string());
        }
    }

    /// Sort key: kind first, demoted sources after clean ones, then the fastest.
    fn rank(&self) -> (SourceKind, u32, i64) {
        (self.kind, self.strikes, -(self.rate as i64))
    }
}

/// Index of the best usable source at `now`, if any.
pub(super) fn best(sources: &[Source], now: Instant, per_source: usize) -> Option<usize> {
    sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.usable(now, per_source))
        .min_by_key(|(_, s)| s.rank())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(url: &str, kind: SourceKind) -> Source {
        Source::new(HttpUrl::parse(url).unwrap(), kind)
    }

    #[test]
    fn order_demotion_and_backoff() {
        let now = Instant::now();
        let mut s = vec![
            src("http://o/f", SourceKind::Origin),
            src("http://w/f", SourceKind::WebSeed),
            src("http://r/f", SourceKind::Relay),
        ];
        assert_eq!(best(&s, now, 2), Some(2), "relays first");
        s[2].struck();
        assert_eq!(best(&s, now, 2), Some(2), "a demoted relay still comes before web seeds");
        s[2].struck();
        assert!(s[2].dropped.is_some());
        assert_eq!(best(&s, now, 2), Some(1));
        s[1].failed("503", false, now);
        assert_eq!(best(&s, now, 2), Some(0), "backed off");
        assert_eq!(best(&s, now + Duration::from_secs(1), 2), Some(1), "back after the backoff");
        s[1].busy = 2;
        assert_eq!(best(&s, now + Duration::from_secs(1), 2), Some(0), "at most per_source workers");
        s[0].failed("wrong length", true, now);
        assert!(s[0].dropped.is_some());
    }

    #[test]
    fn an_excluded_relay_is_never_used_again() {
        let now = Instant::now();
        let mut s = vec![
            src("http://127.0.0.3:8080/tasks/x/data", SourceKind::Relay),
            src("http://127.0.0.3:8080/f", SourceKind::WebSeed),
        ];
        let relay: SocketAddr = "127.0.0.3:8080".parse().unwrap();
        assert!(s[0].is_relay_at(relay));
        assert!(!s[0].is_relay_at("127.0.0.3:8081".parse().unwrap()));
        assert!(!s[1].is_relay_at(relay), "only relay sources");
        s[0].exclude("its piece hashes disagree with another relay's");
        assert_eq!(best(&s, now, 2), Some(1));
        s[0].succeeded(1, Duration::from_millis(1));
        assert_eq!(best(&s, now + RESTING_RETRY * 10, 2), Some(1), "an excluded relay does not come back");
    }

    #[test]
    fn a_source_that_keeps_failing_rests_but_comes_back() {
        let now = Instant::now();
        let mut s = vec![src("http://r/f", SourceKind::Relay)];
        for _ in 0..20 {
            s[0].failed("connection refused", false, now);
        }
        assert!(s[0].dropped.is_none(), "errors that may pass never drop a source");
        assert_eq!(best(&s, now + Duration::from_secs(29), 1), None, "resting");
        assert_eq!(best(&s, now + RESTING_RETRY, 1), Some(0), "tried again after the rest");
    }
}
