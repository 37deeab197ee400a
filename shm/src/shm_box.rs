//! `ShmBox<[T]>`: a buffer of plain data in a shared-memory segment, which
//! moves to another process by name — through a `Queue`, a `Connection`, any
//! serde carrier — instead of being copied. In a steady loop (make a box,
//! write it, send it; the receiver reads it and drops it; again) the segments
//! are recycled, not made and unlinked: a hand-off then maps nothing, faults
//! nothing and makes no system call, like iceoryx's pre-mapped pools.
//!
//! # Layout
//! One named segment, `/dev/shm/mproc-box-<pid>-<random>`, of a whole number
//! of pages:
//!
//! ```text
//! 0        BoxHeader: magic MPBX, version, state word, creator pid, pooled
//! 32 (*)   ViewHeader of `Array<T>`: element size, alignment, count, type hash
//! 64 (*)   the elements
//! ```
//! (*) for element alignments up to 32; larger alignments move both down. The
//! view header is written again each time the segment is reused, for the
//! element type and count of the new box.
//!
//! # The state word
//! Who may touch the box is one `AtomicU64` in the header, moved only by
//! compare-and-swap (the table of phases is in `state.rs`): **FREE** (in its
//! creator's pool), **HELD**(pid) by the one process whose handle owns it,
//! **SENT** (a token is in flight, nobody holds it), **RETIRED** (being
//! unlinked). A 40-bit ticket — the segment's generation — goes up at every
//! transition, so a word value is never seen twice.
//!
//! - **Send.** Serialising a box (what a carrier does to send it) moves the
//!   word HELD(t, me) → SENT(t+1) and writes the segment's name, the length
//!   and that word: the token. The handle here reads as empty from then on.
//! - **Receive.** Deserialising finds the segment (see *Mappings* below) and
//!   claims it: SENT(t+1) → HELD(t+2, receiver). Only one claim of a token
//!   can succeed: a box sent twice is received once, and any token of an
//!   earlier round of a recycled segment (a generation mismatch) is refused
//!   with [`ShmError::BoxGone`]. The receiver owns the box and may send it on.
//! - **Failed send.** A carrier whose send fails after it serialised the box
//!   (a full queue that timed out, a closed peer) calls [`reclaim_unsent`]:
//!   the sender claims the box back the way a receiver would. `Queue`'s puts
//!   and `Connection::send` do this.
//! - **Drop.** The owner's drop gives the segment back to its creator's pool:
//!   HELD(t, me) → FREE(t+1). Nothing is unlinked; the creator's next box that
//!   fits takes it (FREE → HELD by CAS, so a segment never has two owners).
//!   A box outside the pool (below) is retired and unlinked by its owner's
//!   drop instead.
//! - **Holder killed.** A HELD word names its holder; when the creator finds
//!   no FREE segment for a new box it frees the segments whose holder has died
//!   (`sys::alive`), so a box whose receiver was killed is not lost. (A pid
//!   reused by a new process delays this until that process ends.)
//!
//! # Mappings: one bounded table per process
//! Each process keeps a table of the box segments it has mapped: its pool
//! (segments it created) and a cache of other processes' segments, keyed by
//! name; the state word in the mapping is the generation check (a token whose
//! ticket is not the word's is refused, and a RETIRED word means the mapping
//! is stale: it is dropped and the name opened afresh). Receiving a recycled
//! segment therefore costs a lookup and one CAS: no `shm_open`, no `mmap`, and
//! no page fault for pages this process touched before.
//!
//! The table is bounded, by default at 64 segments and 256 MiB
//! ([`CacheLimits`], [`set_cache_limits`]); least recently used first out.
//! Past the bound: another process's segment that no handle here uses is
//! unmapped; one of this process's FREE segments is retired and unlinked; a
//! segment held or in flight stays. If nothing can leave (every pooled
//! segment is in use), a new box is made outside the pool — one-shot, as
//! without recycling: its own segment, unlinked by its last owner's drop — and
//! another process's segment is mapped for its one box only. A box bigger
//! than the byte bound is always one-shot. [`trim`] empties the table of what
//! can leave; [`cache_stats`] shows it.
//!
//! A new box of this process takes a FREE segment of its pool that fits (at
//! least the box, at most twice it or 64 KiB more). [`ShmBox::uncleared`]
//! leaves the old contents (any bits are a valid `T: Pod`);
//! [`ShmBox::zeroed`] clears a reused segment only up to 64 KiB of elements
//! and makes bigger zeroed boxes one-shot (a fresh segment is zero for free,
//! a memset of megabytes is not).
//!
//! # What is never leaked
//! Every segment's name is registered with the resource tracker
//! ([`crate::tracker`]) by its creator, so whatever is left — a FREE segment
//! of the pool, a box in a queue or a pipe nobody reads, a box held by a
//! killed process — is unlinked once every process of its creator's tree has
//! ended. Before that: a creator that ends leaves its FREE segments to the
//! tracker, or to a receiver that finds them FREE with their creator dead
//! when they leave its table (it retires and unlinks them then); a token
//! lost in flight (its carrier dropped unread) keeps its segment SENT until
//! the tree ends. A box's name lives no longer than its creator's process
//! tree: a process outside that tree that still holds a received box keeps
//! its mapping, but can no longer send it on.
//!
//! # References
//! `shm_open(3)`, `shm_unlink(3)`, `mmap(2)`.

