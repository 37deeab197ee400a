//! The one copy a payload takes on each side, made safe from 4K aliasing.
//!
//! A core matches a load against the stores still in flight by the low 12
//! bits of their addresses first; a copy whose destination lies a few bytes
//! *after* its source, modulo 4096, has every load of the source look as if it
//! hit a store to the destination just made, and waits for it. `memcpy` of
//! glibc on an AMD Zen 3 here (with `rep movsb` for sizes from 2 KiB up)
//! measured, for a 4 KiB copy in cache: 50 ns for most distances, 1.4–3 µs
//! when `(dst - src) mod 4096` is 1 to 31; for 64 KiB, 1.3 µs against 27–108 µs.
//!
//! A queue's slots lie at every page offset (their stride is not a multiple
//! of a page) and the user's buffers at any, so one copy in 64 or so hit that
//! window — enough to cost a 4 KiB stream tens of nanoseconds an item on each
//! side. [`copy`] splits such a copy into pieces of [`PIECE`] bytes, which
//! `memcpy` moves at full speed at any distance (measured: 41–60 ns for the
//! 4 KiB copy); every other copy is one `memcpy`.
//!
//! [`SlotWriter`] is postcard's slice flavor with this copy, for encoding
//! straight into a queue's slot or block.

use postcard::ser_flavors::Flavor;

/// Copies of this many bytes or fewer are never slowed down (they take
/// `memcpy`'s vector loop); longer ones within [`WINDOW`] are split into
/// pieces of this size.
pub(crate) const PIECE: usize = 2048;

/// A destination this many bytes or fewer after its source, modulo a page,
/// is 4K-aliased (the window measured was 1 to 31 bytes; twice that covers
/// other vector widths).
const WINDOW: usize = 64;

/// Whether copying `len` bytes from `src` to `dst` one `memcpy` at a time
/// would be 4K-aliased.
#[inline]
fn aliased(dst: *const u8, src: *const u8, len: usize) -> bool {
    let distance = (dst as usize).wrapping_sub(src as usize) % 4096;
    len > PIECE && distance != 0 && distance <= WINDOW
}

/// Copies `len` bytes from `src` to `dst` (which do not overlap): one
/// `memcpy`, or pieces of [`PIECE`] bytes when the two are 4K-aliased (see
/// the module doc).
///
/// # Safety
/// `src` is valid for reads and `dst` for writes of `len` bytes, and the two
/// ranges do not overlap (as for [`std::ptr::copy_nonoverlapping`]).
#[inline]
pub(crate) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    if !aliased(dst, src, len) {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
        return;
    }
    copy_in_pieces(dst, src, len);
}

#[cold]
fn copy_in_pieces(dst: *mut u8, src: *const u8, len: usize) {
    let mut done = 0;
    while done < len {
        let n = PIECE.min(len - done);
        // SAFETY: `done + n <= len`, so both pieces lie within the ranges the
        // caller of `copy` vouched for.
        unsafe { std::ptr::copy_nonoverlapping(src.add(done), dst.add(done), n) };
        done += n;
    }
}

/// A new vector holding a copy of `src`: one allocation (not zeroed) and one
/// [`copy`].
#[inline]
pub(crate) fn to_vec(src: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(src.len());
    // SAFETY: [1] `v` has room for `src.len()` bytes and a fresh allocation
    // cannot overlap `src`; [2] all of them are initialised by the copy before
    // the length is set.
    unsafe {
        copy(v.as_mut_ptr(), src.as_ptr(), src.len());
        v.set_len(src.len());
    }
    v
}

/// postcard's output into a byte slice (a queue's slot or block), copying byte
/// strings with [`copy`]; finishes with the length written.
pub(crate) struct SlotWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SlotWriter<'a> {
    /// Writes from the start of `buf`.
    pub(crate) fn new(buf: &'a mut [u8]) -> SlotWriter<'a> {
        SlotWriter { buf, len: 0 }
    }
}

impl Flavor for SlotWriter<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        let slot = self.buf.get_mut(self.len).ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = b;
        self.len += 1;
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, b: &[u8]) -> postcard::Result<()> {
        let end = self.len + b.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(postcard::Error::SerializeBufferFull)?;
        // SAFETY: `dst` is `b.len()` bytes of our exclusive buffer, so it cannot
        // overlap the shared slice `b`.
        unsafe { copy(dst.as_mut_ptr(), b.as_ptr(), b.len()) };
        self.len = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_at_every_distance_and_length() {
        let src: Vec<u8> = (0..3 * 4096u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut dst = vec![0u8; 4 * 4096];
        for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, 4096, 4096 + 17, 2 * 4096] {
            for shift in [0usize, 1, 16, 18, 31, 32, 63, 64, 65, 4000] {
                dst.fill(0);
                // SAFETY: both ranges are in bounds (shift + len < dst.len(), len <= src.len()).
                unsafe { copy(dst.as_mut_ptr().add(shift), src.as_ptr(), len) };
                assert_eq!(&dst[shift..shift + len], &src[..len], "len {len} shift {shift}");
                assert!(dst[..shift].iter().all(|&b| b == 0) && dst[shift + len..].iter().all(|&b| b == 0));
            }
        }
    }

    #[test]
    fn aliasing_window() {
        let base = 0x10_0000usize as *const u8;
        let at = |d: usize| base.wrapping_add(d);
        assert!(!aliased(at(0), base, 1 << 20));
        assert!(aliased(at(18), base, 4096));
        assert!(aliased(at(4096 + 18), base, 4096));
        assert!(!aliased(at(18), base, PIECE));
        assert!(!aliased(at(65), base, 4096));
        assert!(!aliased(base, at(18), 4096)); // destination before the source
    }

    #[test]
    fn slot_writer_matches_postcard_and_refuses_overflow() {
        let item = (7u32, crate::Bytes::from(vec![9u8; 5000]), "tail".to_string());
        let mut buf = vec![0u8; 6000];
        let n = postcard::serialize_with_flavor(&item, SlotWriter::new(&mut buf[3..])).unwrap();
        assert_eq!(&buf[3..3 + n], &postcard::to_allocvec(&item).unwrap()[..]);
        let mut small = [0u8; 100];
        let err = postcard::serialize_with_flavor(&item, SlotWriter::new(&mut small)).unwrap_err();
        assert_eq!(err, postcard::Error::SerializeBufferFull);
    }
}
