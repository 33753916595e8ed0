//! Errors of the piece store.

use std::io;
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The download directory does not exist and could not be created (or is not a directory).
    #[error("download directory {} is missing and cannot be created: {source}", path.display())]
    RootUnavailable {
        /// The download directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A file or one of its parent directories could not be created or opened for writing.
    #[error("cannot create or open {} for writing: {source}", path.display())]
    NotWritable {
        /// The file or directory that failed.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A layout path is absolute, empty, or has a `..`/`.` component: it could escape the root.
    #[error("refusing path that could escape the download directory: {}", path.display())]
    UnsafePath {
        /// The offending relative path from the layout.
        path: PathBuf,
    },
    /// The disk is full (`ENOSPC`) while preallocating or writing.
    #[error("disk full: no space left for {} ({needed} bytes needed)", path.display())]
    DiskFull {
        /// The file being preallocated, or the download directory for a write.
        path: PathBuf,
        /// Bytes the failed operation needed.
        needed: u64,
    },
    /// The range lies (partly) beyond the end of the torrent.
    #[error("range {offset}+{len} is beyond the end of the torrent ({total} bytes)")]
    OutOfRange {
        /// Stream offset asked for.
        offset: u64,
        /// Length asked for.
        len: u64,
        /// Total length of the torrent.
        total: u64,
    },
    /// Any other I/O failure.
    #[error("{op} failed under {}: {source}", path.display())]
    Io {
        /// What was being done (`"write"`, `"read"`, `"fsync"`, ...).
        op: &'static str,
        /// The file, or the download directory when the file is not known.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The store was closed.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Classifies an I/O error from a read or write: `ENOSPC` becomes [`StoreError::DiskFull`].
    pub(crate) fn from_io(op: &'static str, path: PathBuf, needed: u64, source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) || source.kind() == io::ErrorKind::StorageFull {
            StoreError::DiskFull { path, needed }
        } else {
            StoreError::Io { op, path, source }
        }
    }
}
