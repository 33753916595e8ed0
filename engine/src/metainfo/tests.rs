//! Tests of `.torrent` parsing, validation, path sanitising and building.

use std::path::{Component, Path, PathBuf};

use proptest::prelude::*;
use sha1::{Digest, Sha1};

use super::*;
use crate::bencode::{DecodeError, Encoder};
use crate::layout::LayoutError;

/// Concatenates byte-string pieces, so fixtures read like the bencode they are.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A single-file torrent shaped like a distribution's ISO torrent (2 pieces of 256 KiB).
fn ubuntu_like() -> (Vec<u8>, Vec<u8>) {
    let mut pieces = b"6:pieces40:".to_vec();
    pieces.extend([0x11u8; 20]);
    pieces.extend([0x22u8; 20]);
    let info = cat(&[b"d6:lengthi300000e4:name10:ubuntu.iso12:piece lengthi262144e", &pieces, b"e"]);
    let file = cat(&[
        b"d8:announce35:https://torrent.ubuntu.com/announce",
        b"13:announce-listll35:https://torrent.ubuntu.com/announceel31:https://ipv6.torrent.ubuntu.comee",
        b"7:comment29:Ubuntu CD releases.ubuntu.com",
        b"10:created by13:mktorrent 1.1",
        b"13:creation datei1713974555e",
        b"4:info",
        &info,
        b"8:url-listl27:https://mirror.example/iso/26:https://mirror.other/iso/xee",
    ]);
    (file, info)
}

#[test]
fn parses_single_file_torrent() {
    let (file, info) = ubuntu_like();
    let m = Metainfo::from_bytes(&file).unwrap();
    assert_eq!(m.info_hash(), InfoHash(Sha1::digest(&info).into()));
    assert_eq!(m.info_bytes(), &info[..]);
    assert_eq!(m.name(), "ubuntu.iso");
    assert_eq!(m.piece_length(), 262144);
    assert_eq!(m.piece_count(), 2);
    assert_eq!(m.piece_hash(PieceIndex(1)), Some(&[0x22; 20]));
    assert_eq!(m.piece_hash(PieceIndex(2)), None);
    assert_eq!(m.piece_hashes().len(), 2);
    assert_eq!(m.total_length(), 300000);
    assert_eq!(m.files(), &[FileSpan { path: "ubuntu.iso".into(), length: 300000 }]);
    assert!(!m.is_multi_file() && !m.is_private());
    assert_eq!(m.announce.as_deref(), Some("https://torrent.ubuntu.com/announce"));
    assert_eq!(m.announce_list.len(), 2);
    assert_eq!(m.trackers(), m.announce_list);
    assert_eq!(m.url_list, ["https://mirror.example/iso/", "https://mirror.other/iso/x"]);
    assert_eq!(m.comment.as_deref(), Some("Ubuntu CD releases.ubuntu.com"));
    assert_eq!(m.created_by.as_deref(), Some("mktorrent 1.1"));
    assert_eq!(m.creation_date, Some(1713974555));
    assert_eq!(m.layout().piece_size(PieceIndex(1)), 300000 - 262144);
    assert_eq!(m.to_bytes(), file);
    assert!(format!("{m:?}").contains("ubuntu.iso"));
}

#[test]
fn parses_multi_file_torrent_with_extras() {
    let mut pieces = b"6:pieces20:".to_vec();
    pieces.extend([7u8; 20]);
    let info = cat(&[
        b"d5:filesld6:lengthi3e4:pathl3:dir5:a.txteed6:lengthi0e4:pathl5:emptyee",
        b"d6:lengthi4e4:pathl3:bade10:path.utf-8l4:good",
        b"eee",
        b"4:name4:root12:piece lengthi16384e",
        &pieces,
        b"7:privatei1e6:source3:abce",
    ]);
    let file = cat(&[b"d4:info", &info, b"8:url-list22:http://seed.example/roe"]);
    let m = Metainfo::from_bytes(&file).unwrap();
    assert!(m.is_multi_file() && m.is_private());
    let paths: Vec<_> = m.files().iter().map(|f| f.path.clone()).collect();
    assert_eq!(paths, [PathBuf::from("root/dir/a.txt"), "root/empty".into(), "root/good".into()]);
    assert_eq!(m.total_length(), 7);
    assert_eq!(m.url_list, ["http://seed.example/ro"]);
    assert_eq!(m.trackers(), Vec::<Vec<String>>::new());
    // Unknown keys inside info (`source`) survive; the single web seed stays a string.
    assert_eq!(m.to_bytes(), file);
}

