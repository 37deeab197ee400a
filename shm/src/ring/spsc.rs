//! `SpscRing`: a lock-free single-producer single-consumer ring of
//! variable-length byte messages in shared memory.
//!
//! The classic bounded SPSC byte ring (Lamport's queue, with the cached far
//! index of rtrb and of the Linux `io_uring` / `perf` ring buffers): two monotonic
//! byte positions, `head` (written only by the consumer) and `tail` (written only
//! by the producer), each on its own cache line. Messages are packed back to back
//! as records `[len: u64][payload, padded to 8 bytes]`. A record never straddles
//! the end of the data area: when it would, the producer writes a [`SKIP`] marker
//! in the remaining bytes and places the record at offset 0, publishing marker and
//! record with one store of `tail`. The consumer therefore always sees a whole,
//! contiguous message, and nothing before the producer's `Release` store of
//! `tail` is visible to it — a producer killed mid-write publishes nothing.
//!
//! Source: L. Lamport, "Specifying concurrent program modules", TOPLAS 1983;
//! the cached-index refinement as in <https://github.com/mgeier/rtrb>.
//!
//! # Roles
//! [`SpscRing`] is the shared handle (clone it freely; it only inspects).
//! [`SpscRing::producer`] and [`SpscRing::consumer`] make the role handles; at
//! most **one producer and one consumer may be in use at a time**, across all
//! processes. Move a role handle into a forked child, or export it for a
//! spawned one ([`Share`]). Breaking the rule garbles messages but never makes
//! the ring read or write out of bounds: every length read from shared memory is
//! checked, and a bad one is [`RingError::Corrupt`].
//!
//! ```
//! use mproc_shm::ring::SpscRing;
//! let ring = SpscRing::new(1024).unwrap();
//! let (mut tx, mut rx) = ring.split();
//! tx.try_push(b"hello").unwrap();
//! assert_eq!(rx.try_pop().unwrap().as_deref(), Some(&b"hello"[..]));
//! assert_eq!(rx.try_pop().unwrap(), None);
//! ```

use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::{Region, RingError, RingToken};
use crate::primitive::{AtomicU64, Ordering};
use crate::sys::magic::{self, Attach};
use crate::{arena, Block, Exports, Result, Segment, Share, ShmError};

/// Bytes of the length word in front of every record.
const REC_HDR: usize = 8;
/// The length word of a skip record: the rest of the data area is padding.
pub const SKIP: u64 = u64::MAX;
/// The smallest data area; smaller requests are rounded up to it.
pub const MIN_CAPACITY: usize = 64;
/// The largest data area.
pub const MAX_CAPACITY: usize = 1 << 32;

/// The ring's header, at the start of its memory; the data area follows it.
#[repr(C)]
pub(crate) struct Header {
    magic: u32,
    version: u32,
    /// Bytes in the data area: a power of two, immutable after creation.
    capacity: u64,
    /// Bytes ever consumed. Written only by the consumer (`Release`, after it has
    /// copied a record out); `head <= tail <= head + capacity`.
    head: CachePadded<AtomicU64>,
    /// Bytes ever produced. Written only by the producer (`Release`, after it has
    /// written a record); `tail - head` bytes of records are readable.
    tail: CachePadded<AtomicU64>,
}
#[cfg(not(loom))]
const _: () = assert!(size_of::<Header>() % 64 == 0 && align_of::<Header>() >= 64);

/// Bytes before the data area.
const DATA_OFFSET: usize = size_of::<Header>();

/// The shared handle of a single-producer single-consumer byte ring.
///
/// Cloning it is cheap (the clones share the mapping). It reports the ring's
/// state and makes the [`Producer`] and [`Consumer`] role handles.
#[derive(Clone)]
pub struct SpscRing {
    region: Arc<Region>,
    hdr: NonNull<Header>,
    data: NonNull<u8>,
    /// Capacity - 1 (capacity is a power of two).
    mask: u64,
}

