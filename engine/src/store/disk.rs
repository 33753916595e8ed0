//! The on-disk piece store: files under a download directory, I/O through [`crate::uring`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{FsyncPolicy, StoreConfig, StoreError};
use crate::layout::Layout;
use crate::types::PieceIndex;
use crate::uring::{self, Backend, Op, ReadSeg};

/// Ops pushed per `io_uring_enter` by the write paths (kept on the stack: no allocation).
const BATCH: usize = 32;

/// A piece store over real files, doing its I/O through [`crate::uring`] on the calling thread
/// (its ring or `pread`/`pwrite`, per [`StoreConfig`]).
///
/// `Sync`: any number of threads may read and write disjoint ranges at once (positional I/O
/// on shared file descriptors, a ring per thread, no lock).
#[derive(Debug)]
pub struct UringStore {
    layout: Arc<Layout>,
    root: PathBuf,
    /// One per layout file; `None` for zero-length files (created, never kept open).
    files: Vec<Option<File>>,
    fsync: FsyncPolicy,
    writes: Backend,
    reads: Backend,
    closed: AtomicBool,
}

/// `root.join(rel)` if `rel` is a non-empty relative path of plain components.
pub(crate) fn confined(root: &Path, rel: &Path) -> Result<PathBuf, StoreError> {
    let plain =
        rel.components().next().is_some() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(root.join(rel))
    } else {
        Err(StoreError::UnsafePath { path: rel.to_path_buf() })
    }
}

