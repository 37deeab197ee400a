//! `MpmcRing`: a bounded, lock-free, crash-safe ring of variable-length
//! messages for many producers and many consumers in many processes.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue: an array of slots, each
//! with a sequence word, and two tickets, `tail` (next position to produce) and
//! `head` (next position to consume); position `p` lives in slot `p % slots`, on
//! lap `p / slots`. Source:
//! <https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>.
//!
//! One change makes it crash-safe across processes. Vyukov claims a position with
//! a CAS on the ticket and then owns the slot implicitly; a process killed after
//! that CAS would leave the slot claimed forever and wedge every consumer behind
//! it. Here the claim is a CAS on the **slot's state word**, which records the
//! claimer's pid in the same atomic step; the tickets are then advanced by
//! whoever sees the claim (the claimer, or a helper). So the owner of every
//! claimed slot is known, and a survivor that finds the slot held for long
//! checks whether that pid still runs (`kill(pid, 0)` and
//! `/proc/<pid>/stat`, only after spinning):
//!
//! - a producer killed mid-write: the next consumer of that position **skips**
//!   the slot (marks it consumed); nothing torn is ever delivered, since a
//!   message becomes readable only when its writer publishes `FULL`;
//! - a consumer killed mid-copy: the next producer of that slot **reclaims** it
//!   (the killed consumer's in-flight message is lost, nothing else).
//!
//! Limits: a pid reused by a new process before the slot is reclaimed reads as
//! alive, delaying reclamation until that process exits; all users must share a
//! pid namespace. Laps are 32 bits, so a thread would have to stall for 2^31 laps
//! of one slot to be fooled by a wrapped lap (ABA).
//!
//! ```
//! use mproc_shm::ring::MpmcRing;
//! let ring = MpmcRing::new(8, 100).unwrap();
//! ring.try_push(b"one").unwrap();
//! ring.try_push(b"two").unwrap();
//! assert_eq!(ring.len(), 2);
//! assert_eq!(ring.try_pop().unwrap().as_deref(), Some(&b"one"[..]));
//! let mut buf = Vec::new();
//! assert!(ring.try_pop_into(&mut buf).unwrap());
//! assert_eq!(buf, b"two");
//! assert!(ring.is_empty());
//! ```

use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::{current_pid, process_alive, Region, RingError, RingToken};
use crate::primitive::{spin_loop, AtomicU64, Ordering};
use crate::{arena, Block, Exports, Result, Segment, Share, ShmError, CACHE_LINE};

const MAGIC: u32 = u32::from_le_bytes(*b"MPRM");
const VERSION: u32 = 1;

/// The most slots a ring may have.
pub const MAX_SLOTS: usize = 1 << 24;
/// The largest `max_message`.
pub const MAX_MESSAGE: usize = 1 << 30;
/// The largest ring, in bytes.
pub const MAX_BYTES: usize = 1 << 36;

// The slot state word (u64):
//
// | bits  | field | meaning                                                   |
// |-------|-------|-----------------------------------------------------------|
// | 63-32 | lap   | the lap (position / slots, mod 2^32) the state refers to   |
// | 31-30 | state | EMPTY, WRITING, FULL or READING (below)                    |
// | 29-0  | pid   | the claimer, for WRITING and READING; 0 otherwise          |
//
// | state        | means                                          | next                  |
// |--------------|------------------------------------------------|-----------------------|
// | EMPTY(L)     | free for the producer of lap L                 | WRITING(L, pid)       |
// | WRITING(L,p) | producer p is copying the lap-L message in     | FULL(L); EMPTY(L+1) if p died (skip) |
// | FULL(L)      | the lap-L message is complete and readable     | READING(L, pid)       |
// | READING(L,p) | consumer p is copying the lap-L message out    | EMPTY(L+1); the same if p died (reclaim) |
//
// Zeroed memory is EMPTY(0) in every slot: an empty ring. A producer whose
// in-place writer fails publishes FULL(L) with the length word SKIPPED; the
// consumer that claims it frees the slot and moves on to the next position.
const LAP_SHIFT: u32 = 32;
const STATE_SHIFT: u32 = 30;
const STATE_MASK: u64 = 0b11 << STATE_SHIFT;
const PID_MASK: u64 = (1 << STATE_SHIFT) - 1;
/// Free for the producer of the slot's lap.
const EMPTY: u64 = 0;
/// A producer is writing the message.
const WRITING: u64 = 1;
/// The message is complete.
const FULL: u64 = 2;
/// A consumer is reading the message.
const READING: u64 = 3;

