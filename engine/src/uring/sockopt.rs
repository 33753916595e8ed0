//! Socket options the standard library and tokio-uring do not offer.

use std::io;
use std::os::fd::AsRawFd;

/// Sets `TCP_NOTSENT_LOWAT`: the kernel takes more bytes for the socket only while fewer
/// than `bytes` of those it holds are unsent. Bytes not yet written stay with the caller,
/// where a cancelled message can still be dropped (the peer session's queued PIECEs), rather
/// than in a send buffer that autotuning may grow to megabytes.
pub fn set_notsent_lowat(socket: &impl AsRawFd, bytes: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `value` lives across the call and its size is passed; the kernel only reads it.
    // An invalid fd is reported as an error (EBADF), not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_low_water_mark_is_set_on_a_tcp_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let stream = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        set_notsent_lowat(&stream, 128 * 1024).expect("setsockopt");
        let mut got: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `got` and `len` outlive the call, `len` holds `got`'s size.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&mut got as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!((rc, got), (0, 128 * 1024));
    }
}