mod cache;
pub(crate) mod state;

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use bytemuck::Pod;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use std::sync::atomic::AtomicBool;

use cache::Mapped;
pub use cache::{CacheLimits, CacheStats};
use state::{HELD, RETIRED};

use crate::primitive::{AtomicU64, Ordering};
use crate::sys::magic::{self, Attach};
use crate::{view, Result, Segment, ShmError};

/// Every box's name starts with this.
const PREFIX: &str = "mproc-box-";

/// A zeroed box reuses a pooled segment (and clears it) only up to this many
/// bytes of elements; a bigger one gets a fresh segment, zero for free.
const ZERO_REUSE_MAX: usize = 64 << 10;

/// The header at offset 0 of a box's segment.
#[repr(C)]
pub(crate) struct BoxHeader {
    magic: u32,
    version: u32,
    /// The state word: phase, holder pid and ticket (the table is in
    /// `state.rs`).
    state: AtomicU64,
    /// The pid of the creating process, whose pool the segment returns to.
    creator: u32,
    /// 1: recycled through the creator's pool; 0: one-shot, unlinked by the
    /// drop of its last owner.
    pooled: u32,
    _reserved: u64,
}
#[cfg(not(loom))]
const _: () = assert!(size_of::<BoxHeader>() == 32 && align_of::<BoxHeader>() == 8);

/// The offset of the view header: right after the box header, moved down so
/// that the elements after it are aligned for `T`.
fn view_offset<T>() -> usize {
    size_of::<BoxHeader>().next_multiple_of(align_of::<T>().max(8))
}

/// Claims, for `me`, the box whose state word this is, for the holder of the
/// token `sent`: the new (HELD) word, for exactly one of the claims of one
/// token, and never for a token of an earlier round. Lock-free: one CAS.
pub(crate) fn claim(word: &AtomicU64, sent: u64, me: u32) -> Option<u64> {
    state::claim(word, sent, me)
}

/// A fixed-length buffer of plain data (`[T]`, `T: bytemuck::Pod`) in shared
/// memory, which moves to another process by name: put it in a
/// `mproc_ipc::Queue`, send it over a `Connection`, or serialise it into any
/// message. The receiver maps the same memory; no byte of the data is copied.
///
/// The receiver owns the box after receipt; when its owner drops it, its
/// segment goes back to its creator's pool for the creator's next box (see
/// the module doc: recycling, its bounds, and what is never leaked). In a
/// loop that makes, sends and drops boxes of one size, every hand-off after
/// the first reuses mapped memory: use [`ShmBox::uncleared`] there.
///
/// After a box is sent, the sending handle reads as an empty slice
/// ([`is_sent`](ShmBox::is_sent) is true): the data belongs to the receiver.
/// A slice borrowed from the box *before* `Connection::send(&b)` stays
/// valid and sees the receiver's writes; do not hold one across a send.
///
/// A handle copied into a child by `fork` still belongs to the parent: the
/// child can read and write the memory, but not send the box nor free it.
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
    map: Arc<Mapped>,
    /// The first element, in this process's mapping.
    data: NonNull<u8>,
    /// The number of elements.
    len: usize,
    /// The state word this handle expects in the header: HELD(t, holder)
    /// while it owns the box, SENT(t) once it sent it (the token's word).
    state: AtomicU64,
    _t: PhantomData<Box<T>>,
}