#[inline]
fn encode(lap: u32, state: u64, pid: u32) -> u64 {
    debug_assert!(state <= 3 && pid as u64 <= PID_MASK);
    (lap as u64) << LAP_SHIFT | state << STATE_SHIFT | (pid as u64 & PID_MASK)
}

#[inline]
fn decode(word: u64) -> (u32, u64, u32) {
    ((word >> LAP_SHIFT) as u32, (word & STATE_MASK) >> STATE_SHIFT, (word & PID_MASK) as u32)
}

/// Spins on a held slot before asking whether its holder still runs.
const SPIN_LIMIT: u32 = if cfg!(loom) { 1 } else { 1 << 10 };

/// The ring's header, at the start of its memory; the slots follow it.
#[repr(C)]
pub(crate) struct Header {
    magic: u32,
    version: u32,
    /// Number of slots: a power of two.
    slots: u32,
    /// Largest payload of a slot.
    max_message: u32,
    /// Bytes from one slot to the next: a multiple of 64.
    stride: u64,
    /// Next position to produce. A hint advanced by whoever sees its slot claimed:
    /// `head <= tail <= head + slots` up to helpers that lag.
    tail: CachePadded<AtomicU64>,
    /// Next position to consume; advanced like `tail`.
    head: CachePadded<AtomicU64>,
}
#[cfg(not(loom))]
const _: () = assert!(size_of::<Header>() % 64 == 0 && align_of::<Header>() >= 64);

/// Bytes before the first slot.
const DATA_OFFSET: usize = size_of::<Header>();
/// Bytes in front of a slot's payload: the state word and the length.
const SLOT_HDR: usize = 16;
/// The length word of a position whose producer gave it up (its writer failed):
/// consumers pass over it.
const SKIPPED: u64 = u64::MAX;
/// Set in a slot's length word when the writer flagged its message (see
/// [`MpmcRing::try_push_at`]); lengths stay below 2^30, so the bit is free.
const FLAGGED: u64 = 1 << 32;

/// A bounded multi-producer multi-consumer ring of byte messages in shared memory.
///
/// Every method takes `&self`: clone the handle (cheap), share it between
/// threads, move it into forked children or [export](Share) it to spawned ones.
#[derive(Clone)]
pub struct MpmcRing {
    region: Arc<Region>,
    hdr: NonNull<Header>,
    /// The first slot.
    data: NonNull<u8>,
    mask: u64,
    shift: u32,
    stride: usize,
    max_message: usize,
    #[cfg(loom)]
    states: NonNull<AtomicU64>,
}

// SAFETY: the handle points into memory kept alive by `region`; slots are
// reached only under the state-word protocol, the header only through atomics.
unsafe impl Send for MpmcRing {}
// SAFETY: as for Send: every method is safe to call concurrently (lock-free).
unsafe impl Sync for MpmcRing {}

impl std::fmt::Debug for MpmcRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcRing")
            .field("slots", &self.capacity())
            .field("max_message", &self.max_message)
            .field("len", &self.len())
            .finish()
    }
}

/// Checks and rounds the shape: (slots as a power of two, stride).
fn shape(slots: usize, max_message: usize) -> Result<(usize, usize)> {
    if slots == 0 {
        return Err(ShmError::ZeroSize { what: "MpmcRing slots" });
    }
    if max_message == 0 {
        return Err(ShmError::ZeroSize { what: "MpmcRing max_message" });
    }
    if slots > MAX_SLOTS {
        return Err(ShmError::TooLarge { what: "MpmcRing slots", size: slots, limit: MAX_SLOTS });
    }
    if max_message > MAX_MESSAGE {
        return Err(ShmError::TooLarge { what: "MpmcRing max_message", size: max_message, limit: MAX_MESSAGE });
    }
    let slots = slots.next_power_of_two();
    let stride = (SLOT_HDR + max_message).next_multiple_of(CACHE_LINE);
    let bytes = slots * stride;
    if bytes > MAX_BYTES {
        return Err(ShmError::TooLarge { what: "MpmcRing (slots x slot size)", size: bytes, limit: MAX_BYTES });
    }
    Ok((slots, stride))
}

