//! Reading and validating a `.torrent`.

use sha1::{Digest, Sha1};

use super::error::{MetainfoError, PathError};
use super::{path, Metainfo, MAX_PIECE_LENGTH};
use crate::bencode::{self, DecodeLimits, Dict, KeyOrder, Value};
use crate::layout::{FileSpan, Layout};
use crate::types::InfoHash;

/// Parses a whole `.torrent`; `lenient` as in [`Metainfo::from_bytes_lenient`].
pub(super) fn parse(bytes: &[u8], lenient: bool) -> Result<Metainfo, MetainfoError> {
    let order = if lenient { KeyOrder::Any } else { KeyOrder::Sorted };
    let root = bencode::decode_with(bytes, &DecodeLimits::default(), order)?;
    let dict = root.as_dict().ok_or(MetainfoError::WrongType { field: "(root)", expected: "dict" })?;
    let info = dict.get(b"info").ok_or(MetainfoError::MissingField { field: "info" })?;
    let mut meta = if lenient {
        // The whole file was read with any key order; `info` itself must still be strict.
        from_info(info.raw())?
    } else {
        from_info_value(info)?
    };
    let opt = Optional { dict, lenient };
    meta.announce = opt.string(b"announce", "announce")?;
    meta.announce_list = opt.announce_list()?;
    meta.url_list = opt.url_list()?;
    meta.comment = opt.string(b"comment", "comment")?;
    meta.created_by = opt.string(b"created by", "created by")?;
    meta.creation_date = opt.int(b"creation date", "creation date")?;
    Ok(meta)
}

/// Parses a bare `info` dictionary, strictly.
pub(super) fn from_info(info: &[u8]) -> Result<Metainfo, MetainfoError> {
    from_info_value(&bencode::decode(info)?)
}

/// Reads a decoded `info` dictionary; the info-hash is taken over its raw bytes.
fn from_info_value(info: &Value<'_>) -> Result<Metainfo, MetainfoError> {
    let d = info.as_dict().ok_or(MetainfoError::WrongType { field: "info", expected: "dict" })?;
    let name_bytes = match d.get(b"name.utf-8") {
        Some(v) => bytes(v, "name.utf-8")?,
        None => bytes(required(d, b"name", "name")?, "name")?,
    };
    let name = path::component(name_bytes).map_err(MetainfoError::BadName)?.to_owned();

    let raw_pl = int(required(d, b"piece length", "piece length")?, "piece length")?;
    let piece_length = u32::try_from(raw_pl)
        .ok()
        .filter(|pl| (1..=MAX_PIECE_LENGTH).contains(pl))
        .ok_or(MetainfoError::BadPieceLength { value: raw_pl })?;

    let pieces_raw = bytes(required(d, b"pieces", "pieces")?, "pieces")?;
    if pieces_raw.len() % 20 != 0 {
        return Err(MetainfoError::BadPiecesLength { len: pieces_raw.len() });
    }
    let pieces: Vec<[u8; 20]> =
        pieces_raw.chunks_exact(20).filter_map(|c| <[u8; 20]>::try_from(c).ok()).collect();

    let private = match d.get(b"private") {
        Some(v) => int(v, "private")? != 0,
        None => false,
    };

    let (files, multi_file) = match (d.get(b"length"), d.get(b"files")) {
        (Some(_), Some(_)) => return Err(MetainfoError::AmbiguousFileMode),
        (None, None) => return Err(MetainfoError::MissingField { field: "length" }),
        (Some(len), None) => {
            let length = file_length(len, 0)?;
            (vec![FileSpan { path: path::join([name.as_str()]), length }], false)
        }
        (None, Some(list)) => (multi_files(list, &name)?, true),
    };

    let layout = Layout::new(files, piece_length)?;
    let expected = layout.total_length().div_ceil(u64::from(piece_length));
    if expected != pieces.len() as u64 {
        return Err(MetainfoError::PieceCountMismatch { expected, actual: pieces.len() });
    }

    let info_hash = InfoHash(Sha1::digest(info.raw()).into());
    Ok(Metainfo {
        info_hash,
        info_bytes: info.raw().to_vec(),
        name,
        pieces,
        layout,
        multi_file,
        private,
        announce: None,
        announce_list: Vec::new(),
        url_list: Vec::new(),
        comment: None,
        created_by: None,
        creation_date: None,
    })
}