// SAFETY: the handle points into memory kept alive by `region`, reached only
// through atomics and the role handles' protocol; it has no thread affinity.
unsafe impl Send for SpscRing {}
// SAFETY: `&SpscRing` only loads the header's atomics.
unsafe impl Sync for SpscRing {}

impl std::fmt::Debug for SpscRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpscRing").field("capacity", &self.capacity()).field("len_bytes", &self.len_bytes()).finish()
    }
}

fn round_capacity(capacity: usize) -> Result<usize> {
    if capacity == 0 {
        return Err(ShmError::ZeroSize { what: "SpscRing capacity" });
    }
    if capacity > MAX_CAPACITY {
        return Err(ShmError::TooLarge { what: "SpscRing capacity", size: capacity, limit: MAX_CAPACITY });
    }
    Ok(capacity.max(MIN_CAPACITY).next_power_of_two())
}

/// Record size of a payload of `len` bytes.
#[inline]
fn record(len: usize) -> usize {
    REC_HDR + len.next_multiple_of(8)
}

impl SpscRing {
    /// Creates a ring with a data area of at least `capacity` bytes (rounded up to
    /// a power of two, at least [`MIN_CAPACITY`]) in the shared arena, or in a
    /// memfd segment of its own when large.
    ///
    /// A ring of capacity `C` holds messages of up to `C / 2 - 8` bytes
    /// ([`SpscRing::max_message`]), since a record must fit contiguously
    /// wherever the ring stands when it drains. Zero capacity is
    /// [`ShmError::ZeroSize`].
    pub fn new(capacity: usize) -> Result<SpscRing> {
        let cap = round_capacity(capacity)?;
        let block = arena::alloc(DATA_OFFSET + cap, align_of::<Header>())?;
        let (seg, offset) = (block.segment().clone(), block.offset());
        Self::place(seg, offset, cap, Some(block))
    }

    /// Places a new ring in `seg` at `offset` (which must be aligned to
    /// [`SpscRing::ALIGN`] and leave [`SpscRing::footprint`] bytes), overwriting
    /// whatever was there. Other processes [`attach`](SpscRing::attach) to it.
    pub fn new_in(seg: &Segment, offset: usize, capacity: usize) -> Result<SpscRing> {
        let cap = round_capacity(capacity)?;
        Self::place(seg.clone(), offset, cap, None)
    }

    /// The alignment a ring's offset needs.
    pub const ALIGN: usize = align_of::<Header>();

    /// Bytes a ring of `capacity` takes in a segment, header included (after
    /// rounding `capacity` as [`SpscRing::new`] does).
    pub fn footprint(capacity: usize) -> Result<usize> {
        Ok(DATA_OFFSET + round_capacity(capacity)?)
    }

    fn place(seg: Segment, offset: usize, cap: usize, block: Option<Block>) -> Result<SpscRing> {
        let base = seg.check_range("SpscRing", offset, DATA_OFFSET + cap, Self::ALIGN)?;
        let hdr = base.cast::<Header>();
        // SAFETY: [1] the range was checked to lie in the segment, aligned for
        // Header; [2] placing a ring claims those bytes: the caller of `new_in`
        // promises nothing else uses them (arena blocks are ours alone).
        unsafe {
            hdr.as_ptr().write(Header {
                magic: magic::SPSC_RING.word,
                version: magic::SPSC_RING.version,
                capacity: cap as u64,
                head: CachePadded::new(AtomicU64::new(0)),
                tail: CachePadded::new(AtomicU64::new(0)),
            })
        };
        // SAFETY: DATA_OFFSET + cap bytes were checked above.
        let data = unsafe { base.add(DATA_OFFSET) };
        Ok(SpscRing { region: Arc::new(Region::shared(seg, offset, block)), hdr, data, mask: cap as u64 - 1 })
    }