impl MpmcRing {
    /// Creates a ring of at least `slots` slots (rounded up to a power of two),
    /// each holding a message of up to `max_message` bytes, in the shared arena
    /// (or a memfd segment of its own when large). Zero slots or a zero
    /// `max_message` is [`ShmError::ZeroSize`].
    pub fn new(slots: usize, max_message: usize) -> Result<MpmcRing> {
        let (n, stride) = shape(slots, max_message)?;
        let block = arena::alloc(DATA_OFFSET + n * stride, Self::ALIGN)?;
        let (seg, offset) = (block.segment().clone(), block.offset());
        Self::place(seg, offset, n, stride, max_message, Some(block))
    }

    /// Places a new ring in `seg` at `offset` (aligned to [`MpmcRing::ALIGN`],
    /// with [`MpmcRing::footprint`] bytes), overwriting whatever was there.
    pub fn new_in(seg: &Segment, offset: usize, slots: usize, max_message: usize) -> Result<MpmcRing> {
        let (n, stride) = shape(slots, max_message)?;
        Self::place(seg.clone(), offset, n, stride, max_message, None)
    }

    /// Places a new ring in `seg` at `offset` like [`MpmcRing::new_in`], but
    /// without clearing the slots: their bytes must be zero already (a fresh
    /// memfd), so creating the ring touches only its header's page and the
    /// slots cost resident memory only once used. Stale nonzero bytes there
    /// would read as a damaged ring ([`RingError::Corrupt`]), never as memory
    /// out of bounds.
    pub fn new_in_fresh(seg: &Segment, offset: usize, slots: usize, max_message: usize) -> Result<MpmcRing> {
        let (n, stride) = shape(slots, max_message)?;
        Self::place_with(seg.clone(), offset, n, stride, max_message, None, false)
    }

    /// The alignment a ring's offset needs.
    pub const ALIGN: usize = align_of::<Header>();

    /// Bytes a ring takes in a segment, header included.
    pub fn footprint(slots: usize, max_message: usize) -> Result<usize> {
        let (n, stride) = shape(slots, max_message)?;
        Ok(DATA_OFFSET + n * stride)
    }

    fn place(
        seg: Segment,
        offset: usize,
        n: usize,
        stride: usize,
        max_message: usize,
        block: Option<Block>,
    ) -> Result<MpmcRing> {
        Self::place_with(seg, offset, n, stride, max_message, block, true)
    }

    fn place_with(
        seg: Segment,
        offset: usize,
        n: usize,
        stride: usize,
        max_message: usize,
        block: Option<Block>,
        clear: bool,
    ) -> Result<MpmcRing> {
        let base = seg.check_range("MpmcRing", offset, DATA_OFFSET + n * stride, Self::ALIGN)?;
        // SAFETY: [1] the range was checked to lie in the segment, aligned for the
        // header; [2] placing a ring claims those bytes (see `new_in`); [3] zeroed
        // slots are EMPTY(0) (cleared here, or zero already: `new_in_fresh`), and
        // the header is written before any handle exists.
        unsafe {
            if clear {
                base.as_ptr().add(DATA_OFFSET).write_bytes(0, n * stride);
            }
            base.cast::<Header>().as_ptr().write(Header {
                magic: MAGIC,
                version: VERSION,
                slots: n as u32,
                max_message: max_message as u32,
                stride: stride as u64,
                tail: CachePadded::new(AtomicU64::new(0)),
                head: CachePadded::new(AtomicU64::new(0)),
            });
        }
        Ok(Self::from_parts(Region::shared(seg, offset, block), base, n, stride, max_message))
    }

    fn from_parts(region: Region, base: NonNull<u8>, n: usize, stride: usize, max_message: usize) -> MpmcRing {
        MpmcRing {
            region: Arc::new(region),
            hdr: base.cast(),
            // SAFETY: the caller checked DATA_OFFSET + n * stride bytes at `base`.
            data: unsafe { base.add(DATA_OFFSET) },
            mask: n as u64 - 1,
            shift: n.trailing_zeros(),
            stride,
            max_message,
            #[cfg(loom)]
            states: NonNull::dangling(),
        }
    }

