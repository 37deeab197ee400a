//! A worker's results journal: shared memory the worker writes as it goes and
//! the parent reads after the worker died (never while it runs).
//!
//! # Layout
//! One segment of [`JOURNAL_LEN`] bytes per worker: a [`Header`] (magic,
//! version and three `AtomicU64` words) on the first cache line, then the
//! results the worker finished and has not sent yet, in the wire format of
//! results laid end to end. The worker copies each result in before bumping
//! `committed` (Release), so the parent (Acquire) sees only whole results.
//!
//! The parent writes the header when it makes the segment ([`create`]); every
//! reader checks it ([`Journal::attach`], [`Journal::from_raw`]) before
//! touching a word, so a segment that is not a journal, or a journal of another
//! layout, is refused instead of misread.

use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use mproc_shm::{Segment, ShmError};

/// The size of a worker's journal segment.
pub(crate) const JOURNAL_LEN: usize = 256 << 10;
/// `"MPPJ"`: a pool worker's journal (unique among the crates' shared-memory magics).
const MAGIC: u32 = u32::from_le_bytes(*b"MPPJ");
const VERSION: u32 = 1;
/// `first_seq` when the initializer panicked; the data is then its message.
const INIT_FAILED: u64 = u64::MAX;
/// The longest initializer panic message kept.
const MAX_INIT_MESSAGE: usize = 4096;

/// The header at offset 0 of a journal segment; the results follow it.
#[repr(C, align(64))]
struct Header {
    magic: u32,
    version: u32,
    /// The number of units the worker has started.
    started: AtomicU64,
    /// The sequence number (counting units from 0) of the first journaled
    /// result, or [`INIT_FAILED`].
    first_seq: AtomicU64,
    /// The bytes of complete results in the journal.
    committed: AtomicU64,
}

/// Where the results start.
const DATA: usize = size_of::<Header>();
/// Room for results.
const CAPACITY: usize = JOURNAL_LEN - DATA;
const _: () = assert!(DATA == 64 && JOURNAL_LEN % 4096 == 0 && JOURNAL_LEN > DATA);

/// Makes a worker's journal segment, its header written.
pub(crate) fn create() -> mproc_shm::Result<Segment> {
    let seg = Segment::anonymous(JOURNAL_LEN)?;
    let header = seg.check_range("pool journal", 0, JOURNAL_LEN, align_of::<Header>())?.cast::<Header>();
    // SAFETY: [1] the range is in bounds and aligned (checked above); [2] the
    // segment was just made and nobody else can see it yet. The words are
    // zero, as the fresh memfd already is.
    unsafe {
        let h = header.as_ptr();
        std::ptr::addr_of_mut!((*h).magic).write(MAGIC);
        std::ptr::addr_of_mut!((*h).version).write(VERSION);
    }
    Ok(seg)
}

/// A checked view of a journal (see the module docs), valid while its
/// mapping is.
#[derive(Clone, Copy)]
pub(crate) struct Journal<'a> {
    header: &'a Header,
    data: NonNull<u8>,
}

impl<'a> Journal<'a> {
    /// The journal in `seg`, after checking its size and header.
    pub(crate) fn attach(seg: &'a Segment) -> mproc_shm::Result<Journal<'a>> {
        let base = seg.check_range("pool journal", 0, JOURNAL_LEN, align_of::<Header>())?;
        // SAFETY: [1] `base` heads JOURNAL_LEN bytes of `seg`'s mapping,
        // aligned for a Header (checked above); [2] the mapping lives as long
        // as the borrow of `seg`.
        unsafe { Journal::from_raw(base.as_ptr()) }
    }

    /// The journal at `base`, after checking its header.
    ///
    /// # Safety
    /// `base` must be the start of a mapping of at least [`JOURNAL_LEN`]
    /// bytes, aligned to 64, that stays mapped for `'a` and whose first 64
    /// bytes are touched by others only through this type (a segment made by
    /// [`create`], in this process or inherited across `fork`).
    pub(crate) unsafe fn from_raw(base: *mut u8) -> mproc_shm::Result<Journal<'a>> {
        let header = NonNull::new(base.cast::<Header>()).ok_or_else(|| bad("a null address".to_owned()))?;
        debug_assert!(base as usize % align_of::<Header>() == 0);
        // SAFETY: the header lies in a live mapping for 'a and is aligned
        // (contract); its fields are plain integers and atomics, valid for any
        // bit pattern.
        let header: &'a Header = unsafe { header.as_ref() };
        // SAFETY: the header was written once before the worker started.
        let (magic, version) = unsafe {
            (std::ptr::addr_of!(header.magic).read_volatile(), std::ptr::addr_of!(header.version).read_volatile())
        };
        if magic != MAGIC || version != VERSION {
            return Err(bad(format!(
                "magic {magic:#x} version {version}, not a pool journal (magic {MAGIC:#x} version {VERSION})"
            )));
        }
        // SAFETY: DATA < JOURNAL_LEN, so the results area is inside the mapping.
        let data = unsafe { NonNull::new_unchecked(base.add(DATA)) };
        Ok(Journal { header, data })
    }

