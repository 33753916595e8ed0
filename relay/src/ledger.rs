//! The relay's ctl counters on disk: what each distribution pulled from the origin and served,
//! kept in `<data-dir>/ctl-counters.json` so that a relay killed -9 loses nothing it pulled.
//!
//! ctl stores the totals of one counting *instance* per relay assignment and adds an instance's
//! totals up when a new one reports (`earlier_*`), so totals must only grow within an
//! instance. A relay restarted on the same data directory (and with the same id) takes the
//! instance id and the per-distribution totals of the file and counts on from them: to ctl it
//! is the same instance whose totals go on growing, so neither what the dead process pulled
//! after its last heartbeat is lost nor anything counted twice. Without a usable file (first
//! start, another relay id, a damaged file) the relay starts a new instance from zero, as
//! before.
//!
//! The file is rewritten (temporary file + rename) when a piece lands and at least every
//! 100 ms while counters move, and before every heartbeat, so what ctl was told never exceeds
//! what the file holds. A rename survives kill -9 (the page cache is the kernel's); a power
//! cut may lose the last writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// The file's name inside the data directory.
const FILE: &str = "ctl-counters.json";
/// The largest file read back (a few thousand distributions).
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Distributions kept in the file; beyond it those no longer running are dropped.
const MAX_ENTRIES: usize = 4096;

/// One distribution's totals over the instance's lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Body bytes pulled from the origin.
    pub origin_bytes: u64,
    /// Bytes served (HTTP and BitTorrent).
    pub served: u64,
}

/// Why the file was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LedgerError {
    /// Not JSON, or not the expected shape.
    #[error("not a counters file: {0}")]
    Format(String),
    /// Larger than any file this relay writes.
    #[error("the file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
}

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saved {
    /// The relay id the totals were reported under.
    pub relay_id: String,
    /// The counting instance (nonzero).
    pub instance: u64,
    /// Totals by distribution id.
    pub dists: BTreeMap<String, Totals>,
}

impl Saved {
    /// The file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let dists: serde_json::Map<String, serde_json::Value> = self
            .dists
            .iter()
            .map(|(d, t)| {
                (d.clone(), serde_json::json!({"origin_bytes": t.origin_bytes, "served": t.served}))
            })
            .collect();
        let v = serde_json::json!({"relay_id": self.relay_id, "instance": self.instance, "dists": dists});
        v.to_string().into_bytes()
    }

    /// Parses the file's bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Saved, LedgerError> {
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(LedgerError::TooLarge);
        }
        let bad = |what: &str| LedgerError::Format(what.to_string());
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| LedgerError::Format(e.to_string()))?;
        let relay_id =
            v.get("relay_id").and_then(|x| x.as_str()).ok_or_else(|| bad("no relay_id"))?.to_string();
        let instance = v
            .get("instance")
            .and_then(|x| x.as_u64())
            .filter(|&i| i != 0)
            .ok_or_else(|| bad("no instance"))?;
        let map = v.get("dists").and_then(|x| x.as_object()).ok_or_else(|| bad("no dists"))?;
        if map.len() > MAX_ENTRIES {
            return Err(bad("too many distributions"));
        }
        let mut dists = BTreeMap::new();
        for (d, t) in map {
            let n = |k: &str| t.get(k).and_then(|x| x.as_u64()).ok_or_else(|| bad("a total is not a number"));
            dists.insert(d.clone(), Totals { origin_bytes: n("origin_bytes")?, served: n("served")? });
        }
        Ok(Saved { relay_id, instance, dists })
    }
}

/// The counters file of one relay.
pub(crate) struct Ledger {
    path: PathBuf,
    relay_id: String,
    instance: u64,
    state: Mutex<State>,
}

struct State {
    dists: BTreeMap<String, Totals>,
    /// What the file holds now.
    written: BTreeMap<String, Totals>,
}

impl Ledger {
    /// Opens `<data_dir>/ctl-counters.json`: its instance and totals when it was written for
    /// `relay_id`, else a new instance (`fresh`) with nothing counted yet.
    pub(crate) fn open(data_dir: &Path, relay_id: &str, fresh: u64) -> Ledger {
        let path = data_dir.join(FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => match Saved::decode(&bytes) {
                Ok(s) if s.relay_id == relay_id => Some(s),
                Ok(s) => {
                    tracing::warn!(file = %path.display(), other = %s.relay_id, "the counters file is another relay's; counting from zero");
                    None
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read the counters file; counting from zero");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the counters file; counting from zero");
                None
            }
        };
        let (instance, dists) = match saved {
            Some(s) => {
                tracing::info!(
                    instance = s.instance,
                    dists = s.dists.len(),
                    "continuing the counters of the previous process"
                );
                (s.instance, s.dists)
            }
            None => (fresh, BTreeMap::new()),
        };
        Ledger {
            path,
            relay_id: relay_id.to_string(),
            instance,
            state: Mutex::new(State { dists, written: BTreeMap::new() }),
        }
    }