    /// Attaches to a ring another process placed at `offset` of `seg`, checking
    /// its magic, version and shape.
    pub fn attach(seg: &Segment, offset: usize) -> Result<MpmcRing> {
        let base = seg.check_range("MpmcRing", offset, DATA_OFFSET, Self::ALIGN)?;
        let mismatch =
            |detail: String| ShmError::LayoutMismatch { what: "MpmcRing", offset, segment: seg.to_string(), detail };
        let h = base.cast::<Header>().as_ptr();
        // SAFETY: the header range is in bounds and aligned; these fields are plain
        // integers (any bit pattern is valid), written once before any handle exists.
        let (magic, version, slots, max_message, stride) = unsafe {
            (
                std::ptr::addr_of!((*h).magic).read_volatile(),
                std::ptr::addr_of!((*h).version).read_volatile(),
                std::ptr::addr_of!((*h).slots).read_volatile() as usize,
                std::ptr::addr_of!((*h).max_message).read_volatile() as usize,
                std::ptr::addr_of!((*h).stride).read_volatile() as usize,
            )
        };
        if magic != MAGIC {
            return Err(mismatch(format!("magic {magic:#010x}, expected {MAGIC:#010x}: not an MpmcRing")));
        }
        if version != VERSION {
            return Err(mismatch(format!("version {version}, expected {VERSION}")));
        }
        match shape(slots, max_message) {
            Ok((n, s)) if n == slots && s == stride => {}
            _ => {
                return Err(mismatch(format!(
                    "{slots} slots of stride {stride} for messages of {max_message} bytes is not a valid shape"
                )))
            }
        }
        seg.check_range("MpmcRing", offset, DATA_OFFSET + slots * stride, Self::ALIGN)?;
        Ok(Self::from_parts(Region::shared(seg.clone(), offset, None), base, slots, stride, max_message))
    }

    /// A ring on the heap for loom models (loom's atomics cannot live in raw memory).
    #[cfg(loom)]
    pub fn new_heap(slots: usize, max_message: usize) -> Result<MpmcRing> {
        let (n, stride) = shape(slots, max_message)?;
        // The header's atomics and the state words are loom objects; the slots'
        // bytes (whose state words go unused) are a plain buffer.
        let mut hdr = Box::new(Header {
            magic: MAGIC,
            version: VERSION,
            slots: n as u32,
            max_message: max_message as u32,
            stride: stride as u64,
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
        });
        let mut states: Box<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
        let mut buf = vec![0u64; n * stride / 8].into_boxed_slice();
        let hdr_ptr = NonNull::from(&mut *hdr);
        let states_ptr = NonNull::from(&mut states[0]);
        let data = NonNull::from(&mut buf[0]).cast::<u8>();
        let shadow = (0..n).map(|_| loom::cell::UnsafeCell::new(())).collect();
        let region = Region { backing: super::Backing::Heap(Box::new((hdr, states, buf))), shadow };
        Ok(MpmcRing {
            region: Arc::new(region),
            hdr: hdr_ptr,
            data,
            mask: n as u64 - 1,
            shift: n.trailing_zeros(),
            stride,
            max_message,
            states: states_ptr,
        })
    }

    fn hdr(&self) -> &Header {
        // SAFETY: the header lives as long as `region`; its mutable fields are atomics.
        unsafe { self.hdr.as_ref() }
    }

    /// The number of slots: how many messages the ring holds.
    pub fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    /// The largest message a slot holds.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Messages produced and not yet consumed (claimed slots included): a cheap
    /// snapshot for deciding whether to wait.
    pub fn len(&self) -> usize {
        let head = self.hdr().head.load(Ordering::Acquire);
        let tail = self.hdr().tail.load(Ordering::Acquire);
        (tail.saturating_sub(head) as usize).min(self.capacity())
    }

    /// True when no message is waiting (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment and offset of the ring's header.
    pub fn location(&self) -> Option<(&Segment, usize)> {
        self.region.location()
    }

