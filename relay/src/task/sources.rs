//! What a task's pull got from each of its origin URLs (the primary and its mirrors): bytes,
//! runs, failures and whether the mirror was refused, for `/tasks` and `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use floodgate_engine::http::redact;
use parking_lot::Mutex;

/// One origin URL of a task and its counters (monotonic, relaxed).
#[derive(Debug)]
pub(crate) struct Source {
    /// The URL as given (may carry credentials: never show it, show `label`).
    pub url: String,
    /// The URL redacted, for logs, `/tasks` and metric labels.
    pub label: String,
    /// Bytes of whole pieces received from this URL (spot checks included).
    pub bytes: AtomicU64,
    /// Runs fetched from it in full.
    pub runs: AtomicU64,
    /// Failed requests and probes.
    pub failures: AtomicU64,
    /// Why it is not used any more, if it was refused.
    refused: Mutex<Option<String>>,
}

impl Source {
    /// A source for `url`.
    pub(crate) fn new(url: String) -> Self {
        Source {
            label: redact(&url),
            url,
            bytes: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            refused: Mutex::new(None),
        }
    }

    /// Marks it refused (the first reason stays).
    pub(crate) fn refuse(&self, why: String) {
        self.refused.lock().get_or_insert(why);
    }

    /// Why it was refused, if it was.
    pub(crate) fn refused(&self) -> Option<String> {
        self.refused.lock().clone()
    }

    /// `/tasks` JSON of this source.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.label,
            "bytes": self.bytes.load(Ordering::Relaxed),
            "runs": self.runs.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "refused": self.refused(),
        })
    }
}
