//! [`SlotMem`]: a slot's payload, read and written only by copies made of
//! relaxed atomic accesses.
//!
//! A slot is memory shared with other processes. Whatever the protocol
//! says, a buggy or hostile function of the chain can write it while we read
//! it, and a Rust reference (`&[u8]`, `&mut T`) over bytes that change under
//! it is undefined behaviour - not merely a wrong value. So no reference into
//! a slot ever exists: bytes cross the boundary by word-sized relaxed atomic
//! loads and stores, which may race with anything and at worst yield torn
//! data (which every reader then validates). Callers work on their private
//! copies. In the common case - nobody misbehaves - these compile to plain
//! moves.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A view of `len` bytes of shared memory (or of a private buffer).
#[derive(Clone, Copy)]
pub struct SlotMem<'a> {
    base: NonNull<u8>,
    len: usize,
    _borrow: PhantomData<&'a [AtomicU8]>,
}

// SAFETY: every access goes through atomics, which any number of threads
// (and processes) may perform concurrently.
unsafe impl Send for SlotMem<'_> {}
// SAFETY: as above.
unsafe impl Sync for SlotMem<'_> {}

impl<'a> SlotMem<'a> {
    /// A view of a private buffer (tests, fuzzing, benches).
    pub fn private(buf: &'a mut [u8]) -> Self {
        Self { base: NonNull::from(&mut *buf).cast(), len: buf.len(), _borrow: PhantomData }
    }

    /// # Safety
    /// `base..base + len` must stay mapped, readable and writable for `'a`;
    /// it may be written concurrently by anyone.
    pub(crate) unsafe fn shared(base: *mut u8, len: usize) -> Self {
        Self { base: NonNull::new(base).expect("mapped memory"), len, _borrow: PhantomData }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `[off, off + n)` if it lies inside the view.
    fn range(&self, off: usize, n: usize) -> Option<usize> {
        off.checked_add(n).filter(|&end| end <= self.len).map(|_| off)
    }

    /// Copies `dst.len()` bytes from `off` into `dst`; false (and nothing
    /// copied) when they do not lie inside the view.
    pub fn read(&self, off: usize, dst: &mut [u8]) -> bool {
        let Some(off) = self.range(off, dst.len()) else { return false };
        let mut i = 0;
        while i < dst.len() {
            let at = off + i;
            if self.aligned(at) && dst.len() - i >= 8 {
                dst[i..i + 8].copy_from_slice(&self.word(at).load(Ordering::Relaxed).to_ne_bytes());
                i += 8;
            } else {
                dst[i] = self.byte(at).load(Ordering::Relaxed);
                i += 1;
            }
        }
        true
    }

    /// Copies `src` to `off`; false (and nothing written) when it does not
    /// fit inside the view.
    pub fn write(&self, off: usize, src: &[u8]) -> bool {
        let Some(off) = self.range(off, src.len()) else { return false };
        let mut i = 0;
        while i < src.len() {
            let at = off + i;
            if self.aligned(at) && src.len() - i >= 8 {
                self.word(at).store(u64::from_ne_bytes(src[i..i + 8].try_into().unwrap()), Ordering::Relaxed);
                i += 8;
            } else {
                self.byte(at).store(src[i], Ordering::Relaxed);
                i += 1;
            }
        }
        true
    }

    /// `n` bytes from `off` as a new vector; `None` outside the view.
    pub fn read_vec(&self, off: usize, n: usize) -> Option<Vec<u8>> {
        self.range(off, n)?;
        let mut v = vec![0; n];
        self.read(off, &mut v);
        Some(v)
    }

    /// A `T` copied from `off`; `None` outside the view.
    pub fn read_obj<T: FromBytes + IntoBytes>(&self, off: usize) -> Option<T> {
        let mut t = T::new_zeroed();
        self.read(off, t.as_mut_bytes()).then_some(t)
    }

    /// Writes `t` at `off`; false when it does not fit.
    pub fn write_obj<T: IntoBytes + Immutable>(&self, off: usize, t: &T) -> bool {
        self.write(off, t.as_bytes())
    }

    /// Sets `n` bytes from `off` to zero; false outside the view.
    pub fn zero(&self, off: usize, n: usize) -> bool {
        const ZEROS: [u8; 512] = [0; 512];
        let Some(mut off) = self.range(off, n) else { return false };
        let end = off + n;
        while off < end {
            let k = (end - off).min(ZEROS.len());
            self.write(off, &ZEROS[..k]);
            off += k;
        }
        true
    }

    fn aligned(&self, at: usize) -> bool {
        (self.base.as_ptr() as usize + at).is_multiple_of(std::mem::align_of::<AtomicU64>())
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        // SAFETY: at + 8 <= len and the address is aligned for AtomicU64
        // (callers check both), so this is a u64 inside the view, which
        // lives for 'a; only atomic accesses are ever made to it.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(at).cast()) }
    }

    fn byte(&self, at: usize) -> &AtomicU8 {
        // SAFETY: at < len (callers check): a byte inside the view, accessed
        // only atomically.
        unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(at)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_any_alignment_and_refuses_out_of_bounds() {
        let mut buf = [0u64; 8];
        let mem = SlotMem::private(buf.as_mut_bytes());
        let data: Vec<u8> = (1..=37).collect();
        for off in 0..8 {
            assert!(mem.write(off, &data));
            assert_eq!(mem.read_vec(off, data.len()).unwrap(), data, "offset {off}");
        }
        assert!(!mem.write(60, &[1; 5]));
        assert!(mem.read_vec(64, 1).is_none());
        assert!(mem.read_vec(usize::MAX, 2).is_none(), "no overflow");
        assert!(mem.zero(3, 50));
        assert_eq!(mem.read_vec(0, 64).unwrap()[3..53], [0; 50]);
        assert!(mem.write_obj(8, &0x1122_3344_5566_7788u64));
        assert_eq!(mem.read_obj::<u64>(8), Some(0x1122_3344_5566_7788));
    }
}
