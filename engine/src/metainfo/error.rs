//! Errors from parsing and building `.torrent` files.

use crate::bencode::DecodeError;
use crate::layout::LayoutError;

/// Why a file path in a torrent was refused. Paths are refused rather than repaired so that a
/// hostile torrent can never name a file outside the download directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A multi-file entry with an empty `path` list.
    #[error("path has no components")]
    NoComponents,
    /// An empty component (`a//b`, or a leading `/` split into components).
    #[error("empty path component")]
    EmptyComponent,
    /// A `.` component.
    #[error("`.` path component")]
    CurrentDir,
    /// A `..` component.
    #[error("`..` path component")]
    ParentDir,
    /// A component containing `/` or `\`.
    #[error("path separator inside a component")]
    Separator,
    /// A component containing a NUL byte.
    #[error("NUL byte in a path component")]
    Nul,
    /// An absolute path given to the builder.
    #[error("absolute path")]
    Absolute,
    /// A component that is not UTF-8.
    #[error("path component is not UTF-8")]
    NotUtf8,
}

/// Why bytes are not an acceptable v1 `.torrent` (or a builder's input cannot make one).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    /// The bytes are not valid bencode under the limits and key-order rule in force. Offsets are
    /// into the whole file, except for the re-check of `info` in lenient mode, where they are into
    /// the `info` dictionary.
    #[error("bencode: {0}")]
    Bencode(#[from] DecodeError),
    /// A required key is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The key.
        field: &'static str,
    },
    /// A key holds the wrong kind of value.
    #[error("field `{field}` should be {expected}")]
    WrongType {
        /// The key (`"(root)"` for the top-level value).
        field: &'static str,
        /// What it should be (`"int"`, `"bytes"`, `"list"`, `"dict"`).
        expected: &'static str,
    },
    /// A text field is not UTF-8.
    #[error("field `{field}` is not UTF-8")]
    NotUtf8 {
        /// The key.
        field: &'static str,
    },
    /// Both `length` and `files` in `info`, so single- and multi-file mode are ambiguous.
    #[error("info has both `length` and `files`")]
    AmbiguousFileMode,
    /// `piece length` not in `1..=MAX_PIECE_LENGTH`.
    #[error("piece length {value} out of range")]
    BadPieceLength {
        /// The value found.
        value: i64,
    },
    /// The `pieces` string is not a whole number of 20-byte hashes.
    #[error("pieces string of {len} bytes is not a multiple of 20")]
    BadPiecesLength {
        /// Its length.
        len: usize,
    },
    /// The number of piece hashes does not match the total length.
    #[error("{actual} piece hashes for a torrent of {expected} pieces")]
    PieceCountMismatch {
        /// Pieces implied by total length and piece length.
        expected: u64,
        /// Hashes present.
        actual: usize,
    },
    /// A negative file length.
    #[error("file {index} has negative length {value}")]
    BadFileLength {
        /// Index of the file (0 in single-file mode).
        index: usize,
        /// The value found.
        value: i64,
    },
    /// The `name` is not a safe single path component.
    #[error("bad name: {0}")]
    BadName(PathError),
    /// A file path in a multi-file torrent is unsafe.
    #[error("bad path of file {index}: {error}")]
    BadPath {
        /// Index of the file in `files`.
        index: usize,
        /// What is wrong with it.
        error: PathError,
    },
    /// The files do not make a valid layout (empty torrent, or lengths overflowing `u64`).
    #[error("layout: {0}")]
    Layout(#[from] LayoutError),
}