#[test]
fn lenient_mode_accepts_sloppy_outer_dict_only() {
    let (_, info) = ubuntu_like();
    let sloppy = cat(&[b"d4:info", &info, b"8:announce9:http://t/13:creation date3:nowe"]);
    assert!(matches!(
        Metainfo::from_bytes(&sloppy),
        Err(MetainfoError::Bencode(DecodeError::UnsortedKeys { .. }))
    ));
    let m = Metainfo::from_bytes_lenient(&sloppy).unwrap();
    assert_eq!(m.announce.as_deref(), Some("http://t/"));
    assert_eq!(m.creation_date, None);
    // Re-written canonically, the file parses strictly with the same info-hash.
    assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap(), m);

    let sorted_bad_type = cat(&[b"d13:creation date3:now4:info", &info, b"e"]);
    assert_eq!(
        Metainfo::from_bytes(&sorted_bad_type),
        Err(MetainfoError::WrongType { field: "creation date", expected: "int" })
    );
    assert!(Metainfo::from_bytes_lenient(&sorted_bad_type).is_ok());

    let unsorted_info = b"d4:infod4:name1:a6:lengthi1e12:piece lengthi1e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    for r in [Metainfo::from_bytes(unsorted_info), Metainfo::from_bytes_lenient(unsorted_info)] {
        assert!(matches!(r, Err(MetainfoError::Bencode(DecodeError::UnsortedKeys { .. }))), "{r:?}");
    }
}

#[test]
fn from_info_bytes_makes_a_bare_torrent() {
    let (file, info) = ubuntu_like();
    let full = Metainfo::from_bytes(&file).unwrap();
    let bare = Metainfo::from_info_bytes(&info).unwrap();
    assert_eq!(bare.info_hash(), full.info_hash());
    assert_eq!(bare.announce, None);
    assert_eq!(bare.to_bytes(), cat(&[b"d4:info", &info, b"e"]));
}

/// A torrent whose `info` is `d` + `body` + `e`.
fn with_info(body: &[u8]) -> Result<Metainfo, MetainfoError> {
    Metainfo::from_bytes(&cat(&[b"d4:infod", body, b"ee"]))
}

const ONE_PIECE: &[u8] = b"6:pieces20:aaaaaaaaaaaaaaaaaaaa";

#[test]
fn every_error_variant() {
    use MetainfoError as E;
    assert!(matches!(Metainfo::from_bytes(b"d4:info"), Err(E::Bencode(DecodeError::UnexpectedEof { .. }))));
    assert_eq!(Metainfo::from_bytes(b"le"), Err(E::WrongType { field: "(root)", expected: "dict" }));
    assert_eq!(Metainfo::from_bytes(b"de"), Err(E::MissingField { field: "info" }));
    assert_eq!(Metainfo::from_bytes(b"d4:infoi1ee"), Err(E::WrongType { field: "info", expected: "dict" }));
    let ok_tail = cat(&[b"12:piece lengthi4e", ONE_PIECE]);
    assert_eq!(with_info(&cat(&[b"6:lengthi4e", &ok_tail])), Err(E::MissingField { field: "name" }));
    assert_eq!(
        with_info(&cat(&[b"6:lengthi4e4:namei1e", &ok_tail])),
        Err(E::WrongType { field: "name", expected: "bytes" })
    );
    assert_eq!(with_info(&cat(&[b"6:lengthi4e4:name1:a", &ok_tail])).unwrap().total_length(), 4);
    assert_eq!(with_info(&cat(&[b"4:name1:a", &ok_tail])), Err(E::MissingField { field: "length" }));
    assert_eq!(with_info(&cat(&[b"5:filesle6:lengthi4e4:name1:a", &ok_tail])), Err(E::AmbiguousFileMode));
    for (pl, value) in [(&b"i0e"[..], 0), (b"i-5e", -5), (b"i268435457e", 268435457)] {
        let body = cat(&[b"6:lengthi4e4:name1:a12:piece length", pl, ONE_PIECE]);
        assert_eq!(with_info(&body), Err(E::BadPieceLength { value }));
    }
    assert_eq!(
        with_info(b"6:lengthi4e4:name1:a12:piece lengthi4e6:pieces3:abc"),
        Err(E::BadPiecesLength { len: 3 })
    );
    assert_eq!(
        with_info(&cat(&[b"6:lengthi5e4:name1:a", &ok_tail])),
        Err(E::PieceCountMismatch { expected: 2, actual: 1 })
    );
    assert_eq!(
        with_info(&cat(&[b"6:lengthi-1e4:name1:a", &ok_tail])),
        Err(E::BadFileLength { index: 0, value: -1 })
    );
    assert_eq!(with_info(&cat(&[b"6:lengthi4e4:name2:..", &ok_tail])), Err(E::BadName(PathError::ParentDir)));
    assert_eq!(
        with_info(&cat(&[b"5:filesld6:lengthi4e4:pathl2:..6:passwdeee4:name1:a", &ok_tail])),
        Err(E::BadPath { index: 0, error: PathError::ParentDir })
    );
    assert_eq!(
        with_info(&cat(&[b"5:filesld6:lengthi4e4:pathleee4:name1:a", &ok_tail])),
        Err(E::BadPath { index: 0, error: PathError::NoComponents })
    );
    assert_eq!(
        with_info(b"6:lengthi0e4:name1:a12:piece lengthi4e6:pieces0:"),
        Err(E::Layout(LayoutError::Empty))
    );
    let not_utf8 = cat(&[b"d7:comment1:\xff4:info", b"d6:lengthi4e4:name1:a", &ok_tail, b"ee"]);
    assert_eq!(Metainfo::from_bytes(&not_utf8), Err(E::NotUtf8 { field: "comment" }));
    assert_eq!(Metainfo::from_bytes_lenient(&not_utf8).unwrap().comment, None);
    let bad_url_list = cat(&[b"d4:info", b"d6:lengthi4e4:name1:a", &ok_tail, b"e8:url-listi1ee"]);
    assert!(matches!(Metainfo::from_bytes(&bad_url_list), Err(E::WrongType { field: "url-list", .. })));
    assert!(E::BadName(PathError::Nul).to_string().contains("NUL"));
}