impl UringStore {
    /// Creates the download directory, every file's parent directories and the files, and
    /// preallocates them if configured. Existing files are kept (resume) and never shrunk.
    pub fn open(
        layout: impl Into<Arc<Layout>>,
        root: &Path,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let layout = layout.into();
        let root_err = |source| StoreError::RootUnavailable { path: root.to_path_buf(), source };
        std::fs::create_dir_all(root).map_err(root_err)?;
        if !root.is_dir() {
            return Err(root_err(io::Error::from(io::ErrorKind::NotADirectory)));
        }
        // Check every path before touching the disk for any of them.
        let paths = layout.files().iter().map(|f| confined(root, &f.path)).collect::<Result<Vec<_>, _>>()?;
        let mut files = Vec::with_capacity(paths.len());
        for (span, path) in layout.files().iter().zip(&paths) {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|source| StoreError::NotWritable { path: parent.to_path_buf(), source })?;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|source| StoreError::NotWritable { path: path.clone(), source })?;
            if span.length == 0 {
                files.push(None);
                continue;
            }
            let io_err = |op, source| StoreError::from_io(op, path.clone(), span.length, source);
            let current = file.metadata().map_err(|e| io_err("stat", e))?.len();
            if current < span.length {
                let allocated = if config.preallocate {
                    match uring::fallocate(&file, 0, span.length) {
                        Ok(()) => true,
                        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => false,
                        Err(e) => return Err(io_err("fallocate", e)),
                    }
                } else {
                    false
                };
                if !allocated {
                    file.set_len(span.length).map_err(|e| io_err("set_len", e))?;
                }
            }
            files.push(Some(file));
        }
        Ok(UringStore {
            layout,
            root: root.to_path_buf(),
            files,
            fsync: config.fsync,
            writes: config.writes,
            reads: config.reads,
            closed: AtomicBool::new(false),
        })
    }

    /// The layout this store follows.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The download directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let total = self.layout.total_length();
        match offset.checked_add(len) {
            Some(end) if end <= total => Ok(()),
            _ => Err(StoreError::OutOfRange { offset, len, total }),
        }
    }

    /// The open file of layout file `index` (`None` for a zero-length file), for zero-copy
    /// serving (`sendfile`) of verified ranges.
    pub fn open_file(&self, index: usize) -> Option<&File> {
        self.files.get(index).and_then(Option::as_ref)
    }

    fn file(&self, index: usize) -> Result<&File, StoreError> {
        self.files.get(index).and_then(Option::as_ref).ok_or_else(|| StoreError::Io {
            op: "lookup",
            path: self.root.clone(),
            source: io::Error::other(format!("no open file for layout file {index}")),
        })
    }

    fn write_err(&self, needed: u64, e: io::Error) -> StoreError {
        StoreError::from_io("write", self.root.clone(), needed, e)
    }

    /// Writes `data` at stream offset `offset`, split across files as the layout says.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        self.write_blocks(offset, std::slice::from_ref(&data))
    }

    /// Writes consecutive blocks starting at stream offset `offset`, all submitted together
    /// (one ring submission per 32 file segments).
    pub fn write_blocks<B: AsRef<[u8]>>(&self, offset: u64, blocks: &[B]) -> Result<(), StoreError> {
        let total: u64 = blocks.iter().map(|b| b.as_ref().len() as u64).sum();
        self.check(offset, total)?;
        let mut ops: [Op<'_>; BATCH] = std::array::from_fn(|_| Op::none());
        let mut n = 0;
        let mut pos = offset;
        for block in blocks {
            let data = block.as_ref();
            for seg in self.layout.segments(pos, data.len() as u64) {
                let part = &data[seg.range_offset as usize..(seg.range_offset + seg.len) as usize];
                ops[n] = Op::write(self.file(seg.file)?, seg.file_offset, part);
                n += 1;
                if n == BATCH {
                    uring::submit_via(&mut ops[..n], self.writes).map_err(|e| self.write_err(total, e))?;
                    n = 0;
                }
            }
            pos += data.len() as u64;
        }
        uring::submit_via(&mut ops[..n], self.writes).map_err(|e| self.write_err(total, e))
    }

    /// Reads `len` bytes at stream offset `offset` into a fresh buffer.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StoreError> {
        let (res, buf) = self.read_into(offset, len, BytesMut::new());
        res.map(|()| buf.freeze())
    }

    /// Appends `len` bytes read at stream offset `offset` to `buf` (reserving space if needed),
    /// returning the buffer with the result; on failure its contents are unchanged.
    pub fn read_into(
        &self,
        offset: u64,
        len: usize,
        mut buf: BytesMut,
    ) -> (Result<(), StoreError>, BytesMut) {
        if let Err(e) = self.check(offset, len as u64) {
            return (Err(e), buf);
        }
        buf.reserve(len);
        let segs = self.layout.segments(offset, len as u64).filter_map(|seg| {
            // Segments never name zero-length files, so the file is always open.
            let file = self.files.get(seg.file)?.as_ref()?;
            Some(ReadSeg {
                file,
                file_offset: seg.file_offset,
                buf_offset: seg.range_offset as usize,
                len: seg.len as usize,
            })
        });
        let (res, buf) = uring::read_segments(buf, len, segs, self.reads);
        (res.map_err(|source| StoreError::Io { op: "read", path: self.root.clone(), source }), buf)
    }

    /// Tells the store a piece was verified: syncs its files under [`FsyncPolicy::OnPieceVerified`];
    /// under [`FsyncPolicy::OnClose`] starts writing the piece back without waiting, so the sync
    /// at close finds little left to do (its disk I/O overlaps the download instead of following it).
    pub fn piece_verified(&self, piece: PieceIndex) -> Result<(), StoreError> {
        let (off, len) = super::piece_range(&self.layout, piece)?;
        self.check(off, len)?;
        match self.fsync {
            FsyncPolicy::None => Ok(()),
            FsyncPolicy::OnPieceVerified => {
                self.layout.segments(off, len).try_for_each(|seg| self.sync_file(seg.file))
            }
            FsyncPolicy::OnClose => self.layout.segments(off, len).try_for_each(|seg| {
                let Some(f) = self.files.get(seg.file).and_then(Option::as_ref) else { return Ok(()) };
                uring::start_writeback(f, seg.file_offset, seg.len).map_err(|source| StoreError::Io {
                    op: "sync_file_range",
                    path: self.layout.files()[seg.file].path.clone(),
                    source,
                })
            }),
        }
    }

    fn sync_file(&self, index: usize) -> Result<(), StoreError> {
        match self.files.get(index).and_then(Option::as_ref) {
            Some(f) => f.sync_data().map_err(|source| StoreError::Io {
                op: "fsync",
                path: self.layout.files()[index].path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Syncs every file's data to disk now, whatever the policy.
    pub fn sync_all(&self) -> Result<(), StoreError> {
        (0..self.files.len()).try_for_each(|i| self.sync_file(i))
    }

    /// Closes the store: syncs unless the policy is [`FsyncPolicy::None`]; later calls fail
    /// with [`StoreError::Closed`]. The descriptors are released when the store is dropped.
    pub fn close(&self) -> Result<(), StoreError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match self.fsync {
            FsyncPolicy::None => Ok(()),
            FsyncPolicy::OnPieceVerified | FsyncPolicy::OnClose => self.sync_all(),
        }
    }
}