    /// The instance id to report with.
    pub(crate) fn instance(&self) -> u64 {
        self.instance
    }

    /// What earlier lives counted for `dist` (zero if nothing).
    pub(crate) fn base(&self, dist: &str) -> Totals {
        self.state.lock().dists.get(dist).copied().unwrap_or_default()
    }

    /// The distributions the file holds totals of.
    pub(crate) fn all(&self) -> BTreeMap<String, Totals> {
        self.state.lock().dists.clone()
    }

    /// Records `dist`'s totals (never lower than recorded: totals only grow) and writes the
    /// file if anything changed. `running` says which distributions are still running, for
    /// pruning a full file.
    pub(crate) fn record(&self, totals: &[(String, Totals)], running: &dyn Fn(&str) -> bool) {
        let mut st = self.state.lock();
        for (d, t) in totals {
            let e = st.dists.entry(d.clone()).or_default();
            e.origin_bytes = e.origin_bytes.max(t.origin_bytes);
            e.served = e.served.max(t.served);
        }
        if st.dists.len() > MAX_ENTRIES {
            st.dists.retain(|d, _| running(d));
        }
        if st.dists == st.written {
            return;
        }
        let saved =
            Saved { relay_id: self.relay_id.clone(), instance: self.instance, dists: st.dists.clone() };
        match write_atomic(&self.path, &saved.encode()) {
            Ok(()) => st.written = saved.dists,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot write the counters file")
            }
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(origin_bytes: u64, served: u64) -> Totals {
        Totals { origin_bytes, served }
    }

    #[test]
    fn a_restart_continues_the_instance_and_the_totals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Ledger::open(dir.path(), "relay-1", 11);
        assert_eq!(first.instance(), 11);
        assert_eq!(first.base("d1"), Totals::default());
        first.record(&[("d1".into(), t(1000, 5)), ("d2".into(), t(7, 0))], &|_| true);
        // Totals never go down.
        first.record(&[("d1".into(), t(900, 9))], &|_| true);
        drop(first);
        let second = Ledger::open(dir.path(), "relay-1", 22);
        assert_eq!(second.instance(), 11);
        assert_eq!(second.base("d1"), t(1000, 9));
        assert_eq!(second.base("d2"), t(7, 0));
        // Another relay id on the same directory starts from zero under its own instance.
        let other = Ledger::open(dir.path(), "relay-2", 33);
        assert_eq!((other.instance(), other.base("d1")), (33, Totals::default()));
    }

    #[test]
    fn a_damaged_file_starts_a_new_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(FILE),
            b"{\"relay_id\": \"relay-1\", \"instance\": 5, \"dists\": {\"d\": 1}}",
        )
        .expect("write");
        let l = Ledger::open(dir.path(), "relay-1", 44);
        assert_eq!((l.instance(), l.base("d")), (44, Totals::default()));
        assert!(matches!(
            Saved::decode(b"{\"relay_id\": \"r\", \"instance\": 0, \"dists\": {}}"),
            Err(LedgerError::Format(_))
        ));
    }

    #[test]
    fn a_full_file_drops_what_no_longer_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(dir.path(), "r", 1);
        let many: Vec<(String, Totals)> = (0..=MAX_ENTRIES).map(|i| (format!("d{i}"), t(1, 1))).collect();
        l.record(&many, &|d| d == "d0");
        assert_eq!(l.all().keys().collect::<Vec<_>>(), ["d0"]);
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Saved::decode(&bytes);
        }

        #[test]
        fn encoding_round_trips(instance in 1u64.., totals in proptest::collection::btree_map("[a-z0-9-]{1,12}", (any::<u64>(), any::<u64>()), 0..8)) {
            let saved = Saved {
                relay_id: "relay-x".into(),
                instance,
                dists: totals.into_iter().map(|(d, (o, s))| (d, t(o, s))).collect(),
            };
            prop_assert_eq!(Saved::decode(&saved.encode()).expect("decodes"), saved);
        }
    }
}
