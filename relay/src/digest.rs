//! The `checking` step of a URL-only task with a whole-file SHA-256 (`dist create --sha256`):
//! after the pull, before the final `.torrent` is built or published, the file is hashed once
//! more, streaming (SHA-256, `sha2`), and must match. The piece hashes only say the bytes did
//! not change since they landed; the digest says they are the file the operator meant.

use std::time::Instant;

use floodgate_engine::store::Store;
use floodgate_proto::Sha256Digest;
use sha2::{Digest, Sha256};

/// Bytes read per step.
const CHUNK: usize = 1 << 20;

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DigestError {
    /// The file is whole but is not the one the digest names.
    #[error("SHA-256 mismatch: the file from the origin has {actual}, expected {expected}")]
    Mismatch {
        /// The distribution's digest.
        expected: Sha256Digest,
        /// What the pulled file hashes to.
        actual: Sha256Digest,
    },
    /// The file could not be read back.
    #[error("cannot read the pulled file to check its SHA-256: {0}")]
    Read(String),
}

/// The SHA-256 of the `len` bytes of a single-file `store`, read in 1 MiB steps.
pub(crate) fn store_sha256(store: &Store, len: u64) -> Result<Sha256Digest, DigestError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    while off < len {
        let n = (len - off).min(CHUNK as u64) as usize;
        match store.file(0) {
            Some(f) => {
                std::os::unix::fs::FileExt::read_exact_at(f, &mut buf[..n], off)
                    .map_err(|e| DigestError::Read(format!("at byte {off}: {e}")))?;
                h.update(&buf[..n]);
            }
            None => {
                let b = store.read_at(off, n).map_err(|e| DigestError::Read(e.to_string()))?;
                h.update(&b);
            }
        }
        off += n as u64;
    }
    Ok(Sha256Digest::from_bytes(h.finalize().into()))
}

/// Checks a whole single-file `store` of `len` bytes against `expected`; logs the time taken.
pub(crate) fn check(store: &Store, len: u64, expected: Sha256Digest) -> Result<(), DigestError> {
    let started = Instant::now();
    let actual = store_sha256(store, len)?;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        bytes = len,
        after_ms = (secs * 1000.0) as u64,
        mib_per_s = (len as f64 / (1 << 20) as f64 / secs.max(1e-9)) as u64,
        matches = actual == expected,
        "SHA-256 checked"
    );
    if actual == expected {
        Ok(())
    } else {
        Err(DigestError::Mismatch { expected, actual })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_engine::layout::Layout;
    use floodgate_engine::store::StoreConfig;

    fn store_with(data: &[u8], dir: &std::path::Path) -> Store {
        let layout = Layout::single("f.bin", data.len() as u64, 16 * 1024).expect("layout");
        let store = Store::open(layout, dir, StoreConfig::default()).expect("store");
        store.write_at(0, data).expect("write");
        store
    }

    #[test]
    fn a_file_matches_its_digest_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Over two read steps, not a multiple of either.
        let data: Vec<u8> = (0..(CHUNK * 2 + 12_345)).map(|i| (i * 7 % 251) as u8).collect();
        let store = store_with(&data, dir.path());
        let want = Sha256Digest::from_bytes(Sha256::digest(&data).into());
        assert_eq!(store_sha256(&store, data.len() as u64).expect("hash"), want);
        check(&store, data.len() as u64, want).expect("the right digest passes");
        let mut other = *want.as_bytes();
        other[31] ^= 1;
        let other = Sha256Digest::from_bytes(other);
        match check(&store, data.len() as u64, other) {
            Err(DigestError::Mismatch { expected, actual }) => {
                assert_eq!((expected, actual), (other, want));
            }
            r => panic!("a wrong digest must be a mismatch, got {r:?}"),
        }
    }
}
