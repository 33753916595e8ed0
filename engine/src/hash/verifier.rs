//! The piece verifier: a pool of hashing threads behind a bounded queue.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};

use super::sha1_chunks;
use crate::types::PieceIndex;

/// How a [`Verifier`] is set up.
#[derive(Clone, Copy, Debug)]
pub struct VerifierConfig {
    /// Worker threads; `0` means one per available core.
    pub threads: usize,
    /// Pieces that may wait in the queue before [`Verifier::submit`] blocks.
    pub queue: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig { threads: 0, queue: 64 }
    }
}

/// The outcome of verifying one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The piece's SHA-1 matched.
    Verified(PieceIndex),
    /// The piece's SHA-1 did not match: its data must be fetched again.
    Mismatch(PieceIndex),
}

impl Verdict {
    /// The piece this verdict is about.
    pub fn piece(self) -> PieceIndex {
        match self {
            Verdict::Verified(p) | Verdict::Mismatch(p) => p,
        }
    }
}

/// Why a piece was not queued; the blocks come back so nothing is lost.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full ([`Verifier::try_submit`] only).
    #[error("verification queue is full (piece {})", piece.0)]
    Full {
        /// The piece that was not queued.
        piece: PieceIndex,
        /// Its blocks, returned.
        blocks: Vec<Bytes>,
    },
    /// Every worker thread has stopped (one panicked).
    #[error("verifier workers have stopped (piece {})", piece.0)]
    Closed {
        /// The piece that was not queued.
        piece: PieceIndex,
        /// Its blocks, returned.
        blocks: Vec<Bytes>,
    },
}

struct Job {
    piece: PieceIndex,
    blocks: Vec<Bytes>,
    expected: [u8; 20],
}

type Sink = Arc<dyn Fn(Verdict) + Send + Sync>;

/// A pool of threads that SHA-1 pieces given as their blocks and report a [`Verdict`] each.
///
/// Submitting moves the `Vec<Bytes>` (reference counts, no payload copy); the workers hash
/// the blocks in place with [`sha1_chunks`] and drop them. Dropping the verifier finishes the
/// queued pieces, then joins the workers.
pub struct Verifier {
    tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Verifier {
    /// Starts the workers; verdicts arrive on the returned channel in completion order.
    pub fn new(config: VerifierConfig) -> std::io::Result<(Verifier, Receiver<Verdict>)> {
        let (vtx, vrx) = unbounded();
        let v = Self::with_callback(config, move |verdict| {
            // The receiver may be gone; then nobody wants the verdict.
            let _ = vtx.send(verdict);
        })?;
        Ok((v, vrx))
    }

    /// Starts the workers; each verdict is passed to `on_verdict` on a worker thread.
    pub fn with_callback(
        config: VerifierConfig,
        on_verdict: impl Fn(Verdict) + Send + Sync + 'static,
    ) -> std::io::Result<Verifier> {
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (tx, rx) = bounded::<Job>(config.queue.max(1));
        let sink: Sink = Arc::new(on_verdict);
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = rx.clone();
            let sink = Arc::clone(&sink);
            let handle =
                std::thread::Builder::new().name(format!("fg-verify-{i}")).spawn(move || worker(rx, sink));
            match handle {
                Ok(h) => workers.push(h),
                Err(e) => {
                    // Shut down the workers already started before reporting.
                    drop(Verifier { tx: Some(tx), workers });
                    return Err(e);
                }
            }
        }
        Ok(Verifier { tx: Some(tx), workers })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues a piece, waiting while the queue is full (backpressure).
    pub fn submit(
        &self,
        piece: PieceIndex,
        blocks: Vec<Bytes>,
        expected: [u8; 20],
    ) -> Result<(), SubmitError> {
        let Some(tx) = &self.tx else { return Err(SubmitError::Closed { piece, blocks }) };
        tx.send(Job { piece, blocks, expected })
            .map_err(|e| SubmitError::Closed { piece: e.0.piece, blocks: e.0.blocks })
    }

    /// Queues a piece if there is room, without waiting.
    pub fn try_submit(
        &self,
        piece: PieceIndex,
        blocks: Vec<Bytes>,
        expected: [u8; 20],
    ) -> Result<(), SubmitError> {
        let Some(tx) = &self.tx else { return Err(SubmitError::Closed { piece, blocks }) };
        tx.try_send(Job { piece, blocks, expected }).map_err(|e| match e {
            TrySendError::Full(j) => SubmitError::Full { piece: j.piece, blocks: j.blocks },
            TrySendError::Disconnected(j) => SubmitError::Closed { piece: j.piece, blocks: j.blocks },
        })
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            // A panicked worker has already reported through the panic hook.
            let _ = w.join();
        }
    }
}

fn worker(rx: Receiver<Job>, sink: Sink) {
    while let Ok(job) = rx.recv() {
        let verdict = if sha1_chunks(&job.blocks) == job.expected {
            Verdict::Verified(job.piece)
        } else {
            Verdict::Mismatch(job.piece)
        };
        drop(job.blocks);
        sink(verdict);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha1;

    fn piece_blocks(i: u32, len: usize) -> Vec<Bytes> {
        let data: Vec<u8> = (0..len).map(|j| (j as u32 ^ i.wrapping_mul(2654435761)) as u8).collect();
        data.chunks(16384).map(Bytes::copy_from_slice).collect()
    }

    #[test]
    fn flags_the_corrupted_piece_only() {
        let (v, rx) = Verifier::new(VerifierConfig { threads: 2, queue: 4 }).expect("spawn");
        let n = 40u32;
        for i in 0..n {
            let blocks = piece_blocks(i, 65536 + i as usize);
            let whole: Vec<u8> = blocks.iter().flat_map(|b| b.iter().copied()).collect();
            let expected = sha1(&whole);
            let blocks = if i == 17 {
                let mut bad = blocks;
                let mut b = bad[1].to_vec();
                b[100] ^= 1;
                bad[1] = Bytes::from(b);
                bad
            } else {
                blocks
            };
            v.submit(PieceIndex(i), blocks, expected).expect("queued");
        }
        drop(v); // finishes the queue and joins
        let mut verdicts: Vec<Verdict> = rx.iter().collect();
        verdicts.sort_by_key(|v| v.piece());
        assert_eq!(verdicts.len(), n as usize);
        for v in verdicts {
            if v.piece() == PieceIndex(17) {
                assert_eq!(v, Verdict::Mismatch(PieceIndex(17)));
            } else {
                assert_eq!(v, Verdict::Verified(v.piece()));
            }
        }
    }

    #[test]
    fn try_submit_reports_full_and_returns_blocks() {
        let gate = Arc::new(parking_lot::Mutex::new(()));
        let held = gate.lock();
        let g2 = Arc::clone(&gate);
        let v = Verifier::with_callback(VerifierConfig { threads: 1, queue: 1 }, move |_| {
            drop(g2.lock());
        })
        .expect("spawn");
        // The worker takes one job and blocks in the callback; the queue holds one more.
        let mut full = None;
        for i in 0..10 {
            if let Err(e) = v.try_submit(PieceIndex(i), vec![Bytes::from_static(b"x")], [0; 20]) {
                full = Some(e);
                break;
            }
        }
        drop(held);
        match full {
            Some(SubmitError::Full { blocks, .. }) => assert_eq!(blocks.len(), 1),
            other => panic!("expected Full, got {other:?}"),
        }
    }
}
