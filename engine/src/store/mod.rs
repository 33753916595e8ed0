//! The piece store: a torrent's byte stream laid over its files in a download directory.
//!
//! [`Store`] is what callers hold: [`Store::Uring`] keeps real files and does its I/O through
//! the io_uring edge ([`crate::uring`]: the thread's ring, or `pread`/`pwrite`, which measured
//! faster for buffered I/O and is the default, see [`StoreConfig`]), [`Store::Memory`] keeps
//! everything in RAM for tests. Both take
//! stream offsets (the torrent as one byte string) and split them across files with
//! [`Layout::segments`].
//!
//! # Use from a multi-threaded peer engine
//!
//! Share one `Arc<Store>` among all peer threads (it is `Send + Sync`, lock-free on the disk
//! path; each thread's I/O goes through that thread's own ring or syscalls). As a block arrives as `Bytes`,
//! write it at once with [`Store::write_at`] (the kernel copies it into the page cache straight
//! from the `Bytes`; no user-space copy), and keep a clone of the `Bytes` (a reference count) in
//! the piece's block list. When the piece is complete, move the list into
//! [`crate::hash::Verifier::submit`]; on `Verified` call [`Store::piece_verified`] (fsync policy)
//! and announce HAVE; on `Mismatch` re-request the piece (its bytes get overwritten). Serving
//! uploads and HTTP Range reads use [`Store::read_at`] / [`Store::read_into`].
//!
//! # Invariants
//!
//! * Every path is `root.join(p)` where `p` has only plain components (no `..`, `.`, root or
//!   prefix): checked for all files before anything is created; final components are opened
//!   with `O_NOFOLLOW`.
//! * Files are created at open and have at least their layout length afterwards (preallocated
//!   with `fallocate`, or sparse with `ftruncate`), so reads of unwritten ranges return zeros.
//! * Ranges past the end of the torrent are refused ([`StoreError::OutOfRange`]), never cut.

mod disk;
mod error;
mod existing;
mod memory;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

pub use disk::UringStore;
pub use error::StoreError;
pub use existing::{verified_on_disk, verified_on_disk_against};
pub use memory::MemoryStore;

use crate::layout::Layout;
use crate::types::PieceIndex;
pub use crate::uring::Backend;

/// When the store asks the kernel to put data on stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never (the page cache writes back on its own schedule).
    None,
    /// `fdatasync` the files of each piece when it is verified, and all files at close.
    OnPieceVerified,
    /// `fdatasync` all files at close (each verified piece's writeback starts right away, so
    /// that sync is short).
    #[default]
    OnClose,
}

/// How a disk store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The fsync policy.
    pub fsync: FsyncPolicy,
    /// Reserve each file's blocks with `fallocate` at open (fails early if the disk is full).
    pub preallocate: bool,
    /// How writes reach the kernel. Default [`Backend::Sync`]: buffered `pwrite` on the calling
    /// thread; on ext4 io_uring punts buffered writes to `iou-wrk` threads, measured 2-4x
    /// slower (`BENCHMARKS.md`).
    pub writes: Backend,
    /// How reads reach the kernel. Default [`Backend::Sync`] (`pread`): on a quiet machine
    /// 1 MiB cached reads measured 15-20% faster than through the ring (`BENCHMARKS.md`).
    pub reads: Backend,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            fsync: FsyncPolicy::OnClose,
            preallocate: true,
            writes: Backend::Sync,
            reads: Backend::Sync,
        }
    }
}

/// A piece store, on disk or in memory; callers need not care which.
#[derive(Debug)]
pub enum Store {
    /// Real files through io_uring.
    Uring(UringStore),
    /// An in-memory buffer (tests).
    Memory(MemoryStore),
}

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Uring($s) => $e,
            Store::Memory($s) => $e,
        }
    };
}

impl Store {
    /// Opens (creating as needed) the files of `layout` under `root`.
    pub fn open(
        layout: impl Into<Arc<Layout>>,
        root: &Path,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        UringStore::open(layout, root, config).map(Store::Uring)
    }

