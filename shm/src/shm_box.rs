//! `ShmBox<[T]>`: a buffer of plain data in a shared-memory segment of its
//! own, which moves to another process by name — through a `Queue`, a
//! `Connection`, any serde carrier — instead of being copied.
//!
//! # Layout
//! One named segment, `/dev/shm/mproc-box-<pid>-<random>`:
//!
//! ```text
//! 0        BoxHeader: magic MPBX, version, receipts (the claim word)
//! 32 (*)   ViewHeader of `Array<T>`: element size, alignment, count, type hash
//! 64 (*)   the elements
//! ```
//! (*) for element alignments up to 32; larger alignments move both down.
//!
//! # Who frees it
//! Exactly one handle owns a box at a time; the owner unlinks the name when it
//! drops, and the kernel frees the memory once the last mapping is gone.
//!
//! - **Send.** Serialising a box (what a carrier does to send it) writes its
//!   name, length and the current value of `receipts`, and gives ownership
//!   away: the handle here no longer unlinks, and reads as empty from then on.
//! - **Receive.** Deserialising opens the segment by name, checks both headers
//!   and claims it with one compare-and-swap of `receipts` from the value the
//!   token carries to the next. Only one claim of a token can succeed: a box
//!   sent twice is received once, and the other receiver gets
//!   [`ShmError::BoxGone`]. The receiver owns the box and may send it on.
//! - **Failed send.** A carrier whose send fails after it serialised the box
//!   (a full queue that timed out, a closed peer) calls [`reclaim_unsent`]:
//!   the sender claims the box back the same way a receiver would, so the box
//!   it gets back from the carrier is its own again. `Queue`'s puts and
//!   `Connection::send` do this.
//! - **Never received, or owner killed.** The name is registered with the
//!   resource tracker ([`crate::tracker`]) when the box is created, so a box
//!   left in a queue or a pipe, or held by a process that was SIGKILLed, is
//!   unlinked once every process of its creator's tree has ended. A box's name
//!   therefore lives no longer than its creator's process tree: a process
//!   outside that tree (spawned, or unrelated) that still holds a received box
//!   keeps its mapping, but can no longer send it on.
//!
//! # Why a named segment
//! A queue and a shared-memory pipe carry bytes, not descriptors, and a name
//! crosses any carrier on one machine. Receiving costs `shm_open`, `mmap` and
//! one compare-and-swap, independent of the size: pages are mapped as they are
//! touched. A memfd would need a Unix socket beside every carrier.
//!
//! # References
//! `shm_open(3)`, `shm_unlink(3)`, `mmap(2)`.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use bytemuck::Pod;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use std::sync::atomic::AtomicBool;

use crate::primitive::{AtomicU64, Ordering};
use crate::sys::magic::{self, Attach};
use crate::{view, Result, Segment, ShmError};

/// Every box's name starts with this.
const PREFIX: &str = "mproc-box-";

/// The header at offset 0 of a box's segment.
#[repr(C)]
struct BoxHeader {
    magic: u32,
    version: u32,
    /// How many times the box has been claimed by a receiver (or taken back by
    /// a sender whose send failed). A token carries the value it was sent at;
    /// a claim moves it from that value to the next, so each token is claimed
    /// at most once, and a token older than the last claim never.
    receipts: AtomicU64,
    _reserved: [u64; 2],
}
#[cfg(not(loom))]
const _: () = assert!(size_of::<BoxHeader>() == 32 && align_of::<BoxHeader>() == 8);

/// The offset of the view header: right after the box header, moved down so
/// that the elements after it are aligned for `T`.
fn view_offset<T>() -> usize {
    size_of::<BoxHeader>().next_multiple_of(align_of::<T>().max(8))
}

/// A handle's state: [`OWNED`], or the `receipts` value it was sent at.
const OWNED: u64 = u64::MAX;

