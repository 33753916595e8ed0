//! Cold ranges: a range about to go out with `sendfile` whose pages are not all in the page
//! cache is read in on a blocking thread first, so the runtime's worker threads never wait
//! for the disk.
//!
//! `sendfile` on a non-blocking socket does not block on the *socket*, but it reads missing
//! file pages synchronously: on a file larger than memory, every worker thread ends up in disk
//! reads and every other connection (small requests, `/metrics`, keep-alive heads) waits. So
//! [`Warm::ensure`] asks `cachestat(2)` ([`floodgate_engine::uring::residency`]) first; a range
//! with pages missing is read in by at most [`MAX_READ_INS`] blocking threads at once
//! (`posix_fadvise(WILLNEED)`, then a `sendfile` of it to `/dev/null`, which waits until every
//! page is in), and only then sent. A hot range costs one `cachestat` call.
//!
//! A read-in holds its slot until the kernel is done with it, even when the request that asked
//! gives up (its deadline passed): the bound is on threads in disk reads, not on waiters.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use rustix::fs::Advice;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::task::Task;

/// Read-ins running at once (each a blocking thread in disk reads).
pub(super) const MAX_READ_INS: usize = 16;

/// The bounded read-in pool, shared by every connection of a server.
#[derive(Debug)]
pub(super) struct Warm {
    slots: Arc<Semaphore>,
}

impl Default for Warm {
    fn default() -> Self {
        Warm { slots: Arc::new(Semaphore::new(MAX_READ_INS)) }
    }
}

impl Warm {
    /// Makes sure bytes `offset..offset + len` of `file` (a store file of `task`) are in the
    /// page cache, reading them in off the runtime if not; waits at most until `deadline`.
    /// Counts a read-in in the task's `http_cold_*` counters. An error (or the deadline) is
    /// not fatal to the caller: the `sendfile` that follows reads what is still missing.
    pub(super) async fn ensure(
        &self,
        task: &Task,
        file: &File,
        offset: u64,
        len: u64,
        deadline: Instant,
    ) -> io::Result<()> {
        let res = floodgate_engine::uring::residency(file, offset, len)?;
        if res.is_whole() {
            return Ok(());
        }
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no read-in slot in time"))?
            .map_err(io::Error::other)?;
        task.counters.http_cold_runs.fetch_add(1, Ordering::Relaxed);
        task.counters.http_cold_bytes.fetch_add(len, Ordering::Relaxed);
        let file = file.try_clone()?;
        let job = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            read_in(&file, offset, len)
        });
        match tokio::time::timeout_at(deadline, job).await {
            Ok(done) => done.map_err(io::Error::other)?,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "read-in not done in time")),
        }
    }
}

/// `/dev/null`, opened once.
fn dev_null() -> io::Result<&'static File> {
    static NULL: OnceLock<File> = OnceLock::new();
    if let Some(f) = NULL.get() {
        return Ok(f);
    }
    let f = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    Ok(NULL.get_or_init(|| f))
}

/// Reads bytes `offset..offset + len` of `file` into the page cache (blocking): the readahead
/// hint for the whole range, then a `sendfile` of it to `/dev/null` (no copy to user space).
pub(super) fn read_in(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let hint = std::num::NonZeroU64::new(len);
    // Only a hint: a file system without readahead still gets the sendfile below.
    let _ = rustix::fs::fadvise(file, offset, hint, Advice::WillNeed);
    let null = dev_null()?;
    let (mut at, end) = (offset, offset.saturating_add(len));
    while at < end {
        let count = usize::try_from(end - at).unwrap_or(usize::MAX);
        match rustix::fs::sendfile(null.as_fd(), file, Some(&mut at), count) {
            Ok(0) => break, // end of file
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use floodgate_engine::uring::residency;
    use rustix::fs::Advice;

    use super::read_in;

    #[test]
    fn a_read_in_brings_every_page_of_the_range_back() -> std::io::Result<()> {
        // On disk beside the test binary (a tmpfs /tmp cannot evict).
        let exe = std::env::current_exe()?;
        let dir = tempfile::tempdir_in(exe.parent().unwrap_or(std::path::Path::new(".")))?;
        let path = dir.path().join("cold.bin");
        let len: u64 = 8 << 20;
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&vec![3u8; len as usize])?;
        f.sync_all()?;
        rustix::fs::fadvise(&f, 0, None, Advice::DontNeed)?;
        let f = std::fs::File::open(&path)?;
        let before = residency(&f, 1 << 20, 4 << 20)?;
        assert!(before.cached * 2 < before.pages, "the file was evicted: {before:?}");
        read_in(&f, 1 << 20, 4 << 20)?;
        let after = residency(&f, 1 << 20, 4 << 20)?;
        assert!(after.is_whole(), "every page of the range is in after a read-in: {after:?}");
        Ok(())
    }
}