// SAFETY: the handle refers to shared memory that lives as long as `map`;
// its elements are `Pod` (no pointers, any bit pattern), and `&mut` access
// needs `&mut ShmBox`, which only the owner has.
unsafe impl<T: Pod> Send for ShmBox<[T]> {}
// SAFETY: `&ShmBox` gives out only `&[T]` of `Pod` elements and atomics.
unsafe impl<T: Pod> Sync for ShmBox<[T]> {}

impl<T: Pod> ShmBox<[T]> {
    /// The bytes a box of `len` elements needs, headers included.
    fn need(len: usize) -> Result<usize> {
        let too_large = || ShmError::TooLarge { what: "ShmBox", size: len, limit: crate::segment::MAX_SEGMENT };
        view::footprint::<T>(len)
            .and_then(|b| b.checked_add(view_offset::<T>()))
            .filter(|&b| b <= crate::segment::MAX_SEGMENT)
            .ok_or_else(too_large)
    }

    /// A box of `len` zeroed elements. A small one (up to 64 KiB of
    /// elements) reuses a FREE segment of this process's pool and clears it;
    /// a bigger one gets a fresh segment of its own, whose zeroes cost nothing
    /// until touched, and is unlinked by its last owner's drop. In a loop,
    /// [`uncleared`](ShmBox::uncleared) reuses segments of any size.
    pub fn zeroed(len: usize) -> Result<ShmBox<[T]>> {
        let need = Self::need(len)?;
        if len * size_of::<T>() > ZERO_REUSE_MAX {
            return Self::fresh(len, need, false);
        }
        let mut b = Self::pooled(len, need)?;
        let fresh = state::ticket(b.state.load(Ordering::Relaxed)) == 0;
        if !fresh {
            bytemuck::cast_slice_mut::<T, u8>(&mut b).fill(0);
        }
        Ok(b)
    }

    /// A box of `len` elements whose contents are left as they are: zeroes in
    /// a fresh segment, whatever the last box of a reused segment held (any
    /// bits are a valid `T`, which is `Pod`). Reuses a FREE segment of this
    /// process's pool that fits, so a loop of make-send-drop maps and clears
    /// nothing; makes a new one (pooled if the table has room) otherwise.
    ///
    /// ```
    /// use mproc_shm::ShmBox;
    ///
    /// let mut b = ShmBox::<[u8]>::uncleared(4096)?;
    /// let name = b.name().to_owned();
    /// b[0] = 1;
    /// drop(b); // back to this process's pool
    /// let b = ShmBox::<[u8]>::uncleared(4000)?;
    /// assert_eq!(b.name(), name, "the same segment, reused");
    /// # Ok::<(), mproc_shm::ShmError>(())
    /// ```
    pub fn uncleared(len: usize) -> Result<ShmBox<[T]>> {
        Self::pooled(len, Self::need(len)?)
    }

    /// A box holding a copy of `items`.
    pub fn from_slice(items: &[T]) -> Result<ShmBox<[T]>> {
        let mut b = Self::uncleared(items.len())?;
        b.copy_from_slice(items);
        Ok(b)
    }

    fn pooled(len: usize, need: usize) -> Result<ShmBox<[T]>> {
        match cache::take(need) {
            Some((map, held)) => Self::place(map, len, held),
            None => Self::fresh(len, need, true),
        }
    }

    /// A box in a new segment, entered in the pool if `may_pool` and the
    /// table has room.
    fn fresh(len: usize, need: usize, may_pool: bool) -> Result<ShmBox<[T]>> {
        let me = crate::sys::pid();
        debug_assert!(state::pid_fits(me), "pid {me} does not fit the state word");
        let cap = cache::capacity_for(need);
        let make = |pooled: bool| -> Result<Arc<Mapped>> {
            let (seg, name) = create_named(cap)?;
            let at = Attach::new(&seg, 0, "ShmBox");
            let header = at.range(size_of::<BoxHeader>(), align_of::<BoxHeader>())?;
            // SAFETY: [1] the range is in bounds and aligned (checked above);
            // [2] the segment was made just now under a fresh name: nobody
            // else maps it.
            unsafe {
                header.cast::<BoxHeader>().as_ptr().write(BoxHeader {
                    magic: magic::SHM_BOX.word,
                    version: magic::SHM_BOX.version,
                    state: AtomicU64::new(state::created(me)),
                    creator: me,
                    pooled: pooled as u32,
                    _reserved: 0,
                })
            };
            Ok(Arc::new(Mapped { name: name.into(), seg, creator: me, pooled }))
        };
        let map = if may_pool { cache::create(cap, make)? } else { make(false)? };
        Self::place(map, len, state::created(me))
    }