    #[inline]
    #[cfg(not(loom))]
    fn state(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index <= self.mask as usize);
        // SAFETY: [1] slot `index` lies inside the ring (index < slots); [2] its
        // first 8 bytes are the state word, 64-aligned, only ever used atomically.
        unsafe { &*self.data.as_ptr().add(index * self.stride).cast::<AtomicU64>() }
    }

    #[inline]
    #[cfg(loom)]
    fn state(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index <= self.mask as usize);
        // SAFETY: `states` has `capacity` entries kept alive by `region`.
        unsafe { &*self.states.as_ptr().add(index) }
    }

    /// Slot `index`'s state word, for tests that forge a dead claimer's state
    /// (see the table at the top of `mpmc.rs`). Not part of the API.
    #[doc(hidden)]
    pub fn slot_state_for_tests(&self, index: usize) -> &AtomicU64 {
        self.state(index & self.mask as usize)
    }

    /// The slot's length word and payload.
    #[inline]
    fn slot(&self, index: usize) -> (*mut u64, *mut u8) {
        debug_assert!(index <= self.mask as usize);
        // SAFETY: slot `index` lies inside the ring; the length word follows the
        // state word, the payload follows both.
        unsafe {
            let s = self.data.as_ptr().add(index * self.stride);
            (s.add(8).cast::<u64>(), s.add(SLOT_HDR))
        }
    }

    #[inline]
    fn locate(&self, pos: u64) -> (usize, u32) {
        ((pos & self.mask) as usize, (pos >> self.shift) as u32)
    }

    /// Copies `msg` into a free slot. [`RingError::Full`] when every slot is taken
    /// now, [`RingError::TooLarge`] when `msg` exceeds [`MpmcRing::max_message`].
    #[inline]
    pub fn try_push(&self, msg: &[u8]) -> Result<(), RingError> {
        if msg.len() > self.max_message {
            return Err(RingError::TooLarge { len: msg.len(), max: self.max_message });
        }
        let copied = self.try_push_with(msg.len(), |payload| {
            payload[..msg.len()].copy_from_slice(msg);
            Ok::<usize, std::convert::Infallible>(msg.len())
        })?;
        match copied {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }

    /// Writes a message straight into a free slot, without a staging copy:
    /// `write` gets the slot's whole payload ([`MpmcRing::max_message`] bytes,
    /// holding stale data) and returns the length of the message it wrote there.
    ///
    /// `len_hint` is only for the [`RingError::Full`] report (the length of the
    /// message about to be written, if known). `write` runs only once a slot is
    /// claimed, so it never runs when the ring is full. If `write` fails or
    /// panics, or returns a length over `max_message`, nothing is delivered: the
    /// position is given up, keeping its place (and counting in
    /// [`len`](MpmcRing::len)) until a consumer passes over it. A failure comes
    /// back as the inner `Err`, an impossible length as [`RingError::TooLarge`].
    ///
    /// While `write` runs, consumers wait for this slot: keep it short.
    #[inline]
    pub fn try_push_with<E>(
        &self,
        len_hint: usize,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Result<(), E>, RingError> {
        self.try_push_at(len_hint, |_, slot| write(slot).map(|len| (len, false)))
    }

    /// [`try_push_with`](MpmcRing::try_push_with), telling `write` the
    /// message's position (its ticket: positions count up from 0 and are never
    /// reused) and letting it flag the message with one bit that
    /// [`try_pop_at`](MpmcRing::try_pop_at) hands to the reader. `write`
    /// returns `(length, flag)`. The queue flags a slot that holds a reference
    /// to a block instead of the item, and records the position in the block so
    /// that [`position_done`](MpmcRing::position_done) can tell when the block
    /// is no longer referenced.
    #[inline]
    pub fn try_push_at<E>(
        &self,
        len_hint: usize,
        write: impl FnOnce(u64, &mut [u8]) -> Result<(usize, bool), E>,
    ) -> Result<Result<(), E>, RingError> {
        let tail = &self.hdr().tail;
        loop {
            let pos = tail.load(Ordering::Relaxed);
            let (index, lap) = self.locate(pos);
            let state = self.state(index);
            let word = state.load(Ordering::Acquire);
            let (slap, st, holder) = decode(word);
            let ahead = slap.wrapping_sub(lap) as i32;
            if ahead == 0 && st == EMPTY {
                let me = current_pid();
                if state
                    .compare_exchange_weak(word, encode(lap, WRITING, me), Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                let _ = tail.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
                let (len_ptr, payload) = self.slot(index);
                self.region.shadow_write(index..index + 1);
                // Until published, an unwinding `write` gives the slot up.
                let claim = Claim { ring: self, lap, index, producer: true };
                // The slot is ours: our CAS moved it to WRITING(lap, me), and nobody
                // touches a WRITING slot's bytes but its claimer (a consumer that
                // skips it rewrites only the state word, and only once we are dead).
                // SAFETY: the slot is ours (above); its payload is max_message
                // initialised bytes (zeroed at creation, rewritten only by claimers).
                let slot = unsafe { std::slice::from_raw_parts_mut(payload, self.max_message) };
                let written = write(pos, slot);
                let (len, flagged) = match written {
                    Ok((len, flagged)) if len <= self.max_message => (len, flagged),
                    Ok((len, _)) => return Err(RingError::TooLarge { len, max: self.max_message }),
                    Err(e) => return Ok(Err(e)),
                };
                std::mem::forget(claim);
                let word = len as u64 | if flagged { FLAGGED } else { 0 };
                // SAFETY: the slot is still ours (see above).
                unsafe { len_ptr.write(word) };
                state.store(encode(lap, FULL, 0), Ordering::Release);
                return Ok(Ok(()));
            }
            if ahead >= 0 {
                // Position `pos` is claimed already (or long done): help move the ticket.
                let _ = tail.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
                continue;
            }
            // The slot still holds the previous lap's message.
            if st == READING && self.holder_dead(state, word, holder) {
                // A consumer died mid-copy: its message is lost, the slot is ours to reuse.
                let _ = state.compare_exchange(word, encode(lap, EMPTY, 0), Ordering::Relaxed, Ordering::Relaxed);
                continue;
            }
            if tail.load(Ordering::Relaxed) == pos && state.load(Ordering::Acquire) == word {
                return Err(RingError::Full { len: len_hint, free: self.capacity() - self.len() });
            }
        }
    }

    /// Takes the oldest complete message out as a new `Vec`; `Ok(None)` when none
    /// is ready (the ring is empty, or its oldest message is still being written).
    pub fn try_pop(&self) -> Result<Option<Vec<u8>>, RingError> {
        self.try_pop_with(<[u8]>::to_vec)
    }

    /// Takes the oldest complete message into `buf` (replacing its contents);
    /// `Ok(false)` when none is ready.
    #[inline]
    pub fn try_pop_into(&self, buf: &mut Vec<u8>) -> Result<bool, RingError> {
        let popped = self.try_pop_with(|msg| {
            buf.clear();
            buf.extend_from_slice(msg);
        })?;
        Ok(popped.is_some())
    }

    /// Takes the oldest complete message and hands it to `read` in place, without
    /// a copy; `Ok(None)` when none is ready. The slot is free again once `read`
    /// returns — or unwinds, which consumes the message all the same.
    ///
    /// While `read` runs, producers of this slot's next lap wait: keep it short.
    #[inline]
    pub fn try_pop_with<R>(&self, read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, RingError> {
        self.try_pop_at(|_, _, msg| read(msg))
    }

    /// [`try_pop_with`](MpmcRing::try_pop_with), handing `read` the message's
    /// position and the flag its writer set (see
    /// [`try_push_at`](MpmcRing::try_push_at)) with the bytes.
    #[inline]
    pub fn try_pop_at<R>(&self, read: impl FnOnce(u64, bool, &[u8]) -> R) -> Result<Option<R>, RingError> {
        let head = &self.hdr().head;
        loop {
            let pos = head.load(Ordering::Relaxed);
            let (index, lap) = self.locate(pos);
            let state = self.state(index);
            let word = state.load(Ordering::Acquire);
            let (slap, st, holder) = decode(word);
            let ahead = slap.wrapping_sub(lap) as i32;
            if ahead == 0 && st == FULL {
                let me = current_pid();
                if state
                    .compare_exchange_weak(word, encode(lap, READING, me), Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                let _ = head.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
                let (len_ptr, payload) = self.slot(index);
                self.region.shadow_read(index..index + 1);
                // Frees the slot for the next lap when `read` is done or unwinds.
                let claim = Claim { ring: self, lap, index, producer: false };
                // SAFETY: the slot is ours (READING(lap, me)); its producer finished
                // writing before publishing FULL, which our Acquire CAS observed.
                let word = unsafe { len_ptr.read() };
                if word == SKIPPED {
                    // A producer gave this position up: pass over it.
                    drop(claim);
                    continue;
                }
                let (len, flagged) = (word & !FLAGGED, word & FLAGGED != 0);
                if len > self.max_message as u64 {
                    return Err(RingError::Corrupt {
                        position: pos,
                        detail: format!("length {len} in a slot of {} bytes", self.max_message),
                    });
                }
                // SAFETY: as above; len <= max_message was just checked, and no
                // process writes the slot until `claim` frees it.
                let r = read(pos, flagged, unsafe { std::slice::from_raw_parts(payload, len as usize) });
                drop(claim);
                return Ok(Some(r));
            }
            if (ahead == 0 && st == READING) || ahead > 0 {
                // Claimed by another consumer (or long done): help move the ticket.
                let _ = head.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
                continue;
            }
            if ahead == 0 && st == WRITING {
                if self.holder_dead(state, word, holder) {
                    // The producer died mid-write: skip its slot, nothing was published.
                    if state
                        .compare_exchange(
                            word,
                            encode(lap.wrapping_add(1), EMPTY, 0),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        let _ = head.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
                    }
                    continue;
                }
                if state.load(Ordering::Acquire) != word {
                    continue;
                }
                return Ok(None);
            }
            // EMPTY on our lap, or the previous lap: nothing produced here yet.
            if head.load(Ordering::Relaxed) == pos && state.load(Ordering::Acquire) == word {
                return Ok(None);
            }
        }
    }

    /// Whether position `pos` (a ticket [`try_push_at`](MpmcRing::try_push_at)
    /// or [`try_pop_at`](MpmcRing::try_pop_at) reported) is finished with: its
    /// slot has moved on to a later lap (consumed, skipped or reclaimed), or is
    /// still held for `pos` by a process that no longer runs. False while the
    /// position's message may still be written, waiting or read by a live
    /// process. Slow when the holder must be checked: for recovery paths only.
    #[cold]
    pub fn position_done(&self, pos: u64) -> bool {
        let (index, lap) = self.locate(pos);
        let word = self.state(index).load(Ordering::Acquire);
        let (slap, st, holder) = decode(word);
        match slap.wrapping_sub(lap) as i32 {
            ahead if ahead > 0 => true,
            0 if st == WRITING || st == READING => {
                !process_alive(holder) && self.state(index).load(Ordering::Acquire) == word
            }
            _ => false,
        }
    }

    /// Spins while `state` stays `word`, then asks whether `holder` still runs.
    /// False as soon as the word changes.
    #[cold]
    fn holder_dead(&self, state: &AtomicU64, word: u64, holder: u32) -> bool {
        for _ in 0..SPIN_LIMIT {
            if state.load(Ordering::Relaxed) != word {
                return false;
            }
            spin_loop();
        }
        state.load(Ordering::Acquire) == word && !process_alive(holder)
    }
}

/// A slot this process claimed (WRITING or READING), given back when dropped.
///
/// A consumer's claim frees the slot for its next lap. A producer's claim
/// dropped before its message was published (the writer failed or unwound)
/// publishes a [`SKIPPED`] record instead: the position keeps its place (and
/// counts in `len`) until a consumer passes over it, as for any message.
struct Claim<'a> {
    ring: &'a MpmcRing,
    lap: u32,
    index: usize,
    producer: bool,
}

impl Drop for Claim<'_> {
    #[inline]
    fn drop(&mut self) {
        let state = self.ring.state(self.index);
        debug_assert_eq!(decode(state.load(Ordering::Relaxed)).0, self.lap);
        if self.producer {
            let (len_ptr, _) = self.ring.slot(self.index);
            // SAFETY: the slot is still ours (WRITING(lap, me)).
            unsafe { len_ptr.write(SKIPPED) };
            state.store(encode(self.lap, FULL, 0), Ordering::Release);
        } else {
            state.store(encode(self.lap.wrapping_add(1), EMPTY, 0), Ordering::Release);
        }
    }
}

impl Share for MpmcRing {
    type Token = RingToken;
    fn export(&self, exports: &mut Exports) -> Result<RingToken> {
        let (seg, offset) = self.location().ok_or(ShmError::BadToken {
            what: "MpmcRing",
            detail: "a heap ring (loom model) cannot be exported".into(),
        })?;
        Ok(RingToken { seg: seg.export(exports)?, offset: offset as u64 })
    }
    fn import(token: RingToken) -> Result<MpmcRing> {
        MpmcRing::attach(&Segment::import(token.seg)?, token.offset as usize)
    }
}
