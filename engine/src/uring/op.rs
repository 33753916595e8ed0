//! Safe positional I/O calls over the thread's ring: borrowed batches and owned buffers.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;

use super::buf::IoBufMut;
use super::ring::{run, Backend, Kind, RawOp};

/// Operations pushed to the ring per `io_uring_enter` by the owned-buffer helpers.
const CHUNK_OPS: usize = 32;

/// One positional read or write, borrowing its file and buffer for `'a`.
///
/// Build a slice of them and run it with [`submit`]: all are submitted together and all have
/// completed when `submit` returns, so the borrows cover the kernel's use of the memory.
#[derive(Debug)]
pub struct Op<'a> {
    raw: RawOp,
    _borrow: PhantomData<(&'a File, &'a mut [u8])>,
}

impl<'a> Op<'a> {
    /// Writes all of `data` at `offset` in `file`.
    pub fn write(file: &'a File, offset: u64, data: &'a [u8]) -> Self {
        let raw = RawOp {
            fd: file.as_raw_fd(),
            offset,
            ptr: data.as_ptr().cast_mut(),
            len: data.len(),
            kind: Kind::Write,
            ..RawOp::EMPTY
        };
        Op { raw, _borrow: PhantomData }
    }

    /// Fills all of `buf` from `offset` in `file` (a read past the end fails).
    pub fn read(file: &'a File, offset: u64, buf: &'a mut [u8]) -> Self {
        let raw = RawOp {
            fd: file.as_raw_fd(),
            offset,
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            kind: Kind::Read,
            ..RawOp::EMPTY
        };
        Op { raw, _borrow: PhantomData }
    }

    /// An empty op that [`submit`] skips (a filler for fixed-size arrays of ops).
    pub fn none() -> Self {
        Op { raw: RawOp::EMPTY, _borrow: PhantomData }
    }

    /// Bytes transferred by the last [`submit`].
    pub fn done(&self) -> usize {
        self.raw.done
    }
}

impl Default for Op<'_> {
    fn default() -> Self {
        Op::none()
    }
}