    /// Attaches to a ring another process placed at `offset` of `seg`, checking
    /// its magic, version and capacity.
    pub fn attach(seg: &Segment, offset: usize) -> Result<SpscRing> {
        let at = Attach::new(seg, offset, "SpscRing");
        let base = at.range(DATA_OFFSET, Self::ALIGN)?;
        let hdr = base.cast::<Header>();
        // SAFETY: the header range is in bounds and aligned; the immutable fields
        // are plain integers, any bit pattern is valid, and they are written once
        // before any handle to the ring exists.
        let (magic, version, cap) = unsafe {
            let h = hdr.as_ptr();
            (
                std::ptr::addr_of!((*h).magic).read_volatile(),
                std::ptr::addr_of!((*h).version).read_volatile(),
                std::ptr::addr_of!((*h).capacity).read_volatile(),
            )
        };
        at.identity(magic::SPSC_RING, magic, version)?;
        at.layout(cap.is_power_of_two() && (MIN_CAPACITY as u64..=MAX_CAPACITY as u64).contains(&cap), || {
            format!("capacity {cap} is not a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}")
        })?;
        at.range(DATA_OFFSET + cap as usize, Self::ALIGN)?;
        // SAFETY: the whole ring was checked to lie in the segment.
        let data = unsafe { base.add(DATA_OFFSET) };
        Ok(SpscRing { region: Arc::new(Region::shared(seg.clone(), offset, None)), hdr, data, mask: cap - 1 })
    }

    /// A ring on the heap for loom models (loom's atomics cannot live in raw memory).
    #[cfg(loom)]
    pub fn new_heap(capacity: usize) -> Result<SpscRing> {
        let cap = round_capacity(capacity)?;
        let mut hdr = Box::new(Header {
            magic: magic::SPSC_RING.word,
            version: magic::SPSC_RING.version,
            capacity: cap as u64,
            head: CachePadded::new(AtomicU64::new(0)),
            tail: CachePadded::new(AtomicU64::new(0)),
        });
        let mut buf = vec![0u64; cap / 8].into_boxed_slice();
        let hdr_ptr = NonNull::from(&mut *hdr);
        let data = NonNull::from(&mut buf[0]).cast::<u8>();
        let shadow = (0..cap / 8).map(|_| loom::cell::UnsafeCell::new(())).collect();
        let region = Region { backing: super::Backing::Heap(Box::new((hdr, buf))), shadow };
        Ok(SpscRing { region: Arc::new(region), hdr: hdr_ptr, data, mask: cap as u64 - 1 })
    }

    fn hdr(&self) -> &Header {
        // SAFETY: the header lives as long as `region`, which we hold; its mutable
        // fields are atomics.
        unsafe { self.hdr.as_ref() }
    }

    /// Bytes in the data area.
    pub fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    /// The largest message this ring accepts: `capacity / 2 - 8`.
    pub fn max_message(&self) -> usize {
        self.capacity() / 2 - REC_HDR
    }

    /// Bytes of records (headers and padding included) waiting to be consumed:
    /// a snapshot, exact only when neither side is active.
    pub fn len_bytes(&self) -> usize {
        let head = self.hdr().head.load(Ordering::Acquire);
        let tail = self.hdr().tail.load(Ordering::Acquire);
        tail.saturating_sub(head) as usize
    }

