//! The per-thread ring and the loop that drives a batch of positional reads and writes.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types, IoUring};

/// Submission queue size of each thread's ring; also the most operations in flight per call.
const RING_ENTRIES: u32 = 64;

/// Largest single transfer handed to the kernel (it caps one read/write near 2 GiB anyway).
const MAX_CHUNK: usize = 1 << 30;

/// A mechanism for file I/O: what a thread has ([`backend`]) or what a call asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A thread-local io_uring.
    IoUring,
    /// Plain `pread`/`pwrite` on the calling thread (also used when io_uring is unavailable or
    /// disabled with `FLOODGATE_URING=off`).
    Sync,
}

/// Direction of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
}

/// One positional transfer. The pointer is valid for `len` bytes for as long as the op exists:
/// that is the job of the safe wrappers in `op.rs`, which tie it to a borrow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawOp {
    pub fd: RawFd,
    pub offset: u64,
    pub ptr: *mut u8,
    pub len: usize,
    /// Bytes transferred so far.
    pub done: usize,
    pub kind: Kind,
    /// Set when the op must be (re)submitted: initially and after a short transfer.
    pub queued: bool,
}

impl RawOp {
    /// A placeholder that is never submitted.
    pub(super) const EMPTY: RawOp = RawOp {
        fd: -1,
        offset: 0,
        ptr: std::ptr::null_mut(),
        len: 0,
        done: 0,
        kind: Kind::Read,
        queued: false,
    };
}

enum Engine {
    Uring(Box<IoUring>),
    Sync,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

fn new_engine() -> Engine {
    if std::env::var_os("FLOODGATE_URING").is_some_and(|v| v == "off") {
        return Engine::Sync;
    }
    let built = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .build(RING_ENTRIES)
        .or_else(|_| IoUring::new(RING_ENTRIES));
    match built {
        Ok(ring) => Engine::Uring(Box::new(ring)),
        Err(e) => {
            tracing::warn!("io_uring unavailable ({e}); falling back to pread/pwrite");
            Engine::Sync
        }
    }
}

/// The backend the calling thread uses (creating its ring if needed).
pub fn backend() -> Backend {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.get_or_insert_with(new_engine) {
            Engine::Uring(_) => Backend::IoUring,
            Engine::Sync => Backend::Sync,
        }
    })
}

/// Aborts the process if dropped while armed: the kernel may still hold pointers into buffers
/// that an unwinding caller would free.
struct InFlightGuard {
    armed: bool,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.armed {
            eprintln!("floodgate: io_uring operations still in flight during unwind; aborting");
            std::process::abort();
        }
    }
}

/// Runs every op to completion (or to its first error): on the calling thread's ring when `via`
/// is [`Backend::IoUring`] (and the ring exists), else with `pread`/`pwrite`.
///
/// Returns the first error seen; every op has finished with the kernel when this returns.
///
/// # Safety
///
/// Every op's `ptr` must be valid for reads (writes) of `len` bytes for a `Write` (`Read`) op
/// until this function returns, and no other code may access those bytes meanwhile.
pub(crate) unsafe fn run(ops: &mut [RawOp], via: Backend) -> io::Result<()> {
    if ops.iter().all(|op| op.len == 0) {
        return Ok(());
    }
    for op in ops.iter_mut() {
        op.done = 0;
        op.queued = op.len > 0;
    }
    if via == Backend::Sync {
        // SAFETY: forwarded from this function's contract.
        return unsafe { run_sync(ops) };
    }
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.get_or_insert_with(new_engine) {
            // SAFETY: forwarded from this function's contract.
            Engine::Uring(ring) => unsafe { run_uring(ring, ops) },
            // SAFETY: forwarded from this function's contract.
            Engine::Sync => unsafe { run_sync(ops) },
        }
    })
}

fn entry(op: &RawOp, index: usize) -> squeue::Entry {
    let remaining = (op.len - op.done).min(MAX_CHUNK) as u32;
    let fd = types::Fd(op.fd);
    let offset = op.offset + op.done as u64;
    // `wrapping_add` keeps this free of `unsafe`; `done < len` so the result stays in bounds.
    let ptr = op.ptr.wrapping_add(op.done);
    let e = match op.kind {
        Kind::Read => opcode::Read::new(fd, ptr, remaining).offset(offset).build(),
        Kind::Write => opcode::Write::new(fd, ptr, remaining).offset(offset).build(),
    };
    e.user_data(index as u64)
}