    /// Records that the worker has started `n` units.
    pub(crate) fn set_started(&self, n: u64) {
        self.header.started.store(n, Ordering::Release);
    }

    /// The number of units the worker started.
    pub(crate) fn started(&self) -> u64 {
        self.header.started.load(Ordering::Acquire)
    }

    /// Empties the journal after a send: its next result is unit `first_seq`.
    pub(crate) fn restart(&self, first_seq: u64) {
        self.header.committed.store(0, Ordering::Release);
        self.header.first_seq.store(first_seq, Ordering::Release);
    }

    /// Appends `entry` after the committed bytes; false if it does not fit.
    pub(crate) fn append(&self, journaled: &mut usize, entry: &[u8]) -> bool {
        if *journaled + entry.len() > CAPACITY {
            return false;
        }
        // SAFETY: the range lies inside the results area (checked above), past
        // the committed bytes, and only this worker writes it.
        unsafe { std::ptr::copy_nonoverlapping(entry.as_ptr(), self.data.as_ptr().add(*journaled), entry.len()) };
        *journaled += entry.len();
        self.header.committed.store(*journaled as u64, Ordering::Release);
        true
    }

    /// Records that the initializer panicked, with its message, in place of
    /// results (the worker then exits).
    pub(crate) fn note_init_failure(&self, message: &str) {
        let mut len = 0;
        let msg = &message.as_bytes()[..message.len().min(MAX_INIT_MESSAGE)];
        self.append(&mut len, msg);
        self.header.first_seq.store(INIT_FAILED, Ordering::Release);
    }

    /// The initializer's panic message, if it panicked.
    pub(crate) fn init_failure(&self) -> Option<String> {
        if self.header.first_seq.load(Ordering::Acquire) != INIT_FAILED {
            return None;
        }
        Some(String::from_utf8_lossy(&self.entries().1).into_owned())
    }

    /// The first journaled sequence number and a copy of the committed results.
    pub(crate) fn entries(&self) -> (u64, Vec<u8>) {
        let len = (self.header.committed.load(Ordering::Acquire) as usize).min(CAPACITY);
        let first = self.header.first_seq.load(Ordering::Acquire);
        // SAFETY: `len` bytes of the results area lie inside the mapping, and
        // the worker that wrote them is dead.
        let bytes = unsafe { std::slice::from_raw_parts(self.data.as_ptr(), len) }.to_vec();
        (first, bytes)
    }
}

fn bad(detail: String) -> ShmError {
    ShmError::BadToken { what: "pool journal", detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_journal_attaches_and_keeps_what_is_appended() {
        let seg = create().unwrap();
        let j = Journal::attach(&seg).unwrap();
        j.restart(7);
        let mut journaled = 0;
        assert!(j.append(&mut journaled, b"abc"));
        j.set_started(8);
        assert_eq!(Journal::attach(&seg).unwrap().entries(), (7, b"abc".to_vec()));
        assert_eq!(j.started(), 8);
        assert_eq!(j.init_failure(), None);
    }

    #[test]
    fn attach_refuses_a_segment_that_is_not_a_journal() {
        let zeros = Segment::anonymous(JOURNAL_LEN).unwrap();
        let err = Journal::attach(&zeros).err().expect("a zeroed segment is no journal").to_string();
        assert!(err.contains("magic 0x0"), "{err}");
        let small = Segment::anonymous(4096).unwrap();
        assert!(Journal::attach(&small).is_err());
    }

    #[test]
    fn an_initializer_failure_replaces_the_results() {
        let seg = create().unwrap();
        let j = Journal::attach(&seg).unwrap();
        j.note_init_failure("boom");
        assert_eq!(j.init_failure().as_deref(), Some("boom"));
    }
}