    /// True when no message is waiting (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len_bytes() == 0
    }

    /// [`is_empty`](Self::is_empty) for a consumer that spins on it: while the
    /// ring is empty it also prefetches the two cache lines where the next
    /// record will start (a 64-byte message and its 8-byte header span two).
    /// The producer's write of that record takes the lines away; the next look
    /// fetches them again, alongside `tail`, so that once `tail` moves the
    /// record is (mostly) already here instead of being a second transfer after
    /// it. A prefetch reads nothing, so it races with nothing.
    #[inline]
    pub fn is_empty_prefetch_next(&self) -> bool {
        let head = self.hdr().head.load(Ordering::Acquire);
        let tail = self.hdr().tail.load(Ordering::Acquire);
        if tail > head {
            return false;
        }
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        // SAFETY: `_mm_prefetch` is a hint that never faults; `at` lies inside
        // the data area (`head & mask < capacity`), and the second address is
        // made with `wrapping_add`, which needs no bounds.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let at = self.ptr((head & self.mask) as usize).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T0>(at);
            // Past the data area only for a record at its very end: still a hint.
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(64));
        }
        true
    }

    /// The segment and offset of the ring's header.
    pub fn location(&self) -> Option<(&Segment, usize)> {
        self.region.location()
    }

    /// Makes the producer handle. At most one producer may be in use at a time.
    pub fn producer(&self) -> Producer {
        let tail = self.hdr().tail.load(Ordering::Acquire);
        let head_cache = self.hdr().head.load(Ordering::Acquire);
        Producer { ring: self.clone(), tail, head_cache }
    }

    /// Makes the consumer handle. At most one consumer may be in use at a time.
    pub fn consumer(&self) -> Consumer {
        let head = self.hdr().head.load(Ordering::Acquire);
        let tail_cache = self.hdr().tail.load(Ordering::Acquire);
        Consumer { ring: self.clone(), head, tail_cache }
    }

    /// Both role handles at once.
    pub fn split(&self) -> (Producer, Consumer) {
        (self.producer(), self.consumer())
    }

    fn token(&self, exports: &mut Exports) -> Result<RingToken> {
        let (seg, offset) = self.location().ok_or(ShmError::BadToken {
            what: "SpscRing",
            detail: "a heap ring (loom model) cannot be exported".into(),
        })?;
        Ok(RingToken { seg: seg.export(exports)?, offset: offset as u64 })
    }

    fn from_token(token: RingToken) -> Result<SpscRing> {
        SpscRing::attach(&Segment::import(token.seg)?, token.offset as usize)
    }

    /// Pointer to data byte `index` (`index < capacity`).
    #[inline]
    fn ptr(&self, index: usize) -> *mut u8 {
        debug_assert!(index <= self.capacity());
        // SAFETY: index <= capacity keeps the pointer inside (or one past) the data area.
        unsafe { self.data.as_ptr().add(index) }
    }

    /// Reads the length word at data offset `index` (8-aligned, < capacity).
    #[inline]
    fn read_word(&self, index: usize) -> u64 {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity());
        self.region.shadow_read(index / 8..index / 8 + 1);
        // SAFETY: in bounds and 8-aligned (the data area is 64-aligned); the word
        // lies in the published part of the ring, which the producer no longer writes.
        unsafe { self.ptr(index).cast::<u64>().read() }
    }

    /// Writes the length word at data offset `index` (8-aligned, < capacity).
    #[inline]
    fn write_word(&self, index: usize, word: u64) {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity());
        self.region.shadow_write(index / 8..index / 8 + 1);
        // SAFETY: in bounds and aligned; the word lies in the free part of the ring,
        // which only the producer touches.
        unsafe { self.ptr(index).cast::<u64>().write(word) }
    }
}

impl Share for SpscRing {
    type Token = RingToken;
    fn export(&self, exports: &mut Exports) -> Result<RingToken> {
        self.token(exports)
    }
    fn import(token: RingToken) -> Result<SpscRing> {
        SpscRing::from_token(token)
    }
}

/// The producing end of an [`SpscRing`].
pub struct Producer {
    ring: SpscRing,
    /// Our own copy of `tail`: authoritative, since only we write it.
    tail: u64,
    /// A copy of `head`, possibly stale: `head_cache <= head <= tail`. Stale only
    /// makes the ring look fuller than it is; it is refreshed when a push would
    /// not fit.
    head_cache: u64,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("ring", &self.ring).field("tail", &self.tail).finish()
    }
}

impl Producer {
    /// The ring this producer writes.
    pub fn ring(&self) -> &SpscRing {
        &self.ring
    }

    /// Copies `msg` into the ring; [`RingError::Full`] if it does not fit now,
    /// [`RingError::TooLarge`] if it never will.
    #[inline]
    pub fn try_push(&mut self, msg: &[u8]) -> Result<(), RingError> {
        let mut grant = self.reserve(msg.len())?;
        grant.copy_from_slice(msg);
        grant.commit();
        Ok(())
    }