    /// An in-memory store for `layout`.
    pub fn memory(layout: impl Into<Arc<Layout>>) -> Store {
        Store::Memory(MemoryStore::new(layout))
    }

    /// The layout this store follows.
    pub fn layout(&self) -> &Layout {
        both!(self, s => s.layout())
    }

    /// The open file of layout file `index`, for zero-copy serving (`sendfile`); `None` in
    /// memory or for a zero-length file.
    pub fn file(&self, index: usize) -> Option<&std::fs::File> {
        match self {
            Store::Uring(s) => s.open_file(index),
            Store::Memory(_) => None,
        }
    }

    /// Writes `data` at stream offset `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        both!(self, s => s.write_at(offset, data))
    }

    /// Writes consecutive blocks starting at stream offset `offset` in one batch.
    pub fn write_blocks<B: AsRef<[u8]>>(&self, offset: u64, blocks: &[B]) -> Result<(), StoreError> {
        both!(self, s => s.write_blocks(offset, blocks))
    }

    /// Writes a whole piece given as its blocks.
    pub fn write_piece<B: AsRef<[u8]>>(&self, piece: PieceIndex, blocks: &[B]) -> Result<(), StoreError> {
        let (off, _) = piece_range(self.layout(), piece)?;
        self.write_blocks(off, blocks)
    }

    /// Reads `len` bytes at stream offset `offset`.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StoreError> {
        both!(self, s => s.read_at(offset, len))
    }

    /// Appends `len` bytes at stream offset `offset` to `buf`; the buffer comes back either way.
    pub fn read_into(&self, offset: u64, len: usize, buf: BytesMut) -> (Result<(), StoreError>, BytesMut) {
        both!(self, s => s.read_into(offset, len, buf))
    }

    /// Reads a whole piece.
    pub fn read_piece(&self, piece: PieceIndex) -> Result<Bytes, StoreError> {
        let (off, len) = piece_range(self.layout(), piece)?;
        self.read_at(off, len as usize)
    }

    /// Whether every page of `piece` is in the page cache, so reading it will not wait for the
    /// disk (`cachestat(2)`, see [`crate::uring::residency`]). Always true in memory; an error
    /// (or a piece out of range) also answers true: the caller then just reads.
    pub fn is_cached(&self, piece: PieceIndex) -> bool {
        let Store::Uring(store) = self else { return true };
        let Ok((off, len)) = piece_range(self.layout(), piece) else { return true };
        self.layout().segments(off, len).all(|seg| {
            store.open_file(seg.file).is_none_or(|f| {
                crate::uring::residency(f, seg.file_offset, seg.len).map_or(true, |r| r.is_whole())
            })
        })
    }

    /// Tells the store a piece was verified (syncs it under [`FsyncPolicy::OnPieceVerified`],
    /// starts its writeback under [`FsyncPolicy::OnClose`]).
    pub fn piece_verified(&self, piece: PieceIndex) -> Result<(), StoreError> {
        both!(self, s => s.piece_verified(piece))
    }

    /// Syncs all data to disk now.
    pub fn sync_all(&self) -> Result<(), StoreError> {
        both!(self, s => s.sync_all())
    }

    /// Closes the store (syncing per policy); later calls fail with [`StoreError::Closed`].
    pub fn close(&self) -> Result<(), StoreError> {
        both!(self, s => s.close())
    }
}

/// Stream offset and length of `piece`, or `OutOfRange` if the index is past the end.
fn piece_range(layout: &Layout, piece: PieceIndex) -> Result<(u64, u64), StoreError> {
    match layout.piece(piece.0) {
        Some(p) => Ok((layout.piece_offset(p), layout.piece_size(p) as u64)),
        None => Err(StoreError::OutOfRange {
            offset: piece.0 as u64 * layout.piece_length() as u64,
            len: 0,
            total: layout.total_length(),
        }),
    }
}
