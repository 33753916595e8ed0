//! A URL-only task's content: no piece hashes are known up front, so the relay hashes each
//! piece as it lands, publishes the growing hash list, and when every piece is in builds a
//! standard `.torrent` (BEP 19 `url-list` pointing at the relay) and starts seeding it.
//!
//! Resume: each landed piece's hash is appended to a journal file beside the data. After a
//! restart (even `kill -9`) the pieces in the journal whose bytes on disk still hash the same
//! count as landed; the rest is pulled again. The journal is keyed on the file's length and
//! piece length; the task id already fixes the URL. The origin's ETag is kept beside it
//! (`<journal>.etag`): when the pull's probe sees another ETag after a restart, the origin file
//! changed between runs, and the resumed pieces are dropped ([`Growing::check_origin`]).

use std::path::PathBuf;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use floodgate_engine::hash::sha1;
use floodgate_engine::layout::Layout;
use floodgate_engine::metainfo::{Metainfo, MetainfoBuilder};
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::store::{Store, StoreError};
use floodgate_engine::types::PieceIndex;
use parking_lot::Mutex;

/// The journal's first bytes; the file length (u64 LE) and piece length (u32 LE) follow.
const MAGIC: &[u8; 8] = b"FGPIECE1";
/// Header bytes: magic, length, piece length.
const HEADER: usize = 8 + 8 + 4;
/// One record: piece index (u32 LE) and SHA-1.
const RECORD: usize = 4 + 20;

struct State {
    hashes: Vec<Option<[u8; 20]>>,
    /// Pieces in the order they landed (resumed ones first), for incremental hash lists.
    order: Vec<u32>,
    landed: Bitfield,
    bytes: u64,
    /// Where landed pieces are recorded (append-only), if the content is resumable.
    journal: Option<File>,
    /// The journal's path (to restart it) and the origin ETag file beside it.
    journal_path: Option<PathBuf>,
}

/// Pieces of a URL-only task, hashed as they land.
pub(crate) struct Growing {
    /// Pieces onto the one file.
    pub layout: Arc<Layout>,
    store: Store,
    state: Mutex<State>,
}

impl Growing {
    /// Empty content over `store`, not recorded anywhere (nothing survives a restart).
    pub(crate) fn new(layout: Arc<Layout>, store: Store) -> Self {
        let n = layout.piece_count();
        let state = State {
            hashes: vec![None; n as usize],
            order: Vec::new(),
            landed: Bitfield::new(n),
            bytes: 0,
            journal: None,
            journal_path: None,
        };
        Growing { layout, store, state: Mutex::new(state) }
    }