#[test]
fn builder_writes_what_the_parser_reads() {
    let (bytes, m) = MetainfoBuilder::single_file("file.bin", 40_000, 16384)
        .piece_hashes(vec![[1; 20], [2; 20], [3; 20]])
        .tracker("http://a/announce")
        .tracker_tier(vec!["udp://b:1/announce".into(), "udp://c:1/announce".into()])
        .tracker_tier(vec![])
        .web_seed("http://relay/file.bin")
        .comment("hello")
        .created_by("floodgate")
        .creation_date(1_700_000_000)
        .private(true)
        .build()
        .unwrap();
    assert_eq!(m.to_bytes(), bytes);
    assert_eq!(m.announce.as_deref(), Some("http://a/announce"));
    assert_eq!(
        m.announce_list,
        vec![
            vec!["http://a/announce".to_owned()],
            vec!["udp://b:1/announce".to_owned(), "udp://c:1/announce".to_owned()]
        ]
    );
    assert_eq!(m.url_list, ["http://relay/file.bin"]);
    assert!(m.is_private());
    assert_eq!(m.piece_count(), 3);

    let (_, only) = MetainfoBuilder::single_file("f", 1, 16384)
        .piece_hashes(vec![[0; 20]])
        .tracker("http://only/")
        .build()
        .unwrap();
    assert!(only.announce_list.is_empty());

    let files = vec![
        FileSpan { path: "sub/a".into(), length: 20_000 },
        FileSpan { path: "b".into(), length: 0 },
        FileSpan { path: "c".into(), length: 1 },
    ];
    let (bytes, m) = MetainfoBuilder::multi_file("dir", files, 16384)
        .piece_hashes(vec![[9; 20]; 2])
        .web_seed("http://x/")
        .web_seed("http://y/")
        .build()
        .unwrap();
    assert_eq!(Metainfo::from_bytes(&bytes).unwrap(), m);
    assert_eq!(m.files()[0].path, PathBuf::from("dir/sub/a"));
    assert_eq!(m.url_list.len(), 2);
    assert_eq!(m.layout().files().len(), 3);
}

#[test]
fn builder_refuses_bad_input() {
    let files = vec![FileSpan { path: "/etc/passwd".into(), length: 1 }];
    assert_eq!(
        MetainfoBuilder::multi_file("d", files, 16384).piece_hashes(vec![[0; 20]]).build(),
        Err(MetainfoError::BadPath { index: 0, error: PathError::Absolute })
    );
    assert_eq!(
        MetainfoBuilder::single_file("a/b", 1, 16384).piece_hashes(vec![[0; 20]]).build(),
        Err(MetainfoError::BadName(PathError::Separator))
    );
    assert_eq!(
        MetainfoBuilder::single_file("a", 1, 16384).build(),
        Err(MetainfoError::PieceCountMismatch { expected: 1, actual: 0 })
    );
    assert_eq!(
        MetainfoBuilder::single_file("a", 1, 0).build(),
        Err(MetainfoError::BadPieceLength { value: 0 })
    );
}

