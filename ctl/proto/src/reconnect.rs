//! Staying connected to ctl: exponential backoff, a call retried until it succeeds, and a task
//! stream watched forever (reconnecting, and registering again when ctl forgot the caller).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// The first wait after a failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Waits between attempts: `first`, doubling up to `max`; back to `first` on [`Backoff::reset`].
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits starting at `first` and capped at `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max, next: first.min(max) }
    }

    /// The wait to take now; the next one is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    /// Sleeps for [`Backoff::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Starts again from the first wait (after a success).
    pub fn reset(&mut self) {
        self.next = self.first.min(self.max);
    }
}

/// Calls `attempt` until it returns `Ok`, logging each failure as `"{what}; retrying"` and
/// waiting with `backoff` in between.
pub async fn retry_until_ok<T, E, F, Fut>(what: &str, backoff: Backoff, attempt: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match retry_unless_permanent(what, backoff, attempt, |_| false).await {
        Ok(v) => v,
        Err(_) => unreachable!("no failure is permanent here"),
    }
}

/// [`retry_until_ok`], except that a failure `permanent` says no retry can mend (a
/// certificate ctl refuses, or one we do not trust) is returned instead of retried.
pub async fn retry_unless_permanent<T, E, F, Fut>(
    what: &str,
    mut backoff: Backoff,
    mut attempt: F,
    permanent: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if permanent(&e) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "{what}; retrying"),
        }
        backoff.wait().await;
    }
}

/// How [`watch_forever`] opens its stream.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// Time limit for opening the stream (not for the stream itself).
    pub call_timeout: Duration,
    /// Waits between reconnects; reset after a stream that delivered messages.
    pub backoff: Backoff,
}

/// Watches a server stream forever: `open` starts the call, each message goes to `on_event`
/// (see [`follow_stream`]), and when the stream ends or cannot be opened it is opened again
/// after a backoff. When ctl answers `NotFound` (it forgot the caller), `on_not_found` runs
/// first, typically registering again. Never returns.
pub async fn watch_forever<T, O, OFut, E, EFut, R, RFut>(
    config: WatchConfig,
    mut open: O,
    mut on_event: E,
    mut on_not_found: R,
) where
    O: FnMut() -> OFut,
    OFut: Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>,
    E: FnMut(T) -> EFut,
    EFut: Future<Output = ()>,
    R: FnMut() -> RFut,
    RFut: Future,
{
    let mut backoff = config.backoff;
    loop {
        match tokio::time::timeout(config.call_timeout, open()).await {
            Ok(Ok(resp)) => {
                if follow_stream(resp.into_inner(), &mut on_event).await > 0 {
                    backoff.reset();
                }
            }
            Ok(Err(s)) if s.code() == tonic::Code::NotFound => {
                on_not_found().await;
            }
            Ok(Err(s)) => tracing::warn!(error = %s, "cannot watch tasks"),
            Err(_) => tracing::warn!("watching tasks timed out"),
        }
        backoff.wait().await;
    }
}

/// Reads a server stream (task pushes) until it ends or fails, handing each message to
/// `on_event`. Returns how many messages arrived, so a reconnect loop can reset its backoff.
/// Ends are logged; the caller reconnects (streams replay open state on connect).
pub async fn follow_stream<T, F, Fut>(mut stream: tonic::Streaming<T>, mut on_event: F) -> u64
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut received = 0;
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                received += 1;
                on_event(event).await;
            }
            Ok(None) => {
                tracing::warn!("ctl closed the task stream; reconnecting");
                return received;
            }
            Err(e) => {
                tracing::warn!(error = %e, "task stream failed; reconnecting");
                return received;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        let waits: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(250));
    }

    #[test]
    fn retry_until_ok_retries_failures_and_returns_the_first_success() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let calls = Cell::new(0);
        let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(4));
        let got = rt.block_on(retry_until_ok("test call failed", backoff, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 4 {
                    Err(format!("failure {n}"))
                } else {
                    Ok(n * 10)
                }
            }
        }));
        assert_eq!(got, 40);
        assert_eq!(calls.get(), 4, "three failures, then the success");
    }
}