    /// Content over `store` recorded in `journal`: the pieces a previous run recorded there
    /// whose bytes in `store` still match their hash count as landed.
    pub(crate) fn open(layout: Arc<Layout>, store: Store, journal: &Path) -> std::io::Result<Self> {
        let growing = Growing::new(layout, store);
        let old = match std::fs::read(journal) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let header = growing.header();
        if old.len() >= HEADER && old[..HEADER] == header[..] {
            for rec in old[HEADER..].chunks_exact(RECORD) {
                let piece = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
                let mut hash = [0u8; 20];
                hash.copy_from_slice(&rec[4..]);
                growing.resume_piece(piece, hash);
            }
        } else if !old.is_empty() {
            tracing::warn!(journal = %journal.display(), "piece journal is for another file layout; starting over");
        }
        // Rewrite it with just the pieces that checked out, so it stays one record per piece.
        let mut fresh = header.to_vec();
        {
            let s = growing.state.lock();
            for (i, h) in s.hashes.iter().enumerate() {
                if let Some(h) = h {
                    fresh.extend_from_slice(&(i as u32).to_le_bytes());
                    fresh.extend_from_slice(h);
                }
            }
        }
        let mut tmp = journal.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, &fresh)?;
        std::fs::rename(&tmp, journal)?;
        let file = OpenOptions::new().append(true).open(journal)?;
        let mut s = growing.state.lock();
        s.journal = Some(file);
        s.journal_path = Some(journal.to_path_buf());
        drop(s);
        Ok(growing)
    }

    fn etag_path(journal: &Path) -> PathBuf {
        let mut p = journal.as_os_str().to_owned();
        p.push(".etag");
        PathBuf::from(p)
    }

    /// Checks resumed content against the origin's current ETag (from the pull's probe) and
    /// records it for the next run. If an earlier run recorded another ETag, the origin file
    /// changed in between: every resumed piece is dropped (and the journal restarted), so old
    /// and new bytes are never mixed. Returns whether the resumed pieces were kept.
    pub(crate) fn check_origin(&self, etag: Option<&str>) -> bool {
        let mut s = self.state.lock();
        let Some(journal) = s.journal_path.clone() else { return true };
        let tag_file = Self::etag_path(&journal);
        let old = std::fs::read_to_string(&tag_file).ok();
        let changed = matches!((old.as_deref(), etag), (Some(a), Some(b)) if a != b);
        if changed {
            let n = self.layout.piece_count();
            s.hashes = vec![None; n as usize];
            s.order.clear();
            s.landed = Bitfield::new(n);
            s.bytes = 0;
            let header = self.header();
            s.journal = std::fs::write(&journal, header)
                .and_then(|()| OpenOptions::new().append(true).open(&journal))
                .map_err(|e| tracing::warn!(error = %e, "cannot restart the piece journal"))
                .ok();
        }
        let write = match etag {
            Some(t) => std::fs::write(&tag_file, t),
            None => std::fs::remove_file(&tag_file).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }),
        };
        if let Err(e) = write {
            tracing::warn!(error = %e, file = %tag_file.display(), "cannot record the origin's ETag");
        }
        !changed
    }

    fn header(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(MAGIC);
        h[8..16].copy_from_slice(&self.layout.total_length().to_le_bytes());
        h[16..].copy_from_slice(&self.layout.piece_length().to_le_bytes());
        h
    }

    /// Takes a journal record as landed if the piece's bytes on disk hash to it.
    fn resume_piece(&self, piece: u32, hash: [u8; 20]) {
        if piece >= self.layout.piece_count() || self.has(piece) {
            return;
        }
        let p = PieceIndex(piece);
        let size = self.layout.piece_size(p);
        let Ok(data) = self.store.read_at(self.layout.piece_offset(p), size as usize) else {
            return;
        };
        if sha1(&data) != hash {
            return;
        }
        let mut s = self.state.lock();
        if s.landed.set(p) {
            s.hashes[piece as usize] = Some(hash);
            s.order.push(piece);
            s.bytes += u64::from(size);
        }
    }

    /// Whether `piece` has landed.
    pub(crate) fn has(&self, piece: u32) -> bool {
        piece < self.layout.piece_count() && self.state.lock().landed.has(PieceIndex(piece))
    }

    /// Pieces landed.
    pub(crate) fn count(&self) -> u32 {
        self.state.lock().landed.count_ones()
    }

    /// Bytes in landed pieces.
    pub(crate) fn bytes(&self) -> u64 {
        self.state.lock().bytes
    }

    /// Writes and hashes a piece; returns false if it had landed already.
    pub(crate) fn land(&self, piece: u32, data: &[u8]) -> Result<bool, StoreError> {
        if self.has(piece) {
            return Ok(false);
        }
        let hash = sha1(data);
        self.store.write_at(self.layout.piece_offset(PieceIndex(piece)), data)?;
        let mut s = self.state.lock();
        if s.landed.set(PieceIndex(piece)) {
            s.hashes[piece as usize] = Some(hash);
            s.order.push(piece);
            s.bytes += data.len() as u64;
            if let Some(j) = s.journal.as_mut() {
                let mut rec = [0u8; RECORD];
                rec[..4].copy_from_slice(&piece.to_le_bytes());
                rec[4..].copy_from_slice(&hash);
                // One write per record: a crash leaves at most a torn last record, ignored on resume.
                if let Err(e) = j.write_all(&rec) {
                    tracing::warn!(error = %e, piece, "cannot record the piece in the journal; it will be pulled again after a restart");
                }
            }
        }
        Ok(true)
    }

    /// Reads landed bytes back.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Result<bytes::Bytes, StoreError> {
        self.store.read_at(offset, len)
    }

    /// The store the pieces land in.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The hash of `piece`, once it landed.
    pub(crate) fn hash(&self, piece: u32) -> Option<[u8; 20]> {
        self.state.lock().hashes.get(piece as usize).copied().flatten()
    }

    /// The pieces that landed after the first `seq` (in landing order) with their hashes, and
    /// the sequence number to ask from next time. A `seq` from before a restart of the
    /// journal (the origin changed) is answered from the start.
    pub(crate) fn landed_since(&self, seq: u64) -> (u64, Vec<(u32, [u8; 20])>) {
        let s = self.state.lock();
        let from = usize::try_from(seq).unwrap_or(usize::MAX).min(s.order.len());
        let new = s.order[from..].iter().filter_map(|&p| s.hashes[p as usize].map(|h| (p, h))).collect();
        (s.order.len() as u64, new)
    }

    /// The pieces landed so far, as a bitfield.
    pub(crate) fn landed(&self) -> Bitfield {
        self.state.lock().landed.clone()
    }

    /// The hash list so far (`None` for pieces not landed).
    pub(crate) fn hashes(&self) -> Vec<Option<[u8; 20]>> {
        self.state.lock().hashes.clone()
    }

    /// Flushes the data.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.store.sync_all()
    }

    /// The complete torrent (once every piece landed), with `web_seed` as its BEP 19 url-list.
    pub(crate) fn build_torrent(&self, name: &str, web_seed: &str) -> Option<(Vec<u8>, Metainfo)> {
        let hashes: Option<Vec<[u8; 20]>> = self.state.lock().hashes.iter().copied().collect();
        let builder =
            MetainfoBuilder::single_file(name, self.layout.total_length(), self.layout.piece_length())
                .piece_hashes(hashes?)
                .web_seed(web_seed)
                .created_by(concat!("floodgate-relay/", env!("CARGO_PKG_VERSION")));
        match builder.build() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the task's torrent");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u32 = 16 * 1024;

    fn content(len: u64) -> (Arc<Layout>, Vec<u8>) {
        let layout = Arc::new(Layout::single("f", len, PIECE).expect("layout"));
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        (layout, data)
    }

    /// A store over the files under `dir` (a new one per "run" of the relay).
    fn store(layout: &Arc<Layout>, dir: &Path) -> Store {
        let config = floodgate_engine::store::StoreConfig::default();
        Store::open(Layout::clone(layout), dir, config).expect("open the store")
    }

    #[test]
    fn journal_resumes_landed_pieces_and_drops_them_when_the_origin_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = dir.path().join("t.pieces");
        let (layout, data) = content(5 * u64::from(PIECE) + 3);
        let g = Growing::open(layout.clone(), store(&layout, dir.path()), &journal).expect("open");
        assert!(g.check_origin(Some("\"v1\"")));
        for p in [0u32, 2, 5] {
            let off = layout.piece_offset(PieceIndex(p)) as usize;
            let len = layout.piece_size(PieceIndex(p)) as usize;
            assert!(g.land(p, &data[off..off + len]).expect("land"));
        }
        drop(g);
        let again = Growing::open(layout.clone(), store(&layout, dir.path()), &journal).expect("reopen");
        assert_eq!(again.count(), 3);
        assert!(again.check_origin(Some("\"v1\"")), "same ETag: pieces kept");
        assert_eq!(again.count(), 3);
        assert!(!again.check_origin(Some("\"v2\"")), "another ETag: pieces dropped");
        assert_eq!((again.count(), again.bytes()), (0, 0));
        drop(again);
        let after = Growing::open(layout.clone(), store(&layout, dir.path()), &journal)
            .expect("reopen after the change");
        assert_eq!(after.count(), 0, "the restarted journal holds nothing old");
    }

    proptest::proptest! {
        /// Any bytes in the journal file (torn, hostile, from another file): opening never
        /// panics, and only pieces whose bytes in the store match a recorded hash count.
        #[test]
        fn any_journal_bytes_are_safe(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), keep_header: bool) {
            let dir = tempfile::tempdir().expect("tempdir");
            let journal = dir.path().join("t.pieces");
            let (layout, data) = content(3 * u64::from(PIECE) + 100);
            store(&layout, dir.path()).write_at(0, &data).expect("fill the store");
            let mut bytes = if keep_header { Growing::new(layout.clone(), store(&layout, dir.path())).header().to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&tail);
            std::fs::write(&journal, &bytes).expect("write journal");
            let g = Growing::open(layout.clone(), store(&layout, dir.path()), &journal).expect("open");
            for (i, h) in g.hashes().iter().enumerate() {
                if let Some(h) = h {
                    let p = PieceIndex(i as u32);
                    let off = layout.piece_offset(p) as usize;
                    let len = layout.piece_size(p) as usize;
                    proptest::prop_assert_eq!(*h, sha1(&data[off..off + len]));
                }
            }
        }
    }
}