/// The `files` list of a multi-file torrent, as spans under the directory `name`.
fn multi_files(list: &Value<'_>, name: &str) -> Result<Vec<FileSpan>, MetainfoError> {
    let items = list.as_list().ok_or(MetainfoError::WrongType { field: "files", expected: "list" })?;
    let mut files = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let f = item.as_dict().ok_or(MetainfoError::WrongType { field: "files", expected: "dict" })?;
        let length = file_length(required(f, b"length", "length")?, index)?;
        let parts = match f.get(b"path.utf-8") {
            Some(p) => p,
            None => required(f, b"path", "path")?,
        };
        let parts = parts.as_list().ok_or(MetainfoError::WrongType { field: "path", expected: "list" })?;
        if parts.is_empty() {
            return Err(MetainfoError::BadPath { index, error: PathError::NoComponents });
        }
        let mut comps = Vec::with_capacity(parts.len() + 1);
        comps.push(name);
        for part in parts {
            let raw = bytes(part, "path")?;
            comps.push(path::component(raw).map_err(|error| MetainfoError::BadPath { index, error })?);
        }
        files.push(FileSpan { path: path::join(comps), length });
    }
    Ok(files)
}

fn required<'d, 'a>(
    d: &'d Dict<'a>,
    key: &[u8],
    field: &'static str,
) -> Result<&'d Value<'a>, MetainfoError> {
    d.get(key).ok_or(MetainfoError::MissingField { field })
}

fn int(v: &Value<'_>, field: &'static str) -> Result<i64, MetainfoError> {
    v.as_int().ok_or(MetainfoError::WrongType { field, expected: "int" })
}

fn bytes<'a>(v: &Value<'a>, field: &'static str) -> Result<&'a [u8], MetainfoError> {
    v.as_bytes().ok_or(MetainfoError::WrongType { field, expected: "bytes" })
}

fn text(v: &Value<'_>, field: &'static str) -> Result<String, MetainfoError> {
    let b = bytes(v, field)?;
    let s = std::str::from_utf8(b).map_err(|_| MetainfoError::NotUtf8 { field })?;
    Ok(s.to_owned())
}

fn file_length(v: &Value<'_>, index: usize) -> Result<u64, MetainfoError> {
    let value = int(v, "length")?;
    u64::try_from(value).map_err(|_| MetainfoError::BadFileLength { index, value })
}

/// The optional fields outside `info`: refused when malformed in strict mode, skipped in lenient.
struct Optional<'d, 'a> {
    dict: &'d Dict<'a>,
    lenient: bool,
}

impl Optional<'_, '_> {
    /// `Ok(None)` for a malformed value in lenient mode, the error in strict mode.
    fn tolerate<T>(&self, r: Result<T, MetainfoError>) -> Result<Option<T>, MetainfoError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(_) if self.lenient => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn string(&self, key: &[u8], field: &'static str) -> Result<Option<String>, MetainfoError> {
        match self.dict.get(key) {
            Some(v) => self.tolerate(text(v, field)),
            None => Ok(None),
        }
    }

    fn int(&self, key: &[u8], field: &'static str) -> Result<Option<i64>, MetainfoError> {
        match self.dict.get(key) {
            Some(v) => self.tolerate(int(v, field)),
            None => Ok(None),
        }
    }

    fn announce_list(&self) -> Result<Vec<Vec<String>>, MetainfoError> {
        let Some(v) = self.dict.get(b"announce-list") else { return Ok(Vec::new()) };
        let read = || -> Result<Vec<Vec<String>>, MetainfoError> {
            let field = "announce-list";
            let tiers = v.as_list().ok_or(MetainfoError::WrongType { field, expected: "list" })?;
            let mut out = Vec::with_capacity(tiers.len());
            for tier in tiers {
                let urls = tier.as_list().ok_or(MetainfoError::WrongType { field, expected: "list" })?;
                let urls = urls.iter().map(|u| text(u, field)).collect::<Result<Vec<_>, _>>()?;
                if !urls.is_empty() {
                    out.push(urls);
                }
            }
            Ok(out)
        };
        Ok(self.tolerate(read())?.unwrap_or_default())
    }

    fn url_list(&self) -> Result<Vec<String>, MetainfoError> {
        let Some(v) = self.dict.get(b"url-list") else { return Ok(Vec::new()) };
        let read = || -> Result<Vec<String>, MetainfoError> {
            let field = "url-list";
            let urls = match v.as_list() {
                Some(list) => list.iter().map(|u| text(u, field)).collect::<Result<Vec<_>, _>>()?,
                None if v.as_bytes().is_some() => vec![text(v, field)?],
                None => return Err(MetainfoError::WrongType { field, expected: "bytes or list" }),
            };
            // libtorrent writes `url-list` as an empty string when there are no web seeds.
            Ok(urls.into_iter().filter(|u| !u.is_empty()).collect())
        };
        Ok(self.tolerate(read())?.unwrap_or_default())
    }
}