    /// Reserves room for a message of exactly `len` bytes and lends it out for
    /// writing in place. Nothing is visible to the consumer until
    /// [`WriteGrant::commit`]; dropping the grant abandons it.
    ///
    /// ```
    /// use mproc_shm::ring::SpscRing;
    /// let (mut tx, mut rx) = SpscRing::new(256).unwrap().split();
    /// let mut grant = tx.reserve(3).unwrap();
    /// grant.copy_from_slice(b"abc");
    /// grant.commit();
    /// let msg = rx.peek().unwrap().unwrap();
    /// assert_eq!(&*msg, b"abc");
    /// msg.release();
    /// assert!(rx.ring().is_empty());
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_>, RingError> {
        let ring = &self.ring;
        let max = ring.max_message();
        if len > max {
            return Err(RingError::TooLarge { len, max });
        }
        let cap = ring.capacity() as u64;
        let rec = record(len) as u64;
        let index = (self.tail & ring.mask) as usize;
        let to_end = cap - index as u64;
        let need = if rec <= to_end { rec } else { to_end + rec };
        if self.tail + need - self.head_cache > cap {
            self.head_cache = ring.hdr().head.load(Ordering::Acquire);
            debug_assert!(self.head_cache <= self.tail && self.tail - self.head_cache <= cap);
            let free = cap - (self.tail - self.head_cache);
            if need > free {
                return Err(RingError::Full { len, free: free as usize });
            }
        }
        let start = if rec <= to_end {
            index
        } else {
            ring.write_word(index, SKIP);
            0
        };
        ring.write_word(start, len as u64);
        Ok(WriteGrant { producer: self, start: start + REC_HDR, len, advance: need })
    }
}

impl Share for Producer {
    type Token = RingToken;
    fn export(&self, exports: &mut Exports) -> Result<RingToken> {
        self.ring.token(exports)
    }
    /// Attaches and makes the producer; the exporter must no longer use its own.
    fn import(token: RingToken) -> Result<Producer> {
        Ok(SpscRing::from_token(token)?.producer())
    }
}

/// Room for one message, lent by [`Producer::reserve`]. Write it through
/// `DerefMut<Target = [u8]>`, then [`commit`](WriteGrant::commit).
pub struct WriteGrant<'a> {
    producer: &'a mut Producer,
    /// Data offset of the payload.
    start: usize,
    len: usize,
    /// How far `tail` moves on commit (skip padding + record).
    advance: u64,
}

impl WriteGrant<'_> {
    /// Publishes the message to the consumer.
    #[inline]
    pub fn commit(self) {
        let p = self.producer;
        p.tail += self.advance;
        p.ring.hdr().tail.store(p.tail, Ordering::Release);
    }
}

impl Deref for WriteGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ring = &self.producer.ring;
        ring.region.shadow_read(self.start / 8..(self.start + self.len).div_ceil(8));
        // SAFETY: [1] start + len <= capacity (the record was placed to fit);
        // [2] the bytes lie in the free part of the ring, which only this
        // producer touches until commit.
        unsafe { std::slice::from_raw_parts(ring.ptr(self.start), self.len) }
    }
}

impl DerefMut for WriteGrant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let ring = &self.producer.ring;
        ring.region.shadow_write(self.start / 8..(self.start + self.len).div_ceil(8));
        // SAFETY: as for Deref; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(ring.ptr(self.start), self.len) }
    }
}

/// The consuming end of an [`SpscRing`].
pub struct Consumer {
    ring: SpscRing,
    /// Our own copy of `head`: authoritative, since only we write it.
    head: u64,
    /// A copy of `tail`, possibly stale: `head <= tail_cache <= tail`. Stale only
    /// makes the ring look emptier than it is; it is refreshed when it looks empty.
    tail_cache: u64,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("ring", &self.ring).field("head", &self.head).finish()
    }
}

impl Consumer {
    /// The ring this consumer reads.
    pub fn ring(&self) -> &SpscRing {
        &self.ring
    }