    /// The box of `len` elements in `map`, which this process holds as `held`:
    /// writes the view header for `T` and `len`.
    fn place(map: Arc<Mapped>, len: usize, held: u64) -> Result<ShmBox<[T]>> {
        // Built first, so an error below frees the segment through Drop.
        let mut b = ShmBox { map, data: NonNull::dangling(), len: 0, state: AtomicU64::new(held), _t: PhantomData };
        b.data = view::place::<T>(&b.map.seg, view_offset::<T>(), len, "ShmBox")?.cast();
        b.len = len;
        Ok(b)
    }

    /// The segment's name (without the leading `/`).
    pub fn name(&self) -> &str {
        &self.map.name
    }

    /// True once this handle was sent (serialised): it then reads as empty,
    /// and dropping it leaves the segment to the receiver.
    pub fn is_sent(&self) -> bool {
        state::phase(self.state.load(Ordering::Relaxed)) != HELD
    }

    /// Opens and claims the box `name`, sent as the word `sent` with `len`
    /// elements.
    fn receive(name: &str, len: u64, sent: u64) -> Result<ShmBox<[T]>> {
        let me = crate::sys::pid();
        // The table holds only names checked when they were made or opened,
        // so a name it knows needs no check.
        let mut cached = cache::lookup(name);
        loop {
            let from_cache = cached.is_some();
            let map = match cached.take() {
                Some(map) => map,
                None => {
                    check_name(name)?;
                    open(name)?
                }
            };
            let Some(held) = claim(map.word(), sent, me) else {
                if from_cache && map.word().load(Ordering::Acquire) == RETIRED {
                    // A stale mapping: the segment was retired since. The
                    // name, if it exists, is another segment now.
                    cache::forget(name);
                    continue;
                }
                return Err(ShmError::BoxGone { name: name.to_owned() });
            };
            if !from_cache && map.pooled {
                cache::insert_foreign(&map);
            }
            // Claimed: ours now, freed by Drop if it turns out unusable.
            let mut b = ShmBox { map, data: NonNull::dangling(), len: 0, state: AtomicU64::new(held), _t: PhantomData };
            let (found, data) = view::attach::<T>(&b.map.seg, view_offset::<T>(), "ShmBox")?;
            Attach::new(&b.map.seg, view_offset::<T>(), "ShmBox")
                .layout(found as u64 == len, || format!("{found} elements, the token says {len}"))?;
            b.data = data.cast();
            b.len = found;
            return Ok(b);
        }
    }
}

/// Maps the box segment `name` (not yet claimed) and checks its header.
fn open(name: &str) -> Result<Arc<Mapped>> {
    let seg = Segment::open(name).map_err(|e| match e {
        ShmError::NotFound { name } => ShmError::BoxGone { name },
        e => e,
    })?;
    let at = Attach::new(&seg, 0, "ShmBox");
    let header = at.range(size_of::<BoxHeader>(), align_of::<BoxHeader>())?;
    // SAFETY: the range was checked; magic, version, creator and pooled are
    // plain integers written before the segment's name was sent.
    let (word, version, creator, pooled) = unsafe {
        let words = header.cast::<u32>().as_ptr();
        (
            words.read_volatile(),
            words.add(1).read_volatile(),
            words.add(4).read_volatile(),
            words.add(5).read_volatile(),
        )
    };
    at.identity(magic::SHM_BOX, word, version)?;
    Ok(Arc::new(Mapped { name: name.into(), seg, creator, pooled: pooled != 0 }))
}

impl<T: Pod> Deref for ShmBox<[T]> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        let len = if self.is_sent() { 0 } else { self.len };
        // SAFETY: [1] `data` is aligned for T and `len` elements lie in the
        // mapping (checked when made or received), which lives with `map`;
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
        let held = self.state.load(Ordering::Relaxed);
        // A sent handle, or one copied by fork (the parent holds the box).
        if state::phase(held) != HELD || state::holder(held) != crate::sys::pid() {
            return;
        }
        let word = self.map.word();
        if self.map.pooled {
            state::release(word, held);
        } else if state::retire(word, held) {
            self.map.unlink();
        }
    }
}

impl<T: Pod> fmt::Debug for ShmBox<[T]> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmBox")
            .field("name", &self.name())
            .field("element", &std::any::type_name::<T>())
            .field("len", &self.len)
            .field("sent", &self.is_sent())
            .field("pooled", &self.map.pooled)
            .finish()
    }
}

