//! A URL-only task's content: no piece hashes are known up front, so the relay hashes each
//! piece as it lands, publishes the growing hash list, and when every piece is in builds a
//! standard `.torrent` (BEP 19 `url-list` pointing at the relay) and starts seeding it.

use std::sync::Arc;

use floodgate_engine::hash::sha1;
use floodgate_engine::layout::Layout;
use floodgate_engine::metainfo::{Metainfo, MetainfoBuilder};
use floodgate_engine::piece_map::Bitfield;
use floodgate_engine::store::{Store, StoreError};
use floodgate_engine::types::PieceIndex;
use parking_lot::Mutex;

struct State {
    hashes: Vec<Option<[u8; 20]>>,
    landed: Bitfield,
    bytes: u64,
}

/// Pieces of a URL-only task, hashed as they land.
pub struct Growing {
    /// Pieces onto the one file.
    pub layout: Arc<Layout>,
    store: Store,
    state: Mutex<State>,
}

impl Growing {
    /// Empty content over `store`.
    pub fn new(layout: Arc<Layout>, store: Store) -> Self {
        let n = layout.piece_count();
        let state = State { hashes: vec![None; n as usize], landed: Bitfield::new(n), bytes: 0 };
        Growing { layout, store, state: Mutex::new(state) }
    }

    /// Whether `piece` has landed.
    pub fn has(&self, piece: u32) -> bool {
        piece < self.layout.piece_count() && self.state.lock().landed.has(PieceIndex(piece))
    }

    /// Pieces landed.
    pub fn count(&self) -> u32 {
        self.state.lock().landed.count_ones()
    }

    /// Bytes in landed pieces.
    pub fn bytes(&self) -> u64 {
        self.state.lock().bytes
    }

    /// Writes and hashes a piece; returns false if it had landed already.
    pub fn land(&self, piece: u32, data: &[u8]) -> Result<bool, StoreError> {
        if self.has(piece) {
            return Ok(false);
        }
        let hash = sha1(data);
        self.store.write_at(self.layout.piece_offset(PieceIndex(piece)), data)?;
        let mut s = self.state.lock();
        if s.landed.set(PieceIndex(piece)) {
            s.hashes[piece as usize] = Some(hash);
            s.bytes += data.len() as u64;
        }
        Ok(true)
    }

    /// Reads landed bytes back.
    pub fn read(&self, offset: u64, len: usize) -> Result<bytes::Bytes, StoreError> {
        self.store.read_at(offset, len)
    }

    /// The store the pieces land in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hash list so far (`None` for pieces not landed).
    pub fn hashes(&self) -> Vec<Option<[u8; 20]>> {
        self.state.lock().hashes.clone()
    }

    /// Flushes the data.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.store.sync_all()
    }

    /// The complete torrent (once every piece landed), with `web_seed` as its BEP 19 url-list.
    pub fn build_torrent(&self, name: &str, web_seed: &str) -> Option<(Vec<u8>, Metainfo)> {
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
