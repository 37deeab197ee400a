//! Every magic word mproc places in shared memory, and the one header check
//! that every attach site runs.
//!
//! Each object that lives in shared memory starts with a `#[repr(C)]` header
//! whose first words are a magic and a version. Attaching reads them back and
//! refuses anything else with a [`ShmError::LayoutMismatch`] naming what was
//! found: a handle of one kind can never be made over an object of another.
//! That only holds if no two kinds share a magic, so the list lives here, in
//! one place, and a `const` check refuses to compile a list with a repeat.
//!
//! ```
//! use mproc_shm::sys::magic;
//! assert_ne!(magic::SPSC_RING.word, magic::SYNC_PRIMITIVE.word);
//! assert_eq!(magic::known(magic::QUEUE.word).map(|m| m.name), Some("mproc queue"));
//! ```

use std::ptr::NonNull;

use crate::{Result, Segment, ShmError};

/// One kind of shared-memory object: its magic word, its layout version and
/// what it is called in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Magic {
    /// The first word of the object's header (four ASCII bytes, little-endian).
    pub word: u32,
    /// The layout version; bump it when the header or body layout changes.
    pub version: u32,
    /// The object's name in errors.
    pub name: &'static str,
}

impl Magic {
    const fn new(tag: &[u8; 4], version: u32, name: &'static str) -> Magic {
        Magic { word: u32::from_le_bytes(*tag), version, name }
    }
}

/// `shm::Value` / `shm::Array`: the view header.
pub const VIEW: Magic = Magic::new(b"MPRV", 1, "mproc view");
/// `shm::SpscRing`.
pub const SPSC_RING: Magic = Magic::new(b"MPRS", 1, "SpscRing");
/// `shm::MpmcRing`.
pub const MPMC_RING: Magic = Magic::new(b"MPRM", 1, "MpmcRing");
/// A `mproc-sync` primitive (lock, semaphore, condition, event, barrier,
/// synchronized value) behind its placement header. Was `MPRS` before, the
/// same word as [`SPSC_RING`]; changed so that neither attaches as the other.
pub const SYNC_PRIMITIVE: Magic = Magic::new(b"MPSY", 1, "mproc primitive");
/// A `mproc-ipc` queue's control block.
pub const QUEUE: Magic = Magic::new(b"MPQU", 2, "mproc queue");
/// A `mproc-ipc` shared-memory pipe's control page.
pub const PIPE: Magic = Magic::new(b"MPPI", 1, "pipe");
/// A `mproc-pool` worker's results journal.
pub const POOL_JOURNAL: Magic = Magic::new(b"MPJL", 1, "pool results journal");

/// `shm::ShmBox`: the box header in front of its view header.
pub const SHM_BOX: Magic = Magic::new(b"MPBX", 2, "ShmBox");

/// Every magic in the project. Add a new kind here; the build fails if its word
/// is already taken.
pub const ALL: [Magic; 8] = [VIEW, SPSC_RING, MPMC_RING, SYNC_PRIMITIVE, QUEUE, PIPE, POOL_JOURNAL, SHM_BOX];

/// True if no two entries of `list` have the same word.
pub const fn distinct(list: &[Magic]) -> bool {
    let mut i = 0;
    while i < list.len() {
        let mut j = i + 1;
        while j < list.len() {
            if list[i].word == list[j].word {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const _: () = assert!(distinct(&ALL), "two shared-memory kinds share a magic word");

/// The kind whose magic is `word`, if any.
pub fn known(word: u32) -> Option<Magic> {
    ALL.iter().copied().find(|m| m.word == word)
}

/// The checks of one attach: the object named `what` at `offset` of `seg`.
/// Every error it makes names the segment, the offset and the bad value.
///
/// ```
/// use mproc_shm::sys::magic::{self, Attach};
/// let seg = mproc_shm::Segment::anonymous(4096).unwrap();
/// let at = Attach::new(&seg, 0, "SpscRing");
/// at.range(64, 8).unwrap();
/// // A zeroed segment holds no ring.
/// assert!(at.identity(magic::SPSC_RING, 0, 0).is_err());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Attach<'a> {
    seg: &'a Segment,
    offset: usize,
    what: &'static str,
}

impl<'a> Attach<'a> {
    /// The checks for `what` at `offset` of `seg`.
    pub fn new(seg: &'a Segment, offset: usize, what: &'static str) -> Attach<'a> {
        Attach { seg, offset, what }
    }

    /// The address of `len` bytes at the offset, checked to lie in the segment
    /// and to be aligned to `align` ([`Segment::check_range`]).
    pub fn range(&self, len: usize, align: usize) -> Result<NonNull<u8>> {
        self.seg.check_range(self.what, self.offset, len, align)
    }

    /// Checks the magic and version read from the header against `expected`.
    /// A wrong magic names the kind it belongs to, if it is one of [`ALL`].
    pub fn identity(&self, expected: Magic, magic: u32, version: u32) -> Result<()> {
        if magic != expected.word {
            let found = known(magic).map_or("no mproc object", |m| m.name);
            return Err(self.mismatch(format!(
                "magic {magic:#010x} ({found}), expected {:#010x} ({})",
                expected.word, expected.name
            )));
        }
        if version != expected.version {
            return Err(self.mismatch(format!("version {version}, expected {}", expected.version)));
        }
        Ok(())
    }

    /// `Ok` if `ok`, else a mismatch with `detail` (called only on failure).
    pub fn layout(&self, ok: bool, detail: impl FnOnce() -> String) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(self.mismatch(detail()))
        }
    }

    /// A [`ShmError::LayoutMismatch`] for this object with `detail`.
    pub fn mismatch(&self, detail: String) -> ShmError {
        ShmError::LayoutMismatch { what: self.what, offset: self.offset, segment: self.seg.to_string(), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_magic_is_distinct_and_a_repeat_is_caught() {
        assert!(distinct(&ALL));
        assert!(!distinct(&[VIEW, QUEUE, VIEW]));
        for m in ALL {
            assert_eq!(known(m.word), Some(m));
        }
    }

    #[test]
    fn the_spsc_ring_and_the_sync_primitive_no_longer_share_a_magic() {
        assert_ne!(SPSC_RING.word, SYNC_PRIMITIVE.word);
    }
}