/// Claims the box whose `receipts` word this is for the holder of a token
/// sent at `sent_at`: true for exactly one of the claims of one token (a
/// receiver's, or the sender's own in [`reclaim_unsent`]), and never for a
/// token older than the last claim. Lock-free: one compare-and-swap.
pub(crate) fn claim(receipts: &AtomicU64, sent_at: u64) -> bool {
    sent_at != OWNED && receipts.compare_exchange(sent_at, sent_at + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok()
}

/// A fixed-length buffer of plain data (`[T]`, `T: bytemuck::Pod`) in a
/// shared-memory segment of its own, which moves to another process by name:
/// put it in a `mproc_ipc::Queue`, send it over a `Connection`, or serialise
/// it into any message. The receiver maps the same memory; no byte of the
/// data is copied.
///
/// The receiver owns the box after receipt; it is freed once, when its owner
/// drops it. A box sent and never received, or held by a killed process, is
/// removed by the resource tracker when its creator's process tree has ended.
/// See the module doc for the protocol.
///
/// After a box is sent, the sending handle reads as an empty slice
/// ([`is_sent`](ShmBox::is_sent) is true): the data belongs to the receiver.
/// A slice borrowed from the box *before* `Connection::send(&b)` stays
/// valid and sees the receiver's writes; do not hold one across a send.
///
/// ```
/// use mproc_shm::ShmBox;
///
/// let mut b = ShmBox::<[u8]>::zeroed(1 << 20)?;
/// b[..5].copy_from_slice(b"hello");
/// // A carrier serialises it: the name travels, the megabyte does not.
/// let token = postcard::to_allocvec(&b).unwrap();
/// assert!(token.len() < 64);
/// assert!(b.is_sent() && b.is_empty());
/// // The receiver (here, the same process) maps the same memory.
/// let got: ShmBox<[u8]> = postcard::from_bytes(&token).unwrap();
/// assert_eq!(&got[..5], b"hello");
/// assert_eq!(got.len(), 1 << 20);
/// // A second receipt of the same token is refused.
/// assert!(postcard::from_bytes::<ShmBox<[u8]>>(&token).is_err());
/// # Ok::<(), mproc_shm::ShmError>(())
/// ```
pub struct ShmBox<T: ?Sized> {
    seg: Segment,
    name: String,
    /// The first element, in this process's mapping.
    data: NonNull<u8>,
    /// The number of elements.
    len: usize,
    /// [`OWNED`], or the `receipts` value this handle was sent at.
    state: AtomicU64,
    _t: PhantomData<Box<T>>,
}

// SAFETY: the handle refers to shared memory that lives as long as `seg`;
// its elements are `Pod` (no pointers, any bit pattern), and `&mut` access
// needs `&mut ShmBox`, which only the owner has.
unsafe impl<T: Pod> Send for ShmBox<[T]> {}
// SAFETY: `&ShmBox` gives out only `&[T]` of `Pod` elements and atomics.
unsafe impl<T: Pod> Sync for ShmBox<[T]> {}

impl<T: Pod> ShmBox<[T]> {
    /// A box of `len` zeroed elements, in a new named segment registered with
    /// the resource tracker. The zeroes cost nothing until touched: the
    /// segment's pages are made as they are first written.
    pub fn zeroed(len: usize) -> Result<ShmBox<[T]>> {
        let too_large = || ShmError::TooLarge { what: "ShmBox", size: len, limit: crate::segment::MAX_SEGMENT };
        let bytes = view::footprint::<T>(len).and_then(|b| b.checked_add(view_offset::<T>())).ok_or_else(too_large)?;
        let (seg, name) = create_named(bytes)?;
        let at = Attach::new(&seg, 0, "ShmBox");
        let header = at.range(size_of::<BoxHeader>(), align_of::<BoxHeader>())?;
        // SAFETY: [1] the range is in bounds and aligned (checked above); [2] the
        // segment was made just now under a fresh name: nobody else maps it.
        unsafe {
            header.cast::<BoxHeader>().as_ptr().write(BoxHeader {
                magic: magic::SHM_BOX.word,
                version: magic::SHM_BOX.version,
                receipts: AtomicU64::new(0),
                _reserved: [0; 2],
            })
        };
        let data = view::place::<T>(&seg, view_offset::<T>(), len, "ShmBox")?.cast();
        Ok(ShmBox { seg, name, data, len, state: AtomicU64::new(OWNED), _t: PhantomData })
    }

    /// A box holding a copy of `items`.
    pub fn from_slice(items: &[T]) -> Result<ShmBox<[T]>> {
        let mut b = Self::zeroed(items.len())?;
        b.copy_from_slice(items);
        Ok(b)
    }

    /// The segment's name (without the leading `/`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once this handle was sent (serialised): it then reads as empty,
    /// and dropping it leaves the segment to the receiver.
    pub fn is_sent(&self) -> bool {
        self.state.load(Ordering::Relaxed) != OWNED
    }

    fn header(&self) -> &BoxHeader {
        // SAFETY: checked in bounds and aligned when the box was made or
        // received; the header lives as long as `seg`.
        unsafe { &*self.seg.as_ptr().cast::<BoxHeader>() }
    }

    /// Opens and claims the box `name`, sent at `receipts` value `sent_at`
    /// with `len` elements.
    fn receive(name: &str, len: u64, sent_at: u64) -> Result<ShmBox<[T]>> {
        check_name(name)?;
        let seg = Segment::open(name).map_err(|e| match e {
            ShmError::NotFound { name } => ShmError::BoxGone { name },
            e => e,
        })?;
        let at = Attach::new(&seg, 0, "ShmBox");
        let header = at.range(size_of::<BoxHeader>(), align_of::<BoxHeader>())?;
        // SAFETY: the range was checked; magic and version are plain integers.
        let (word, version) = unsafe {
            let words = header.cast::<u32>().as_ptr();
            (words.read_volatile(), words.add(1).read_volatile())
        };
        at.identity(magic::SHM_BOX, word, version)?;
        // SAFETY: the header was checked to be a box header, in bounds.
        let receipts = unsafe { &(*header.cast::<BoxHeader>().as_ptr()).receipts };
        if !claim(receipts, sent_at) {
            return Err(ShmError::BoxGone { name: name.to_owned() });
        }
        // Claimed: ours now, to free if it turns out unusable.
        let checked = view::attach::<T>(&seg, view_offset::<T>(), "ShmBox").and_then(|(found, data)| {
            Attach::new(&seg, view_offset::<T>(), "ShmBox")
                .layout(found as u64 == len, || format!("{found} elements, the token says {len}"))?;
            Ok((found, data))
        });
        match checked {
            Ok((len, data)) => Ok(ShmBox {
                seg,
                name: name.to_owned(),
                data: data.cast(),
                len,
                state: AtomicU64::new(OWNED),
                _t: PhantomData,
            }),
            Err(e) => {
                let _ = Segment::unlink(name);
                Err(e)
            }
        }
    }
}

impl<T: Pod> Deref for ShmBox<[T]> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        let len = if self.is_sent() { 0 } else { self.len };
        // SAFETY: [1] `data` is aligned for T and `len` elements lie in the
        // mapping (checked when made or received), which lives with `seg`;
        // [2] while this handle owns the box no other process writes it
        // (the sender gave it up; a receiver needs our token, not sent yet).
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<T>(), len) }
    }
}

