//! Page-cache residency of a file range, from the `cachestat(2)` syscall (Linux 6.5+).
//!
//! A caller about to send a range with `sendfile` from a thread that must not block asks how
//! much of it is in memory; a range that is not can be read in elsewhere first. Where the
//! kernel has no `cachestat` (older kernels, a seccomp filter) the answer is "all resident",
//! which keeps the caller on its ordinary path.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// `cachestat`'s number (the same in the unified syscall table of every architecture).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_CACHESTAT: libc::c_long = 451;

/// `struct cachestat_range` (`include/uapi/linux/mman.h`).
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` (`include/uapi/linux/mman.h`).
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// How much of a file range is in the page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Residency {
    /// Pages the range touches.
    pub pages: u64,
    /// Of those, pages in the page cache.
    pub cached: u64,
    /// Whether the kernel answered; `false` means `cachestat` is missing and `cached` was
    /// assumed to be `pages`.
    pub measured: bool,
}

impl Residency {
    /// Whether every page of the range is in the page cache (a `sendfile` will not read disk).
    pub fn is_whole(&self) -> bool {
        self.cached >= self.pages
    }
}

/// The system's page size.
fn page_size() -> u64 {
    // SAFETY: `sysconf` reads a constant of the system and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// How many of the pages holding bytes `offset..offset + len` of `file` are in the page cache.
///
/// An empty range touches no pages. `ENOSYS` (no `cachestat`) and `EPERM` (a filter refusing
/// it) answer "all resident" with `measured: false`; other errors (`EBADF`, a file kind
/// `cachestat` does not know) are returned.
pub fn residency(file: &impl AsFd, offset: u64, len: u64) -> io::Result<Residency> {
    if len == 0 {
        return Ok(Residency { pages: 0, cached: 0, measured: true });
    }
    let page = page_size();
    let first = offset / page;
    let last = offset.saturating_add(len - 1) / page;
    let pages = last - first + 1;
    let assumed = Residency { pages, cached: pages, measured: false };
    match cachestat(file.as_fd().as_raw_fd(), first * page, pages * page) {
        Ok(stat) => Ok(Residency { pages, cached: stat.nr_cache.min(pages), measured: true }),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => Ok(assumed),
        Err(e) => Err(e),
    }
}

/// One `cachestat` call over `off..off + len` (page-aligned).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn cachestat(fd: libc::c_int, off: u64, len: u64) -> io::Result<Cachestat> {
    let range = CachestatRange { off, len };
    let mut stat = Cachestat::default();
    // SAFETY: `range` and `stat` are live, properly laid out (`repr(C)`, the kernel's field
    // order) and exclusively ours for the whole call; the kernel reads the one and writes the
    // other and keeps neither pointer after returning. Flags must be 0.
    let r = unsafe {
        libc::syscall(SYS_CACHESTAT, fd, &range as *const CachestatRange, &mut stat as *mut Cachestat, 0u32)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat)
}

/// No `cachestat` number known for this architecture: as if the kernel had none.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cachestat(_fd: libc::c_int, off: u64, len: u64) -> io::Result<Cachestat> {
    let _ = CachestatRange { off, len };
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Tests' way to make a file cold: syncs it, then `posix_fadvise(DONTNEED)` over all of it
/// (only clean pages can be dropped).
#[cfg(test)]
pub(crate) fn evict(file: &std::fs::File) {
    file.sync_all().expect("fsync");
    // SAFETY: a plain syscall on a live descriptor; no memory is passed.
    let r = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0, "fadvise DONTNEED");
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn counts_the_cached_pages_of_a_real_file() -> io::Result<()> {
        // On disk (not a tmpfs /tmp, whose pages cannot be evicted): beside the test binary.
        let exe = std::env::current_exe()?;
        let dir = tempfile::tempdir_in(exe.parent().unwrap_or(std::path::Path::new(".")))?;
        let path = dir.path().join("cached.bin");
        let page = page_size();
        let len = 64 * page;
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![7u8; len as usize])?;
        // Just written: every page is in the cache.
        let r = residency(&file, 0, len)?;
        assert_eq!((r.pages, r.cached), (64, 64));
        assert!(r.measured, "cachestat exists on the dev machines (Linux 6.5+)");
        assert!(r.is_whole());
        // An unaligned range counts every page it touches.
        assert_eq!(residency(&file, page - 1, 2)?.pages, 2);
        assert_eq!(residency(&file, 0, 0)?, Residency { pages: 0, cached: 0, measured: true });

        evict(&file);
        let r = residency(&file, 0, len)?;
        assert_eq!(r.pages, 64);
        assert!(r.cached < 8, "evicted pages still counted as cached: {r:?}");
        assert!(!r.is_whole());

        // Reading a part brings that part back (readahead may bring more; not counted here).
        let f = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; 4 * page as usize];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 8 * page)?;
        let r = residency(&f, 8 * page, 4 * page)?;
        assert_eq!((r.pages, r.cached), (4, 4), "the pages just read are cached");
        Ok(())
    }
}
