//! SHA-1 verification: one-shot hashing, a multi-threaded piece verifier, and hashing of
//! files already on disk (`make-torrent`, resume checks).
//!
//! Backend: RustCrypto's `sha1` crate, which detects SHA-NI at run time (`cpufeatures`) and
//! uses the `sha1rnds4`/`sha1msg` instructions; without them it falls back to portable code.
//! `sha1_smol` (portable only) is kept in the benches as the comparison; see `BENCHMARKS.md`.

mod list;
mod pieces;
mod verifier;

use bytes::Bytes;
use sha1::{Digest, Sha1};

pub use list::{HashConflict, PieceHashes};
pub use pieces::hash_pieces;
pub use verifier::{SubmitError, Verdict, Verifier, VerifierConfig};

/// The SHA-1 digest of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// The SHA-1 digest of the concatenation of `chunks` (a piece given as its blocks), without
/// concatenating them.
pub fn sha1_chunks(chunks: &[Bytes]) -> [u8; 20] {
    let mut h = Sha1::new();
    for c in chunks {
        h.update(c);
    }
    h.finalize().into()
}

/// An incremental SHA-1 hasher on the chosen backend.
#[derive(Clone, Default)]
pub struct Hasher(Sha1);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Hasher(Sha1::new())
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed so far; resets the hasher.
    pub fn finish_reset(&mut self) -> [u8; 20] {
        self.0.finalize_reset().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crate::types::hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(crate::types::hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn chunks_equal_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let chunks: Vec<Bytes> = data.chunks(16384).map(Bytes::copy_from_slice).collect();
        assert_eq!(sha1_chunks(&chunks), sha1(&data));
        assert_eq!(sha1_chunks(&[]), sha1(b""));
        let mut h = Hasher::new();
        h.update(&data[..5]);
        h.update(&data[5..]);
        assert_eq!(h.finish_reset(), sha1(&data));
        assert_eq!(h.finish_reset(), sha1(b""));
    }
}