impl<T: Pod> DerefMut for ShmBox<[T]> {
    fn deref_mut(&mut self) -> &mut [T] {
        let len = if self.is_sent() { 0 } else { self.len };
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique in this
        // process.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr().cast::<T>(), len) }
    }
}

impl<T: ?Sized> Drop for ShmBox<T> {
    fn drop(&mut self) {
        if self.state.load(Ordering::Relaxed) == OWNED {
            // Gone already only if its creator's tree ended (the tracker).
            let _ = Segment::unlink(&self.name);
        }
    }
}

impl<T: Pod> fmt::Debug for ShmBox<[T]> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmBox")
            .field("name", &self.name)
            .field("element", &std::any::type_name::<T>())
            .field("len", &self.len)
            .field("sent", &self.is_sent())
            .finish()
    }
}

thread_local! {
    /// Inside [`reclaim_unsent`]: serialising a box takes it back.
    static RECLAIMING: Cell<bool> = const { Cell::new(false) };
    /// The last error a box's deserialisation raised on this thread.
    static LAST_ERROR: Cell<Option<ShmError>> = const { Cell::new(None) };
}

/// Whether any box was ever sent in this process: a carrier's failed send
/// reclaims nothing (and serialises nothing again) until one was.
static ANY_SENT: AtomicBool = AtomicBool::new(false);

impl<T: Pod> Serialize for ShmBox<[T]> {
    /// Writes `(name, len, receipts)` and gives the box away (or, inside
    /// [`reclaim_unsent`], takes it back).
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let receipts = &self.header().receipts;
        let state = self.state.load(Ordering::Relaxed);
        if RECLAIMING.with(Cell::get) {
            // Taken back only if nobody claimed this handle's token meanwhile.
            if claim(receipts, state) {
                self.state.store(OWNED, Ordering::Relaxed);
            }
            return ().serialize(s);
        }
        let sent_at = if state == OWNED {
            let now = receipts.load(Ordering::Acquire);
            self.state.store(now, Ordering::Relaxed);
            ANY_SENT.store(true, Ordering::Relaxed);
            now
        } else {
            // Sent already: the same token again (only one of them is claimed).
            state
        };
        (self.name.as_str(), self.len as u64, sent_at).serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for ShmBox<[T]> {
    /// Opens the named segment and claims the box (see the module doc). The
    /// error is also kept for [`take_receive_error`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (name, len, sent_at) = <(String, u64, u64)>::deserialize(d)?;
        ShmBox::receive(&name, len, sent_at).map_err(|e| {
            let msg = e.to_string();
            LAST_ERROR.with(|c| c.set(Some(e)));
            D::Error::custom(msg)
        })
    }
}

