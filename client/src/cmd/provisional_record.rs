//! The agent's record of its provisional jobs (`<output>/.floodgate-provisional.json`):
//! distribution id → the files of its provisional download, relative to the download
//! directory. Written before a provisional job opens its files and dropped once the job is
//! promoted, failed or cancelled, so a restarted agent (also after kill -9) can ask ctl about
//! each one and delete the data of those that failed or were cancelled while it was down.
//!
//! The file is bounded and read defensively: a damaged or oversized file is logged and
//! ignored (the record starts empty), and an entry naming a path outside the download
//! directory (absolute, or with `..`) is dropped, so nothing outside it is ever deleted.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use parking_lot::Mutex;

/// The record's file name inside the download directory.
pub(crate) const FILE_NAME: &str = ".floodgate-provisional.json";
/// At most this many distributions are recorded; later provisional jobs are not.
const MAX_ENTRIES: usize = 1024;
/// At most this many files per distribution.
const MAX_FILES: usize = 4096;
/// A record file larger than this is ignored.
const MAX_BYTES: u64 = 8 << 20;

/// The provisional jobs this agent started (and has not yet promoted, failed or cancelled).
pub(crate) struct ProvisionalRecord {
    root: PathBuf,
    entries: Mutex<BTreeMap<String, Vec<PathBuf>>>,
}

impl ProvisionalRecord {
    /// Reads the record under `root`; missing or damaged, it starts empty (damage is logged).
    pub(crate) fn load(root: &Path) -> Self {
        let path = root.join(FILE_NAME);
        let entries = match read(&path) {
            Ok(e) => e,
            Err(e) => {
                if path.exists() {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring the damaged record of provisional jobs");
                }
                BTreeMap::new()
            }
        };
        ProvisionalRecord { root: root.to_path_buf(), entries: Mutex::new(entries) }
    }

    /// Records `files` (absolute, under the download directory) as `dist`'s provisional data.
    pub(crate) fn add(&self, dist: &str, files: &[PathBuf]) {
        let rel: Vec<PathBuf> =
            files.iter().filter_map(|f| f.strip_prefix(&self.root).ok().map(Path::to_path_buf)).collect();
        let mut entries = self.entries.lock();
        if !entries.contains_key(dist) && entries.len() >= MAX_ENTRIES {
            tracing::warn!(
                dist,
                "too many provisional jobs recorded: this one is not (no cleanup after a restart)"
            );
            return;
        }
        if rel.len() > MAX_FILES || rel.len() != files.len() {
            tracing::warn!(
                dist,
                "provisional files not recordable (too many, or outside the download directory)"
            );
            return;
        }
        entries.insert(dist.to_string(), rel);
        self.save(&entries);
    }

    /// Drops `dist`'s entry; returns its files (absolute), if it had one.
    pub(crate) fn take(&self, dist: &str) -> Option<Vec<PathBuf>> {
        let mut entries = self.entries.lock();
        let files = entries.remove(dist)?;
        self.save(&entries);
        Some(files.iter().map(|f| self.root.join(f)).collect())
    }

    /// Whether `dist` is recorded.
    pub(crate) fn contains(&self, dist: &str) -> bool {
        self.entries.lock().contains_key(dist)
    }

    /// The recorded distributions.
    pub(crate) fn dists(&self) -> Vec<String> {
        self.entries.lock().keys().cloned().collect()
    }

    /// Writes the record (a temporary file renamed over it); a failure is logged.
    fn save(&self, entries: &BTreeMap<String, Vec<PathBuf>>) {
        let path = self.root.join(FILE_NAME);
        let tmp = self.root.join(format!("{FILE_NAME}.tmp"));
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(entries).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %path.display(), error = %e, "cannot write the record of provisional jobs");
        }
    }
}

/// Reads and checks a record file.
fn read(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<PathBuf>>> {
    let len = std::fs::metadata(path)?.len();
    anyhow::ensure!(len <= MAX_BYTES, "{len} bytes, over the {MAX_BYTES}-byte limit");
    let bytes = std::fs::read(path)?;
    parse(&bytes)
}

/// Parses a record: a JSON object of distribution id → relative paths, within the limits;
/// entries with a path that could leave the download directory are dropped.
fn parse(bytes: &[u8]) -> anyhow::Result<BTreeMap<String, Vec<PathBuf>>> {
    let raw: BTreeMap<String, Vec<PathBuf>> = serde_json::from_slice(bytes)?;
    anyhow::ensure!(raw.len() <= MAX_ENTRIES, "{} entries, over the limit of {MAX_ENTRIES}", raw.len());
    let mut out = BTreeMap::new();
    for (dist, files) in raw {
        let inside = |f: &PathBuf| {
            f.components().next().is_some() && f.components().all(|c| matches!(c, Component::Normal(_)))
        };
        if dist.is_empty() || dist.len() > 256 || files.len() > MAX_FILES || !files.iter().all(inside) {
            tracing::warn!(dist = %dist.escape_debug(), "ignoring a bad entry of the provisional record");
            continue;
        }
        out.insert(dist, files);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reload_and_are_taken_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = ProvisionalRecord::load(dir.path());
        rec.add("d1", &[dir.path().join("a.bin"), dir.path().join("sub/b.bin")]);
        rec.add("d2", &[dir.path().join("c.bin")]);
        let again = ProvisionalRecord::load(dir.path());
        assert_eq!(again.dists(), ["d1", "d2"]);
        assert_eq!(again.take("d1"), Some(vec![dir.path().join("a.bin"), dir.path().join("sub/b.bin")]));
        assert_eq!(again.take("d1"), None);
        assert_eq!(ProvisionalRecord::load(dir.path()).dists(), ["d2"]);
    }

    #[test]
    fn a_damaged_record_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in [&b"{not json"[..], b"[1,2]", b"{\"d\": [1]}", b"\xff\xfe"] {
            std::fs::write(dir.path().join(FILE_NAME), bad).expect("write");
            assert!(ProvisionalRecord::load(dir.path()).dists().is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn paths_that_leave_the_directory_are_dropped() {
        let got = parse(br#"{"ok": ["a/b.bin"], "up": ["../x"], "abs": ["/etc/passwd"], "none": [""]}"#)
            .expect("parse");
        assert_eq!(got.keys().collect::<Vec<_>>(), ["ok"]);
    }

    #[test]
    fn the_record_is_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = ProvisionalRecord::load(dir.path());
        for i in 0..MAX_ENTRIES + 5 {
            rec.entries.lock().insert(format!("d{i}"), vec![PathBuf::from("f")]);
        }
        let big = serde_json::to_vec(&*rec.entries.lock()).expect("json");
        assert!(parse(&big).is_err(), "over the cap: refused");
        let rec = ProvisionalRecord::load(dir.path());
        for i in 0..MAX_ENTRIES + 5 {
            rec.add(&format!("d{i}"), &[dir.path().join("f")]);
        }
        assert_eq!(rec.dists().len(), MAX_ENTRIES);
    }
}
