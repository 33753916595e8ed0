//! How a torrent's pieces map onto its files.
//!
//! A torrent is one contiguous byte stream cut into pieces of `piece_length` bytes (the last
//! piece may be shorter); the stream is the concatenation of its files in order. [`Layout`]
//! answers "which file bytes does this stream range cover" for the store, and piece sizes for
//! everyone else.

use std::path::PathBuf;

use crate::types::PieceIndex;

/// One file of a torrent: a relative, already sanitised path and its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// Path relative to the download directory (no `..`, not absolute).
    pub path: PathBuf,
    /// Length in bytes.
    pub length: u64,
}

/// A run of bytes inside one file, produced by [`Layout::segments`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index into [`Layout::files`].
    pub file: usize,
    /// Offset inside that file.
    pub file_offset: u64,
    /// Offset of this segment from the start of the requested range.
    pub range_offset: u64,
    /// Number of bytes.
    pub len: u64,
}

/// Why a layout could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The piece length was zero.
    #[error("piece length must be positive")]
    ZeroPieceLength,
    /// The torrent holds no bytes at all.
    #[error("torrent is empty")]
    Empty,
    /// The total length does not fit the piece count into a `u32`.
    #[error("too many pieces: {0}")]
    TooManyPieces(u64),
    /// The file lengths overflow a `u64`.
    #[error("total length overflows")]
    Overflow,
}

/// The mapping of a torrent's pieces onto its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    files: Vec<FileSpan>,
    /// Start of each file in the stream; `starts[i]` belongs to `files[i]`.
    starts: Vec<u64>,
    piece_length: u32,
    total_length: u64,
    piece_count: u32,
}

impl Layout {
    /// Builds a layout from files in stream order and a piece length.
    pub fn new(files: Vec<FileSpan>, piece_length: u32) -> Result<Self, LayoutError> {
        if piece_length == 0 {
            return Err(LayoutError::ZeroPieceLength);
        }
        let mut starts = Vec::with_capacity(files.len());
        let mut total: u64 = 0;
        for f in &files {
            starts.push(total);
            total = total.checked_add(f.length).ok_or(LayoutError::Overflow)?;
        }
        if total == 0 {
            return Err(LayoutError::Empty);
        }
        let pieces = total.div_ceil(piece_length as u64);
        let piece_count = u32::try_from(pieces).map_err(|_| LayoutError::TooManyPieces(pieces))?;
        Ok(Layout { files, starts, piece_length, total_length: total, piece_count })
    }

    /// A single-file layout.
    pub fn single(path: impl Into<PathBuf>, length: u64, piece_length: u32) -> Result<Self, LayoutError> {
        Self::new(vec![FileSpan { path: path.into(), length }], piece_length)
    }

    /// The files in stream order.
    pub fn files(&self) -> &[FileSpan] {
        &self.files
    }

    /// Offset of file `i` in the stream.
    pub fn file_start(&self, i: usize) -> u64 {
        self.starts[i]
    }

    /// Nominal piece length (every piece but possibly the last).
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Total bytes in the torrent.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Checks a piece index against the piece count.
    pub fn piece(&self, index: u32) -> Option<PieceIndex> {
        (index < self.piece_count).then_some(PieceIndex(index))
    }

    /// Offset of a piece in the stream.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        piece.0 as u64 * self.piece_length as u64
    }

    /// Size in bytes of a piece (the last one may be short).
    pub fn piece_size(&self, piece: PieceIndex) -> u32 {
        let start = self.piece_offset(piece);
        (self.total_length - start).min(self.piece_length as u64) as u32
    }

    /// The file segments covering `len` bytes at stream offset `offset`, in order.
    ///
    /// Zero-length files are skipped. A range past the end is cut at the end of the stream.
    pub fn segments(&self, offset: u64, len: u64) -> impl Iterator<Item = Segment> + '_ {
        let end = offset.saturating_add(len).min(self.total_length);
        // First file whose end is past `offset`.
        let first = self.starts.partition_point(|&s| s <= offset).saturating_sub(1);
        (first..self.files.len())
            .map_while(move |i| {
                let f_start = self.starts[i];
                if f_start >= end {
                    return None;
                }
                Some((i, f_start))
            })
            .filter_map(move |(i, f_start)| {
                let f_end = f_start + self.files[i].length;
                let s = offset.max(f_start);
                let e = end.min(f_end);
                (s < e).then(|| Segment {
                    file: i,
                    file_offset: s - f_start,
                    range_offset: s - offset,
                    len: e - s,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(lens: &[u64], pl: u32) -> Layout {
        let files = lens
            .iter()
            .enumerate()
            .map(|(i, &length)| FileSpan { path: format!("f{i}").into(), length })
            .collect();
        Layout::new(files, pl).unwrap()
    }

    #[test]
    fn piece_sizes() {
        let l = layout(&[10, 0, 7], 4);
        assert_eq!(l.total_length(), 17);
        assert_eq!(l.piece_count(), 5);
        assert_eq!(l.piece_size(PieceIndex(0)), 4);
        assert_eq!(l.piece_size(PieceIndex(4)), 1);
        assert_eq!(l.piece(5), None);
    }

    #[test]
    fn segments_cross_files_and_skip_empty() {
        let l = layout(&[10, 0, 7], 4);
        let segs: Vec<_> = l.segments(8, 4).collect();
        assert_eq!(
            segs,
            vec![
                Segment { file: 0, file_offset: 8, range_offset: 0, len: 2 },
                Segment { file: 2, file_offset: 0, range_offset: 2, len: 2 },
            ]
        );
        let total: u64 = l.segments(0, 100).map(|s| s.len).sum();
        assert_eq!(total, 17);
    }

    #[test]
    fn rejects_bad_layouts() {
        assert_eq!(Layout::new(vec![], 4), Err(LayoutError::Empty));
        assert_eq!(Layout::single("a", 1, 0), Err(LayoutError::ZeroPieceLength));
        assert!(matches!(Layout::single("a", u64::MAX, 1), Err(LayoutError::TooManyPieces(_))));
    }
}
