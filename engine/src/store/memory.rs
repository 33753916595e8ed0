//! An in-memory piece store with the same behaviour as the disk one, for tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use super::StoreError;
use crate::layout::Layout;
use crate::types::PieceIndex;

/// A piece store holding the whole torrent in one zero-filled buffer.
#[derive(Debug)]
pub struct MemoryStore {
    layout: Arc<Layout>,
    data: RwLock<Vec<u8>>,
    closed: AtomicBool,
}

impl MemoryStore {
    /// An all-zero store for `layout` (the buffer is allocated lazily by the OS).
    pub fn new(layout: impl Into<Arc<Layout>>) -> Self {
        let layout = layout.into();
        let data = RwLock::new(vec![0; layout.total_length() as usize]);
        MemoryStore { layout, data, closed: AtomicBool::new(false) }
    }

    /// The layout this store follows.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn range(&self, offset: u64, len: u64) -> Result<std::ops::Range<usize>, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let total = self.layout.total_length();
        match offset.checked_add(len) {
            Some(end) if end <= total => Ok(offset as usize..end as usize),
            _ => Err(StoreError::OutOfRange { offset, len, total }),
        }
    }

    /// Writes `data` at stream offset `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        let r = self.range(offset, data.len() as u64)?;
        self.data.write()[r].copy_from_slice(data);
        Ok(())
    }

    /// Writes consecutive blocks starting at stream offset `offset`.
    pub fn write_blocks<B: AsRef<[u8]>>(&self, offset: u64, blocks: &[B]) -> Result<(), StoreError> {
        let total: u64 = blocks.iter().map(|b| b.as_ref().len() as u64).sum();
        let r = self.range(offset, total)?;
        let mut data = self.data.write();
        let mut pos = r.start;
        for b in blocks {
            let b = b.as_ref();
            data[pos..pos + b.len()].copy_from_slice(b);
            pos += b.len();
        }
        Ok(())
    }

    /// Reads `len` bytes at stream offset `offset`.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StoreError> {
        let (res, buf) = self.read_into(offset, len, BytesMut::new());
        res.map(|()| buf.freeze())
    }

    /// Appends `len` bytes read at stream offset `offset` to `buf`.
    pub fn read_into(
        &self,
        offset: u64,
        len: usize,
        mut buf: BytesMut,
    ) -> (Result<(), StoreError>, BytesMut) {
        match self.range(offset, len as u64) {
            Ok(r) => {
                buf.extend_from_slice(&self.data.read()[r]);
                (Ok(()), buf)
            }
            Err(e) => (Err(e), buf),
        }
    }

    /// Accepts a verified piece (nothing to sync in memory).
    pub fn piece_verified(&self, piece: PieceIndex) -> Result<(), StoreError> {
        let (off, len) = super::piece_range(&self.layout, piece)?;
        self.range(off, len).map(drop)
    }

    /// Nothing to sync in memory.
    pub fn sync_all(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Closes the store; later calls fail with [`StoreError::Closed`].
    pub fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
