//! BEP 19 web seeds of multi-file torrents: the seed's `url-list` entry names a directory, and
//! each file is fetched at its own URL, so a run of pieces that crosses a file boundary becomes
//! one Range request per file segment (zero-length files need none). Relays and the origin
//! address the torrent as one byte stream and never come here.

use std::collections::HashMap;
use std::path::Path;

use floodgate_engine::layout::Layout;
use floodgate_engine::percent::percent_encode;
use floodgate_fetch::{HttpUrl, Validators};

/// Whether `layout` is a multi-file torrent's (its paths start with the torrent's name as a
/// directory), whose web seeds are BEP 19 directories rather than the file itself.
pub(crate) fn is_directory(layout: &Layout) -> bool {
    layout.files().len() > 1 || layout.files().iter().any(|f| f.path.components().count() > 1)
}

/// The URL of the file at `path` on the web seed `base`: the base with a `/` appended if it has
/// none, then each component of `path` percent-encoded (UTF-8 bytes; everything but the
/// unreserved characters), joined by `/`. For a multi-file torrent `path` is the file's
/// sanitised path, which starts with the torrent's name; for a single-file torrent it is the
/// name alone. A query on the base stays after the path.
pub(crate) fn file_url(base: &HttpUrl, path: &Path) -> HttpUrl {
    let (dir, query) = match base.target.split_once('?') {
        Some((d, q)) => (d, Some(q)),
        None => (base.target.as_str(), None),
    };
    let mut target = dir.to_string();
    for c in path.components() {
        if !target.ends_with('/') {
            target.push('/');
        }
        percent_encode(c.as_os_str().as_encoded_bytes(), &mut target);
    }
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    base.with_target(&target)
}

/// One Range request of a run on a BEP 19 web seed: `len` bytes at `offset` of file `file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FilePart {
    /// Index into the layout's files.
    pub file: usize,
    /// First byte in that file.
    pub offset: u64,
    /// Bytes asked for (never 0).
    pub len: u64,
}

/// The requests that fetch stream bytes `start..start + len`: one per file segment, in order.
pub(crate) fn split_run(layout: &Layout, start: u64, len: u64) -> Vec<FilePart> {
    layout
        .segments(start, len)
        .map(|s| FilePart { file: s.file, offset: s.file_offset, len: s.len })
        .collect()
}

/// What a BEP 19 web seed's files answered so far: the ETag each first came with (a later
/// response of the file must carry the same one). Each file's length is the torrent's.
#[derive(Debug, Default)]
pub(crate) struct FileValidators {
    etags: HashMap<usize, String>,
}

impl FileValidators {
    /// What responses for file `file` of `layout` must match.
    pub(crate) fn of(&self, layout: &Layout, file: usize) -> Validators {
        let length = layout.files().get(file).map_or(0, |f| f.length);
        Validators { length, etag: self.etags.get(&file).cloned() }
    }

    /// Records the ETag a response of `file` carried, unless one is known.
    pub(crate) fn learn(&mut self, file: usize, etag: Option<String>) {
        if let Some(e) = etag {
            self.etags.entry(file).or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_engine::layout::FileSpan;
    use floodgate_engine::metainfo::{Metainfo, MetainfoBuilder};

    fn url(s: &str) -> HttpUrl {
        HttpUrl::parse(s).unwrap()
    }

    fn layout(files: &[(&str, u64)], piece: u32) -> Layout {
        let files = files.iter().map(|&(p, length)| FileSpan { path: p.into(), length }).collect();
        Layout::new(files, piece).unwrap()
    }

    #[test]
    fn file_urls_follow_bep_19_and_encode_each_component() {
        let path = Path::new("my set/sub dir/ü 100%.bin");
        let want = "/seeds/my%20set/sub%20dir/%C3%BC%20100%25.bin";
        assert_eq!(file_url(&url("http://h:8/seeds/"), path).target, want);
        assert_eq!(file_url(&url("http://h:8/seeds"), path).target, want, "a `/` is appended");
        let u = file_url(&url("https://u:p@h/seeds?token=a%20b"), Path::new("n/a+b"));
        assert_eq!(u.target, "/seeds/n/a%2Bb?token=a%20b", "the query stays after the path");
        assert!(u.https && u.userinfo.as_deref() == Some("u:p") && u.authority == "h");
        assert_eq!(file_url(&url("http://h"), Path::new("n/f")).target, "/n/f");
        let u = file_url(&url("http://h/s/"), Path::new("日本/x"));
        assert_eq!(u.target, "/s/%E6%97%A5%E6%9C%AC/x");
        assert_eq!(HttpUrl::parse(&u.to_string()).unwrap(), u, "the result is a URL the parser takes");
    }

    #[test]
    fn a_slash_in_a_name_never_reaches_a_url() {
        // metainfo refuses a path component with `/` (the builder's path splits on it), so a
        // file URL's `/`s are exactly the directory levels of the torrent.
        let b = MetainfoBuilder::multi_file(
            "top",
            vec![FileSpan { path: "a/b".into(), length: 5 }, FileSpan { path: "c".into(), length: 3 }],
            16384,
        )
        .piece_hashes(vec![[0; 20]]);
        let (bytes, meta) = b.build().unwrap();
        let meta2 = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(meta.files(), meta2.files());
        let paths: Vec<String> =
            meta2.files().iter().map(|f| file_url(&url("http://h/"), &f.path).target).collect();
        assert_eq!(paths, ["/top/a/b", "/top/c"]);
        assert!(MetainfoBuilder::multi_file("top", vec![FileSpan { path: "a//b".into(), length: 1 }], 16384)
            .piece_hashes(vec![[0; 20]])
            .build()
            .is_err());
    }

    #[test]
    fn runs_split_at_file_boundaries_and_skip_empty_files() {
        // Files of 100, 0, 250 and 7 bytes; pieces of 64 do not line up with them.
        let l = layout(&[("t/a", 100), ("t/empty", 0), ("t/b", 250), ("t/c", 7)], 64);
        assert!(is_directory(&l));
        // Pieces 1..=5 (bytes 64..357 = the end of the stream).
        let parts = split_run(&l, 64, 357 - 64);
        assert_eq!(
            parts,
            [
                FilePart { file: 0, offset: 64, len: 36 },
                FilePart { file: 2, offset: 0, len: 250 },
                FilePart { file: 3, offset: 0, len: 7 },
            ]
        );
        assert_eq!(parts.iter().map(|p| p.len).sum::<u64>(), 357 - 64);
        // A piece inside one file is one request.
        assert_eq!(split_run(&l, 128, 64), [FilePart { file: 2, offset: 28, len: 64 }]);
    }

    #[test]
    fn single_file_layouts_are_not_directories_but_one_file_in_a_directory_is() {
        assert!(!is_directory(&layout(&[("blob.bin", 10)], 16384)));
        assert!(is_directory(&layout(&[("dir/only.bin", 10)], 16384)));
    }

    #[test]
    fn etags_are_learnt_once_per_file() {
        let l = layout(&[("t/a", 100), ("t/b", 50)], 64);
        let mut v = FileValidators::default();
        assert_eq!(v.of(&l, 1), Validators { length: 50, etag: None });
        v.learn(1, Some("\"x\"".into()));
        v.learn(1, Some("\"y\"".into()));
        v.learn(0, None);
        assert_eq!(v.of(&l, 1).etag.as_deref(), Some("\"x\""));
        assert_eq!(v.of(&l, 0), Validators { length: 100, etag: None });
    }
}