#[test]
fn piece_length_rule() {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    assert_eq!(piece_length_for(0), 256 << 10);
    assert_eq!(piece_length_for(100 * MIB), 256 << 10);
    assert_eq!(piece_length_for(500 * MIB), 256 << 10);
    assert_eq!(piece_length_for(600 * MIB), 512 << 10);
    assert_eq!(piece_length_for(4 * GIB), 4 << 20);
    assert_eq!(piece_length_for(32 * GIB), 16 << 20);
    assert_eq!(piece_length_for(15 * GIB), 8 << 20);
    assert_eq!(piece_length_for(1024 * GIB), 16 << 20);
    assert_eq!(piece_length_for(u64::MAX), 16 << 20);
    for total in [250 * MIB + 1, 700 * MIB, 3 * GIB + 17, 20 * GIB, 31 * GIB] {
        let n = total.div_ceil(u64::from(piece_length_for(total)));
        assert!((1000..=2000).contains(&n), "{total}: {n} pieces");
    }
}

/// Checks that a parsed path can only name something inside the download directory.
fn assert_contained(path: &Path) {
    assert!(path.is_relative(), "{path:?}");
    assert!(path.components().all(|c| matches!(c, Component::Normal(_))), "{path:?}");
    let base = Path::new("/downloads/x");
    let joined = base.join(path);
    assert!(joined.starts_with(base) && joined.components().count() > base.components().count());
}

/// One hostile path component: mostly dangerous shapes.
fn component() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"..".to_vec()),
        Just(b".".to_vec()),
        Just(b"".to_vec()),
        Just(b"/".to_vec()),
        Just(b"/etc".to_vec()),
        Just(b"C:\\Windows".to_vec()),
        Just(b"a\0b".to_vec()),
        Just(b"../x".to_vec()),
        Just(b"~".to_vec()),
        proptest::collection::vec(prop::sample::select(b"./\\\0a~:".to_vec()), 0..5),
        "[a-z.]{1,6}".prop_map(String::into_bytes),
    ]
}

fn hostile_torrent(name: &[u8], paths: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    enc.dict(|d| {
        d.entry(b"info", |e| {
            e.dict(|i| {
                i.entry(b"files", |e| {
                    e.list(|l| {
                        for p in paths {
                            l.dict(|f| {
                                f.int(b"length", 1);
                                f.entry(b"path", |e| e.list(|c| p.iter().for_each(|part| c.bytes(part))));
                            });
                        }
                    })
                });
                i.bytes(b"name", name);
                i.int(b"piece length", 16384);
                i.bytes(b"pieces", &[0; 20]);
            })
        })
    });
    out
}

proptest! {
    #[test]
    fn hostile_paths_never_escape(
        name in component(),
        paths in proptest::collection::vec(proptest::collection::vec(component(), 0..4), 1..4),
    ) {
        let bytes = hostile_torrent(&name, &paths);
        match Metainfo::from_bytes(&bytes) {
            Ok(m) => {
                for f in m.files() {
                    assert_contained(&f.path);
                }
                for f in m.layout().files() {
                    assert_contained(&f.path);
                }
            }
            Err(e) => prop_assert!(
                matches!(e, MetainfoError::BadName(_) | MetainfoError::BadPath { .. }),
                "unexpected {e:?}"
            ),
        }
    }

    #[test]
    fn built_torrents_round_trip(
        lengths in proptest::collection::vec(0u64..100_000, 1..6),
        pl_shift in 14u32..18,
        multi in any::<bool>(),
        trackers in proptest::collection::vec("[a-z:/.]{0,12}", 0..4),
        seeds in proptest::collection::vec("[a-z:/.]{1,12}", 0..3),
        comment in proptest::option::of("\\PC{0,12}"),
        private in any::<bool>(),
    ) {
        let pl = 1u32 << pl_shift;
        let total: u64 = lengths.iter().sum();
        let hashes = (0..total.div_ceil(u64::from(pl))).map(|i| [i as u8; 20]).collect();
        let mut b = if multi {
            let files = lengths
                .iter()
                .enumerate()
                .map(|(i, &length)| FileSpan { path: format!("d{}/f{i}", i % 2).into(), length })
                .collect();
            MetainfoBuilder::multi_file("t", files, pl)
        } else {
            MetainfoBuilder::single_file("t", total, pl)
        };
        b = b.piece_hashes(hashes).private(private);
        for t in trackers {
            b = b.tracker(t);
        }
        for s in seeds {
            b = b.web_seed(s);
        }
        if let Some(c) = comment {
            b = b.comment(c);
        }
        match b.build() {
            Ok((bytes, m)) => {
                prop_assert_eq!(m.to_bytes(), bytes.clone());
                let again = Metainfo::from_bytes(&bytes).unwrap();
                prop_assert_eq!(&again, &m);
                prop_assert_eq!(Metainfo::from_bytes(&again.to_bytes()).unwrap(), again);
                prop_assert_eq!(m.total_length(), total);
            }
            Err(e) => prop_assert_eq!(e, MetainfoError::Layout(LayoutError::Empty)),
        }
    }

    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(m) = Metainfo::from_bytes_lenient(&bytes) {
            prop_assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap(), m);
        }
    }
}