/// Folds one result into its op. Returns an error that ends the op, or `None`.
fn complete(op: &mut RawOp, res: i32) -> Option<io::Error> {
    if res < 0 {
        let err = io::Error::from_raw_os_error(-res);
        if matches!(err.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) {
            op.queued = true;
            return None;
        }
        return Some(err);
    }
    let n = res as usize;
    if n == 0 {
        return Some(match op.kind {
            Kind::Read => io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"),
            Kind::Write => io::Error::new(io::ErrorKind::WriteZero, "write returned 0"),
        });
    }
    op.done += n;
    if op.done < op.len {
        op.queued = true;
    }
    None
}

/// # Safety
///
/// As for [`run`].
unsafe fn run_uring(ring: &mut IoUring, ops: &mut [RawOp]) -> io::Result<()> {
    let cap = RING_ENTRIES as usize;
    let mut queued = ops.iter().filter(|op| op.queued).count();
    let mut in_flight = 0usize;
    let mut first_err: Option<io::Error> = None;
    let mut guard = InFlightGuard { armed: false };
    loop {
        // Fill: (re)submit queued ops while there is room, unless an error already ended the call.
        if first_err.is_none() && queued > 0 {
            let mut sq = ring.submission();
            for (i, op) in ops.iter_mut().enumerate() {
                if in_flight == cap {
                    break;
                }
                if op.queued {
                    // SAFETY: the entry's buffer is valid until its completion (contract of `run`),
                    // and we wait for every completion below before returning.
                    if unsafe { sq.push(&entry(op, i)) }.is_err() {
                        // Cannot happen (unsubmitted entries count as in flight); never spin on it.
                        if in_flight == 0 {
                            first_err = Some(io::Error::other("io_uring submission queue unexpectedly full"));
                        }
                        break;
                    }
                    op.queued = false;
                    queued -= 1;
                    in_flight += 1;
                    guard.armed = true;
                }
            }
            // Dropping `sq` publishes the new tail to the kernel.
        }
        if in_flight == 0 {
            break;
        }
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ENOMEM)
                ) => {}
            Err(e) => {
                // The kernel state of our buffers is unknown and the borrowed API cannot leak them:
                // stop the process rather than risk a use-after-free.
                eprintln!("floodgate: io_uring_enter failed with operations in flight: {e}; aborting");
                std::process::abort();
            }
        }
        for cqe in ring.completion() {
            let Some(op) = ops.get_mut(cqe.user_data() as usize) else { continue };
            in_flight -= 1;
            if let Some(err) = complete(op, cqe.result()) {
                first_err.get_or_insert(err);
            } else if op.queued {
                queued += 1;
            }
        }
        if in_flight == 0 {
            guard.armed = false;
        }
    }
    guard.armed = false;
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// # Safety
///
/// As for [`run`].
unsafe fn run_sync(ops: &mut [RawOp]) -> io::Result<()> {
    for op in ops.iter_mut() {
        while op.queued {
            op.queued = false;
            let remaining = (op.len - op.done).min(MAX_CHUNK);
            let offset = (op.offset + op.done as u64) as libc::off_t;
            let ptr = op.ptr.wrapping_add(op.done);
            let res = match op.kind {
                // SAFETY: `ptr` is valid for writes of `remaining` bytes (contract of `run`).
                Kind::Read => unsafe { libc::pread(op.fd, ptr.cast(), remaining, offset) },
                // SAFETY: `ptr` is valid for reads of `remaining` bytes (contract of `run`).
                Kind::Write => unsafe { libc::pwrite(op.fd, ptr.cast_const().cast(), remaining, offset) },
            };
            let res = if res < 0 {
                -io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
            } else {
                res as i32
            };
            if let Some(err) = complete(op, res) {
                return Err(err);
            }
        }
    }
    Ok(())
}