/// For carriers: the send of `item` failed after it was serialised, so every
/// [`ShmBox`] in it is the sender's again. `serialize_again` must serialise
/// the same item once more (any format: only the boxes' side effect counts);
/// while it runs, serialising a box takes it back instead of giving it away.
/// A box that a receiver claimed meanwhile stays sent.
///
/// Does nothing (and does not call `serialize_again`) in a process that has
/// never sent a box.
///
/// ```
/// use mproc_shm::{shm_box, ShmBox};
///
/// let b = ShmBox::<[u32]>::zeroed(4)?;
/// let wire = postcard::to_allocvec(&b).unwrap();
/// assert!(b.is_sent());
/// // ... the carrier failed to deliver `wire`:
/// shm_box::reclaim_unsent(|| drop(postcard::to_allocvec(&b)));
/// assert!(!b.is_sent() && b.len() == 4);
/// // The lost token can no longer be claimed.
/// assert!(postcard::from_bytes::<ShmBox<[u32]>>(&wire).is_err());
/// # Ok::<(), mproc_shm::ShmError>(())
/// ```
pub fn reclaim_unsent(serialize_again: impl FnOnce()) {
    if !ANY_SENT.load(Ordering::Relaxed) {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            RECLAIMING.with(|r| r.set(false));
        }
    }
    RECLAIMING.with(|r| r.set(true));
    let _reset = Reset;
    serialize_again();
}

/// The typed error behind the most recent failed receipt of a [`ShmBox`] on
/// this thread, if it was not taken yet. serde formats such as postcard keep
/// only that *some* custom error occurred; a carrier's decode error then says
/// less than this ([`ShmError::BoxGone`], a layout mismatch naming the
/// element types, …).
pub fn take_receive_error() -> Option<ShmError> {
    LAST_ERROR.with(|c| c.take())
}

/// Creates a segment of `bytes` under a fresh random name and registers it
/// with the resource tracker; this process unlinks it (see [`ShmBox`]'s drop).
fn create_named(bytes: usize) -> Result<(Segment, String)> {
    let mut last = None;
    for _ in 0..4 {
        let mut r = [0u8; 8];
        crate::sys::random_bytes(&mut r).map_err(|e| ShmError::os("getrandom", "a ShmBox name", e))?;
        let name = format!("{PREFIX}{}-{:016x}", crate::sys::pid(), u64::from_le_bytes(r));
        match Segment::create_untracked(&name, bytes) {
            Ok(seg) => {
                crate::tracker::register(&name);
                return Ok((seg, name));
            }
            Err(e @ ShmError::Exists { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("the loop ran"))
}

/// A received name must be a box's: a peer cannot make this process open or
/// unlink any other segment.
fn check_name(name: &str) -> Result<()> {
    let rest = name.strip_prefix(PREFIX);
    let ok =
        rest.is_some_and(|r| r.len() <= 40 && !r.is_empty() && r.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
    if ok {
        Ok(())
    } else {
        Err(ShmError::InvalidName {
            name: name.to_owned(),
            reason: "it is not the name of a ShmBox (mproc-box-<pid>-<hex>)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_other_segments_are_refused() {
        for bad in ["psm_1234", "mproc-box-", "mproc-box-../etc", "mproc-queue-1", "mproc-box-12-zz"] {
            assert!(matches!(check_name(bad), Err(ShmError::InvalidName { .. })), "{bad}");
        }
        check_name("mproc-box-123-00ff00ff00ff00ff").unwrap();
    }

    #[test]
    fn the_elements_follow_aligned_headers() {
        assert_eq!(view_offset::<u8>() + 32, 64);
        assert_eq!(view_offset::<f64>() + 32, 64);
        #[repr(C, align(64))]
        #[derive(Clone, Copy)]
        struct Wide([u8; 64]);
        assert_eq!(view_offset::<Wide>(), 64);
    }
}
