//! Cold pieces: a piece asked for upload whose pages are not all in the page cache is read on
//! a blocking thread, so a runtime thread (which drives every connection on its core) never
//! waits for the disk. A relay's file is often larger than its memory; a synchronous `pread`
//! of a cold piece would stall every other peer on that core for the read's duration.
//!
//! [`Store::is_cached`](crate::store::Store::is_cached) (one `cachestat(2)`) decides; a hot
//! piece is read in place as before. At most [`MAX_COLD_READS`] pieces of a torrent are read
//! at once, whatever the number of connections.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::torrent::Torrent;
use crate::types::PieceIndex;

/// Pieces of one torrent read off the runtime at once (each a blocking thread in disk reads).
pub(crate) const MAX_COLD_READS: usize = 16;

/// The bound on a torrent's cold reads.
#[derive(Debug)]
pub(crate) struct ColdReads {
    slots: Arc<Semaphore>,
}

impl Default for ColdReads {
    fn default() -> Self {
        ColdReads { slots: Arc::new(Semaphore::new(MAX_COLD_READS)) }
    }
}

impl ColdReads {
    /// Reads `piece` of `torrent` on a blocking thread once a slot is free; counted in the
    /// torrent's cold-read counters. `None` if the read failed (logged by `read_piece`).
    pub(crate) async fn read(&self, torrent: &Arc<Torrent>, piece: PieceIndex) -> Option<Bytes> {
        let _slot = self.slots.acquire().await.ok()?;
        let t = torrent.clone();
        let data = tokio::task::spawn_blocking(move || t.read_piece(piece)).await.ok()??;
        torrent.counters.cold_reads.fetch_add(1, Ordering::Relaxed);
        torrent.counters.cold_read_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        Some(data)
    }
}