/// Sets the bound of this process's table of box segments (its pool and its
/// cache of other processes' segments; default [`CacheLimits::DEFAULT`]), and
/// trims the table to it now as far as it can (see the module doc for what
/// can leave). A limit of 0 entries turns recycling off in this process:
/// every box is one-shot.
///
/// ```
/// use mproc_shm::shm_box::{self, CacheLimits};
///
/// shm_box::set_cache_limits(CacheLimits { entries: 8, bytes: 64 << 20 });
/// assert!(shm_box::cache_stats().entries <= 8);
/// shm_box::set_cache_limits(CacheLimits::DEFAULT);
/// ```
pub fn set_cache_limits(limits: CacheLimits) {
    cache::set_limits(limits)
}

/// What this process's table of box segments holds now.
pub fn cache_stats() -> CacheStats {
    cache::stats()
}

/// Empties this process's table of box segments of everything that can
/// leave: unmaps other processes' segments no handle here uses, retires and
/// unlinks this process's FREE ones. Boxes held or in flight are untouched.
/// For a process about to idle, or to end before its process tree does.
pub fn trim() {
    cache::trim()
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
    /// Writes `(name, len, word)` and gives the box away: HELD → SENT (or,
    /// inside [`reclaim_unsent`], takes it back: SENT → HELD). An error for a
    /// handle this process does not hold (a copy made by `fork`).
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let word = self.map.word();
        let mine = self.state.load(Ordering::Relaxed);
        let me = crate::sys::pid();
        if RECLAIMING.with(Cell::get) {
            // Taken back only if nobody claimed this handle's token meanwhile.
            if let Some(held) = claim(word, mine, me) {
                self.state.store(held, Ordering::Relaxed);
            }
            return ().serialize(s);
        }
        let sent = if state::phase(mine) == HELD {
            let not_ours = || {
                S::Error::custom(format!(
                    "ShmBox {} is held by process {}, not by this one ({me}): a handle copied by fork \
                     cannot be sent",
                    self.name(),
                    state::holder(mine)
                ))
            };
            if state::holder(mine) != me {
                return Err(not_ours());
            }
            let sent = state::send(word, mine).ok_or_else(not_ours)?;
            self.state.store(sent, Ordering::Relaxed);
            ANY_SENT.store(true, Ordering::Relaxed);
            sent
        } else {
            // Sent already: the same token again (only one of them is claimed).
            mine
        };
        (self.name(), self.len as u64, sent).serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for ShmBox<[T]> {
    /// Opens the named segment and claims the box (see the module doc). The
    /// error is also kept for [`take_receive_error`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (name, len, sent_at) = <(WireName, u64, u64)>::deserialize(d)?;
        ShmBox::receive(name.as_str(), len, sent_at).map_err(|e| {
            let msg = e.to_string();
            LAST_ERROR.with(|c| c.set(Some(e)));
            D::Error::custom(msg)
        })
    }
}

/// A box's name as a token carries it, read without allocating: every name
/// this module makes is shorter than the inline buffer, and a longer one (not
/// a box's: refused by [`check_name`]) is kept on the heap to be named in the
/// error.
enum WireName {
    Inline { bytes: [u8; 64], len: u8 },
    Heap(String),
}

impl WireName {
    fn as_str(&self) -> &str {
        match self {
            // SAFETY: `bytes[..len]` is a copy of a whole `&str` (see `visit_str`).
            WireName::Inline { bytes, len } => unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) },
            WireName::Heap(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for WireName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WireName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the name of a ShmBox")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<WireName, E> {
                let mut bytes = [0u8; 64];
                Ok(match bytes.get_mut(..v.len()) {
                    Some(head) => {
                        head.copy_from_slice(v.as_bytes());
                        WireName::Inline { bytes, len: v.len() as u8 }
                    }
                    None => WireName::Heap(v.to_owned()),
                })
            }
        }
        d.deserialize_str(Visitor)
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
/// with the resource tracker; whoever retires it unlinks it.
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
    fn a_token_naming_another_segment_is_refused_by_name_at_any_length() {
        let long = format!("{PREFIX}{}", "f".repeat(100));
        for name in ["mproc-queue-1", "mproc-box-../etc", long.as_str()] {
            let wire = postcard::to_allocvec(&(name, 1u64, state::created(1))).unwrap();
            assert!(postcard::from_bytes::<ShmBox<[u8]>>(&wire).is_err(), "{name}");
            match take_receive_error() {
                Some(ShmError::InvalidName { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
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