/// Runs every op to completion in as few `io_uring_enter` calls as the ring allows.
///
/// Short transfers are resubmitted; the first error is returned once nothing is in flight
/// (ops after a failed one may or may not have run: see [`Op::done`]).
pub fn submit(ops: &mut [Op<'_>]) -> io::Result<()> {
    submit_via(ops, Backend::IoUring)
}

/// [`submit`] through a chosen mechanism: the thread's ring, or `pread`/`pwrite` in a loop
/// (faster for buffered writes on filesystems where io_uring punts them to worker threads).
pub fn submit_via(ops: &mut [Op<'_>], via: Backend) -> io::Result<()> {
    let mut raws = [RawOp::EMPTY; CHUNK_OPS];
    for chunk in ops.chunks_mut(CHUNK_OPS) {
        for (raw, op) in raws.iter_mut().zip(chunk.iter()) {
            *raw = op.raw;
        }
        let n = chunk.len();
        // SAFETY: each raw op was built from a `&'a File` and a `&'a [u8]`/`&'a mut [u8]` held
        // by `Op<'a>`, which `ops` borrows mutably for this whole call; `run` returns only after
        // every operation completed.
        let res = unsafe { run(&mut raws[..n], via) };
        for (raw, op) in raws.iter().zip(chunk.iter_mut()) {
            op.raw.done = raw.done;
        }
        res?;
    }
    Ok(())
}

/// Writes all of `buf` at `offset`, returning the buffer with the result.
pub fn write_all_at<B: AsRef<[u8]>>(file: &File, offset: u64, buf: B) -> (io::Result<()>, B) {
    let res = submit(&mut [Op::write(file, offset, buf.as_ref())]);
    (res, buf)
}

/// Appends exactly `len` bytes read at `offset` to `buf`, returning the buffer with the result.
///
/// Fails with `InvalidInput` if `buf` lacks the spare capacity, `UnexpectedEof` past the end of
/// the file; on failure `buf`'s initialised contents are unchanged.
pub fn read_exact_at<B: IoBufMut>(file: &File, offset: u64, buf: B, len: usize) -> (io::Result<()>, B) {
    read_segments(buf, len, [ReadSeg { file, file_offset: offset, buf_offset: 0, len }], Backend::IoUring)
}

/// One piece of a scattered read: `len` bytes at `file_offset` of `file`, landing `buf_offset`
/// bytes into the region being filled.
#[derive(Clone, Copy, Debug)]
pub struct ReadSeg<'f> {
    /// The file to read.
    pub file: &'f File,
    /// Offset inside the file.
    pub file_offset: u64,
    /// Offset inside the region of the buffer being filled.
    pub buf_offset: usize,
    /// Number of bytes.
    pub len: usize,
}

/// Appends `len` bytes to `buf`, gathered from `segs`, which must tile `0..len` in order, through
/// the mechanism `via`.
///
/// This is how the store reads a stream range spanning several files into one allocation
/// without zeroing it first. Fails with `InvalidInput` if the segments do not tile the range
/// or `buf` lacks spare capacity; on failure `buf`'s initialised contents are unchanged.
pub fn read_segments<'f, B: IoBufMut>(
    mut buf: B,
    len: usize,
    segs: impl IntoIterator<Item = ReadSeg<'f>>,
    via: Backend,
) -> (io::Result<()>, B) {
    if buf.spare_len() < len {
        let err = io::Error::new(io::ErrorKind::InvalidInput, "buffer lacks spare capacity for the read");
        return (Err(err), buf);
    }
    let base = buf.spare_ptr();
    let mut raws = [RawOp::EMPTY; CHUNK_OPS];
    let mut n = 0;
    let mut covered = 0usize;
    let flush = |raws: &mut [RawOp]| {
        // SAFETY: every raw op points inside `base[..len]`, the spare capacity of `buf`, which
        // this function owns and does not touch until after `run` returns (`IoBufMut` contract:
        // the memory is valid and stable); the files are borrowed for `'f`, beyond this call.
        unsafe { run(raws, via) }
    };
    for seg in segs {
        if seg.buf_offset != covered || seg.len > len - covered {
            let err = io::Error::new(io::ErrorKind::InvalidInput, "read segments do not tile the range");
            return (Err(err), buf);
        }
        raws[n] = RawOp {
            fd: seg.file.as_raw_fd(),
            offset: seg.file_offset,
            ptr: base.wrapping_add(seg.buf_offset),
            len: seg.len,
            kind: Kind::Read,
            ..RawOp::EMPTY
        };
        covered += seg.len;
        n += 1;
        if n == CHUNK_OPS {
            if let Err(e) = flush(&mut raws[..n]) {
                return (Err(e), buf);
            }
            n = 0;
        }
    }
    if covered != len {
        let err = io::Error::new(io::ErrorKind::InvalidInput, "read segments do not cover the range");
        return (Err(err), buf);
    }
    if let Err(e) = flush(&mut raws[..n]) {
        return (Err(e), buf);
    }
    // SAFETY: the segments tile `0..len` exactly (checked above) and every op completed in full
    // (`run` returned `Ok`), so the first `len` spare bytes are initialised.
    unsafe { buf.advance_init(len) };
    (Ok(()), buf)
}

/// Starts writing back the dirty pages of `len` bytes at `offset` of `file` and returns without
/// waiting for them (`sync_file_range(2)` with `SYNC_FILE_RANGE_WRITE`). Not a durability
/// guarantee by itself (no metadata, no disk cache flush): it moves the disk I/O of a later
/// `fdatasync` forward, so that one finds little left to do.
pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "writeback range overflows off_t"));
    };
    loop {
        // SAFETY: plain syscall on a borrowed, open file descriptor; no memory is passed.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Allocates `len` bytes at `offset` of `file` (`fallocate(2)`, mode 0: may grow the file,
/// never shrinks it). `ENOSPC` comes back as `io::ErrorKind::StorageFull`.
pub fn fallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "fallocate range overflows off_t"));
    };
    loop {
        // SAFETY: plain syscall on a borrowed, open file descriptor; no memory is passed.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, off, len) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
