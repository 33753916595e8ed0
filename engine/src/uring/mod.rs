//! The io_uring edge: positional file reads and writes on a ring per thread.
//!
//! # Design choice: the raw `io-uring` crate, one ring per thread, driven to completion
//!
//! Every thread that touches the store (a peer runtime thread, the relay's HTTP threads, a test)
//! lazily gets its own small ring in a thread-local (`IORING_SETUP_SINGLE_ISSUER |
//! COOP_TASKRUN`, 64 entries). A call pushes all of its operations at once (one SQE per file
//! segment: a read spanning files, or a piece's blocks, is one `io_uring_enter`), waits for their
//! completions, resubmits short transfers, and returns. Why not tokio-uring:
//!
//! * the store must work from *any* thread: peer runtimes (one per core), plain relay threads,
//!   tests. tokio-uring operations only run inside a tokio-uring runtime; a thread-local ring
//!   works everywhere, with no runtime and no cross-thread hand-off;
//! * buffered file I/O on cached pages completes inside the submitting `io_uring_enter`, so
//!   waiting for it is microseconds, and a future async path loses little by calling it inline;
//! * soundness is local: buffers are borrowed (or owned) for the whole call and the call never
//!   returns, nor unwinds, while the kernel still holds a pointer (see [`submit`]).
//!
//! Every call can also go through plain `pread`/`pwrite` ([`Backend::Sync`], [`submit_via`]).
//! Measured on this project's ext4 disk (Linux 6.18, `BENCHMARKS.md`): io_uring hands *buffered
//! writes* to `iou-wrk` worker threads, which made 16 KiB block writes 2-4x slower than
//! `pwrite`, and 1 MiB cached reads were 15-20% slower than `pread` on a quiet machine. The store
//! therefore defaults to the syscall path for both and keeps the ring selectable per store
//! (`store::StoreConfig`). Where the ring should pay is where a thread must not block: the peer
//! sessions' TCP I/O (which [`crate::swarm`] runs on tokio-uring's own rings) and `O_DIRECT`
//! files. Either way a block's `Bytes` goes to the kernel with no user-space copy.
//!
//! The swarm's tokio-uring peer runtimes call the store directly (the calls are short); the
//! store's files are plain `std::fs::File`s and its offsets come from
//! [`crate::layout::Layout`].
//!
//! Owned-buffer calls return the buffer with the result, `(io::Result<T>, B)`, even on failure.
//! If io_uring is unavailable (old kernel, seccomp) or `FLOODGATE_URING=off` is set, ring calls
//! fall back to `pread`/`pwrite`; [`backend`] tells which one a thread has.
//!
//! [`residency`] (`cache.rs`) tells how much of a file range is in the page cache
//! (`cachestat(2)`), so a caller can read a cold range in off a thread that must not block.
//!
//! [`set_notsent_lowat`] (`sockopt.rs`) is the one socket option the peer connections need
//! that neither std nor tokio-uring offers.
//!
//! All of the engine's `unsafe` lives here.

mod buf;
mod cache;
mod op;
mod ring;
mod sockopt;

pub use buf::IoBufMut;
#[cfg(test)]
pub(crate) use cache::evict;
pub use cache::{residency, Residency};
pub use op::{
    fallocate, read_exact_at, read_segments, start_writeback, submit, submit_via, write_all_at, Op, ReadSeg,
};
pub use ring::{backend, Backend};
pub use sockopt::set_notsent_lowat;

#[cfg(test)]
mod tests {
    use std::io;

    use bytes::BytesMut;

    use super::*;

    #[test]
    fn batches_larger_than_the_ring_and_owned_reads() -> io::Result<()> {
        let file = tempfile::tempfile()?;
        if std::env::var_os("FLOODGATE_URING").is_none() {
            assert_eq!(backend(), Backend::IoUring, "io_uring works on the dev machines");
        }
        // 300 writes of 1000 bytes: several ring-fulls in one call.
        let blocks: Vec<Vec<u8>> = (0..300u32).map(|i| vec![(i % 251) as u8; 1000]).collect();
        let mut ops: Vec<Op<'_>> =
            blocks.iter().enumerate().map(|(i, b)| Op::write(&file, i as u64 * 1000, b)).collect();
        submit(&mut ops)?;
        assert!(ops.iter().all(|op| op.done() == 1000));
        drop(ops);

        let (res, buf) = read_exact_at(&file, 999, Vec::with_capacity(1002), 1002);
        res?;
        assert_eq!(buf, [&[0u8][..], &[1u8; 1000][..], &[2u8][..]].concat());

        // Past the end: an error, and the buffer comes back untouched.
        let mut keep = BytesMut::with_capacity(1004);
        keep.extend_from_slice(b"keep");
        let (res, buf) = read_exact_at(&file, 299_500, keep, 1000);
        assert_eq!(res.map_err(|e| e.kind()), Err(io::ErrorKind::UnexpectedEof));
        assert_eq!(&buf[..], b"keep");

        // Not enough spare capacity.
        let (res, _) = read_exact_at(&file, 0, Vec::new(), 10);
        assert_eq!(res.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));

        // Segments must tile the range.
        let seg = |buf_offset, len| ReadSeg { file: &file, file_offset: 0, buf_offset, len };
        let (res, buf) =
            read_segments(Vec::with_capacity(20), 20, [seg(0, 10), seg(11, 9)], Backend::IoUring);
        assert_eq!(res.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
        assert!(buf.is_empty());
        let (res, buf) = read_segments(Vec::with_capacity(20), 20, [seg(0, 10), seg(10, 10)], Backend::Sync);
        res?;
        assert_eq!(buf, vec![0u8; 20]);

        let (res, data) = write_all_at(&file, 0, b"hello".to_vec());
        res?;
        assert_eq!(data, b"hello");
        fallocate(&file, 0, 1 << 20)?;
        assert_eq!(file.metadata()?.len(), 1 << 20);
        Ok(())
    }
}
