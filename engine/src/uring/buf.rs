//! Owned buffers that the kernel may fill.

use bytes::BytesMut;

/// A growable owned buffer whose spare capacity the kernel can read into.
///
/// # Safety
///
/// Implementors promise that:
/// * [`spare_ptr`](IoBufMut::spare_ptr) points to [`spare_len`](IoBufMut::spare_len) writable
///   bytes, directly after the `init_len` initialised bytes, and that this memory stays valid
///   and is not moved or aliased as long as the buffer is not otherwise touched (a heap
///   allocation, not inline storage that moves with the value);
/// * [`advance_init`](IoBufMut::advance_init)`(n)` only extends the initialised length by `n`
///   and keeps the contents.
pub unsafe trait IoBufMut: 'static {
    /// Number of initialised bytes at the front.
    fn init_len(&self) -> usize;

    /// Pointer to the first uninitialised byte.
    fn spare_ptr(&mut self) -> *mut u8;

    /// Number of uninitialised bytes available after the initialised ones.
    fn spare_len(&mut self) -> usize;

    /// Marks the first `n` spare bytes as initialised.
    ///
    /// # Safety
    ///
    /// The first `n` spare bytes must have been written, and `n <= spare_len()`.
    unsafe fn advance_init(&mut self, n: usize);
}

// SAFETY: a `Vec<u8>`'s spare capacity is a heap allocation directly after `len` bytes; it only
// moves when the vector reallocates, which needs `&mut self` outside of our calls.
unsafe impl IoBufMut for Vec<u8> {
    fn init_len(&self) -> usize {
        self.len()
    }

    fn spare_ptr(&mut self) -> *mut u8 {
        self.spare_capacity_mut().as_mut_ptr().cast()
    }

    fn spare_len(&mut self) -> usize {
        self.capacity() - self.len()
    }

    unsafe fn advance_init(&mut self, n: usize) {
        // SAFETY: the caller guarantees the `n` bytes after `len` are initialised and in capacity.
        unsafe { self.set_len(self.len() + n) }
    }
}

// SAFETY: `BytesMut`'s spare capacity is heap memory directly after `len` bytes, owned uniquely
// by this handle; it moves only on `reserve`, which needs `&mut self` outside of our calls.
unsafe impl IoBufMut for BytesMut {
    fn init_len(&self) -> usize {
        self.len()
    }

    fn spare_ptr(&mut self) -> *mut u8 {
        self.spare_capacity_mut().as_mut_ptr().cast()
    }

    fn spare_len(&mut self) -> usize {
        self.capacity() - self.len()
    }

    unsafe fn advance_init(&mut self, n: usize) {
        // SAFETY: the caller guarantees the `n` bytes after `len` are initialised and in capacity.
        unsafe { self.set_len(self.len() + n) }
    }
}