    /// Takes the next message out as a new `Vec`; `Ok(None)` when empty.
    #[inline]
    pub fn try_pop(&mut self) -> Result<Option<Vec<u8>>, RingError> {
        Ok(self.peek()?.map(|g| {
            let v = g.to_vec();
            g.release();
            v
        }))
    }

    /// Takes the next message into `buf` (replacing its contents, reusing its
    /// allocation); `Ok(false)` when empty.
    #[inline]
    pub fn try_pop_into(&mut self, buf: &mut Vec<u8>) -> Result<bool, RingError> {
        match self.peek()? {
            Some(g) => {
                buf.clear();
                buf.extend_from_slice(&g);
                g.release();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Lends out the next message in place, `Ok(None)` when empty. It stays in
    /// the ring until [`ReadGrant::release`]; dropping the grant keeps it there.
    pub fn peek(&mut self) -> Result<Option<ReadGrant<'_>>, RingError> {
        let ring = &self.ring;
        if self.head == self.tail_cache {
            self.tail_cache = ring.hdr().tail.load(Ordering::Acquire);
            if self.head == self.tail_cache {
                return Ok(None);
            }
        }
        let cap = ring.capacity() as u64;
        let avail = self.tail_cache.wrapping_sub(self.head);
        let corrupt = |detail: String| RingError::Corrupt { position: self.head, detail };
        if avail > cap || avail % 8 != 0 {
            return Err(corrupt(format!(
                "{avail} bytes published (head {}, tail {}), expected a multiple of 8 up to {cap}",
                self.head, self.tail_cache
            )));
        }
        let mut index = (self.head & ring.mask) as usize;
        let mut skipped = 0u64;
        let mut word = ring.read_word(index);
        if word == SKIP {
            skipped = cap - index as u64;
            index = 0;
            if skipped + REC_HDR as u64 > avail {
                return Err(corrupt(format!("skip of {skipped} bytes but only {avail} bytes published")));
            }
            word = ring.read_word(0);
        }
        let max = ring.max_message() as u64;
        if word > max {
            return Err(corrupt(format!("length word {word:#x}, expected at most {max}")));
        }
        let len = word as usize;
        if index + record(len) > cap as usize {
            return Err(corrupt(format!("record of {len} bytes at {index} runs past the end ({cap})")));
        }
        let advance = skipped + record(len) as u64;
        if advance > avail {
            return Err(corrupt(format!("record of {len} bytes but only {avail} bytes published")));
        }
        Ok(Some(ReadGrant { consumer: self, start: index + REC_HDR, len, advance }))
    }
}

impl Share for Consumer {
    type Token = RingToken;
    fn export(&self, exports: &mut Exports) -> Result<RingToken> {
        self.ring.token(exports)
    }
    /// Attaches and makes the consumer; the exporter must no longer use its own.
    fn import(token: RingToken) -> Result<Consumer> {
        Ok(SpscRing::from_token(token)?.consumer())
    }
}

/// The next message, lent in place by [`Consumer::peek`]; read it through
/// `Deref<Target = [u8]>`, then [`release`](ReadGrant::release) it.
pub struct ReadGrant<'a> {
    consumer: &'a mut Consumer,
    start: usize,
    len: usize,
    advance: u64,
}

impl ReadGrant<'_> {
    /// Removes the message from the ring, giving its room back to the producer.
    #[inline]
    pub fn release(self) {
        let c = self.consumer;
        c.head += self.advance;
        c.ring.hdr().head.store(c.head, Ordering::Release);
    }
}

impl Deref for ReadGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ring = &self.consumer.ring;
        ring.region.shadow_read(self.start / 8..(self.start + self.len).div_ceil(8));
        // SAFETY: [1] start + len <= capacity, checked in `peek` against the
        // published bytes; [2] the producer does not write published bytes until
        // we move `head` past them in `release`, which consumes this grant.
        unsafe { std::slice::from_raw_parts(ring.ptr(self.start), self.len) }
    }
}
