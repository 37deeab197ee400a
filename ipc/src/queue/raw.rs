//! `RawQueue`: the untyped core of every queue — an [`MpmcRing`] of encoded
//! items plus a control block of futex words, both in one piece of shared
//! memory.
//!
//! The ring (Vyukov's bounded MPMC queue made crash-safe, `shm/src/ring/mpmc.rs`)
//! never blocks; this file adds the waiting, on three futex words, each alone
//! on its cache line:
//!
//! | word         | changed by                                  | slept on by           |
//! |--------------|---------------------------------------------|-----------------------|
//! | `not_empty`  | every put (sequence += 1)                   | a get finding no item |
//! | `not_full`   | every get (sequence += 1)                   | a put finding no room |
//! | `unfinished` | put (count += 1), `task_done` (count −= 1)  | `join`                |
//!
//! Each word is `value << 1 | WAITERS`: bit 0 says someone may be asleep on it.
//! The protocol, for a get (a put mirrors it on `not_full`; `join` is the same
//! with "the count is zero" as its condition):
//!
//! ```text
//! getter                                   putter
//! w = not_empty.fetch_or(WAITERS)          ring.push(item)
//! if ring.pop() succeeds: done             old = not_empty.fetch_add(2)
//! futex_wait(not_empty, w | WAITERS,       if old & WAITERS:
//!            at most 25 ms); retry             not_empty.fetch_and(!WAITERS)
//!                                              futex_wake_all(not_empty)
//! ```
//!
//! Both sides announce themselves with a read-modify-write of the **same**
//! word, so the two are ordered: if the putter's `fetch_add` comes first, the
//! getter's `fetch_or` reads from it (acquire), so its pop sees the item; if
//! the getter's comes first, the putter sees `WAITERS` and wakes it — and a
//! getter that reaches `futex_wait` after that finds the word changed and
//! returns at once. No store-load (Dekker) reasoning is involved, so the
//! argument holds under loom's memory model as under the hardware's
//! (`ipc/tests/loom_queue.rs` checks it). The fast path is one uncontended
//! `fetch_add` per put and per get on a line the producer (resp. consumer)
//! keeps in its cache.
//!
//! Sleeps are capped at [`WAIT_CAP`]: a peer killed between its push and its
//! wake, or woken and killed before it took the item, costs the others at most
//! that long, never a hang.
//!
//! `maxsize` is the bound in items. The ring has `maxsize` slots rounded up to a
//! power of two; when that rounding adds slots, a put first checks the ring's
//! length against `maxsize`, so with several producers racing the queue may
//! briefly hold up to one item per racing producer more than `maxsize` (never
//! more than the ring's slots). With a power-of-two `maxsize` (the default) the
//! bound is exact.
//!
//! # Where a 4 KiB item's time goes
//! `payload_f64_4k` and `queue_bytes_tput` (4 KiB items, `maxsize` 64, one
//! producer process, one consumer) run at 0.68–0.85 of the cross-process copy
//! limit (`limit-xcopy`, an SPSC ring of bare `memcpy`s) on the 2-core VM of
//! the benches; the target is 0.8. Measured by alternating 20,000-item rounds
//! of each variant with the limit, 150 rounds, in one process (the harness
//! and the variants are kept off main, on the branch `exp-slot`), the median
//! of the per-round ratios:
//!
//! | variant | vs the limit |
//! | --- | ---: |
//! | `Queue<PodVec<f64>>` as it is | 0.68–0.85 (seven runs over an hour) |
//! | `Queue<Bytes>` | within 5 % of the above |
//! | the [`MpmcRing`] with the queue's postcard encoder and decoder, no `RawQueue` | 0.88–0.91 |
//! | the [`MpmcRing`] alone (its claim CAS and pid protocol, no queue, no serde) | 0.87–0.97 |
//! | the limit with the item 20 bytes into its slot, as the queue places it | 0.93–0.95 |
//!
//! So the ring protocol is not the gap; the layers above it are, about half
//! of it postcard's and half this file's. Tried here and measured no better,
//! each within ±3 % of the queue as it is: the payload
//! on a cache line of its own, away from the slot's state word; waiters spinning
//! on `not_empty` instead of on the slot being written; waiters that never sleep;
//! and — a hack valid for one producer only — no locked instruction at all on
//! either side (+0–6 %). Slots of 4,104 bytes instead of the 16 KiB a 64-slot
//! queue gets by default: −4 to +9 % in four runs, nothing robust (`queue_bytes_tput`
//! already has such slots and sits at the same ratio). What is left is
//! instructions: `callgrind` counts about 250 per put and 320 per get beyond the
//! two copies and the allocation (postcard's sizing pass and encoder, the
//! decode closure and `PodVec`'s checks, the `Result` and `Option` layers), where
//! the limit has none. A copy of 4 KiB across cores costs 150–250 ns here, so
//! those ~60–80 ns a side are the missing fifth.

use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mproc_shm::sys::magic::{self, Attach};
use mproc_shm::sys::Deadline;
use mproc_shm::{Block, Exports, MpmcRing, RingError, Segment, SegmentToken, Share, ShmError};
use mproc_sync::primitive::{self as sys, AtomicU32, Ordering::SeqCst};
use serde::{Deserialize, Serialize};

use super::blocks::{self, os_error, Blocks, Geometry, Held, StoreHeader};
use super::QueueError;

/// The largest queue file (sparse: only what holds items is memory; a memfd
/// may be up to 8 EiB): 64 TiB, what `maxsize` 4096 and a 1 GiB cap need.
const MAX_FILE: usize = 1 << 46;

/// The largest item cap a queue takes: 1 GiB, as a `Connection::pair` frame.
pub const MAX_ITEM_CAP: usize = 1 << 30;

/// The longest a blocked put, get or join sleeps before looking again.
pub const WAIT_CAP: Duration = Duration::from_millis(25);

/// How long a getter waits on an empty queue before it gives the queue's warm
/// blocks back: long enough that a producer descheduled for a few time slices
/// on a busy machine does not find its warm blocks gone.
pub const IDLE_RELEASE: Duration = Duration::from_millis(100);

/// Bit 0 of each futex word: someone may sleep on it.
const WAITERS: u32 = 1;
/// One step of the value in bits 31..1.
const ONE: u32 = 2;

/// Announces a change of `word` (sequence or count already moved by the
/// caller's `fetch_add`/CAS, which returned `old`): wakes the sleepers if
/// `old` had [`WAITERS`].
#[inline]
fn wake_if_waiters(word: &AtomicU32, old: u32) {
    if old & WAITERS != 0 {
        wake_slow(word);
    }
}

#[cold]
fn wake_slow(word: &AtomicU32) {
    // Clearing the bit changes the word too, so a sleeper that has not gone to
    // sleep yet finds it changed; each sleeper re-sets the bit before sleeping.
    word.fetch_and(!WAITERS, SeqCst);
    sys::wake_all(word);
}

/// Attempts before a blocked call goes to sleep (a few µs of `pause`). On an idle
/// machine a consumer keeping pace with its producer then never pays the
/// futex sleep and wake (`queue_tput`: 221 → 141 ns per 8 B item with 16 → 256
/// attempts, one run); 4 KiB items were unchanged. Much longer spins hurt when
/// the cores are oversubscribed: `queue_bytes_tput` ran 2.5× slower with a 20 µs
/// spin under load.
const SPIN: u32 = if cfg!(loom) { 0 } else { 256 };

/// Large items a producer lets queue up before it waits for a consumer that is
/// taking them (`alloc_paced`): with the one being read and the one being
/// written, a stream keeps [`blocks::MIN_HOT`] blocks busy, all warm.
const AHEAD: usize = 2;

/// Which queue type a control block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u32)]
pub(crate) enum Kind {
    Queue = 1,
    Joinable = 2,
    Simple = 3,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Queue => "Queue",
            Kind::Joinable => "JoinableQueue",
            Kind::Simple => "SimpleQueue",
        }
    }
}

/// One futex word alone on its cache line.
#[repr(C, align(64))]
struct Line(AtomicU32);

/// The control block, at the start of the queue's memory; the ring follows it
/// at `ring_offset`.
#[repr(C, align(64))]
struct Control {
    magic: u32,
    version: u32,
    /// [`Kind`] as a number.
    kind: u32,
    /// The largest encoded item (the cap), in bytes.
    max_item: u32,
    /// The bound, in items.
    maxsize: u64,
    /// FNV-1a of the item type's name: a handle of another type refuses to attach.
    type_hash: u64,
    /// Bytes from the control block to the ring's header.
    ring_offset: u64,
    /// `sequence << 1 | WAITERS`: the sequence counts puts; getters sleep on it.
    not_empty: Line,
    /// `sequence << 1 | WAITERS`: the sequence counts gets; putters sleep on it.
    not_full: Line,
    /// `count << 1 | WAITERS`: tasks put and not yet marked done
    /// (`JoinableQueue`); joiners sleep on it.
    unfinished: Line,
    /// The shared words of the block store (`blocks.rs`).
    store: StoreHeader,
}

impl Control {
    fn new(kind: Kind, maxsize: usize, max_item: usize, type_hash: u64, ring_offset: usize) -> Control {
        let line = || Line(AtomicU32::new(0));
        Control {
            magic: magic::QUEUE.word,
            version: magic::QUEUE.version,
            kind: kind as u32,
            max_item: max_item as u32,
            maxsize: maxsize as u64,
            type_hash,
            ring_offset: ring_offset as u64,
            not_empty: line(),
            not_full: line(),
            unfinished: line(),
            store: StoreHeader::new(),
        }
    }
}

/// FNV-1a, 64 bits: a stable hash of a type name.
pub(crate) fn type_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Where the control block lives.
enum Backing {
    /// Shared memory: the arena block (in the creating process) or the segment.
    Shared { seg: Segment, offset: usize, _block: Option<Block> },
    /// The heap, for loom models.
    #[cfg(loom)]
    Heap(#[allow(dead_code)] Box<Control>),
}

/// How long a blocking call may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// One attempt, no waiting (the `try_` forms).
    Now,
    /// Until this instant.
    Deadline(Instant),
    /// No limit.
    Forever,
}

impl Until {
    /// `timeout` from now (no limit when too far to represent).
    pub(crate) fn after(timeout: Duration) -> Until {
        Deadline::after(timeout).instant().map_or(Until::Forever, Until::Deadline)
    }

    /// What is left: `None` for no limit, zero once past.
    fn left(self) -> Option<Duration> {
        match self {
            Until::Now => Some(Duration::ZERO),
            Until::Deadline(d) => Some(d.saturating_duration_since(Instant::now())),
            Until::Forever => None,
        }
    }
}

/// The spawn form of a queue: its kind, item type and memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueToken {
    pub(crate) kind: Kind,
    pub(crate) type_name: String,
    pub(crate) seg: SegmentToken,
    pub(crate) offset: u64,
}

/// The untyped queue: encoded items in, encoded items out.
#[derive(Clone)]
pub(crate) struct RawQueue {
    ctrl: NonNull<Control>,
    ring: MpmcRing,
    backing: Arc<Backing>,
    kind: Kind,
    maxsize: usize,
    max_item: usize,
    /// The largest item kept in a slot (the ring's `max_message`); larger ones
    /// go to `blocks`.
    slot_bytes: usize,
    /// Where items larger than a slot go (`None` when none can be).
    blocks: Option<Arc<Blocks>>,
    /// Whether the ring has more slots than `maxsize` (then puts check the length).
    check_len: bool,
    /// `gets << 1 | 1` when a producer of this process last waited for a
    /// consumer in vain (`alloc_paced`), 0 otherwise.
    futile: Arc<AtomicU64>,
}

// SAFETY: the control block is only reached through atomics (its plain fields
// are written once before any handle exists) and stays mapped while `backing`
// lives; the ring is Send and Sync itself.
unsafe impl Send for RawQueue {}
// SAFETY: as for Send: every method takes `&self` and touches shared state only
// through atomics and the lock-free ring.
unsafe impl Sync for RawQueue {}

/// The checked builder values.
pub(crate) fn check_sizes(maxsize: usize, max_item: usize, slot_bytes: usize) -> Result<(), QueueError> {
    use mproc_shm::ring::mpmc::{MAX_MESSAGE, MAX_SLOTS};
    if maxsize == 0 || maxsize > MAX_SLOTS {
        return Err(QueueError::BadSize { what: "maxsize", value: maxsize, min: 1, max: MAX_SLOTS });
    }
    if max_item == 0 || max_item > MAX_ITEM_CAP {
        return Err(QueueError::BadSize { what: "max_item_bytes", value: max_item, min: 1, max: MAX_ITEM_CAP });
    }
    if slot_bytes == 0 || slot_bytes > MAX_MESSAGE {
        return Err(QueueError::BadSize { what: "slot_bytes", value: slot_bytes, min: 1, max: MAX_MESSAGE });
    }
    Ok(())
}

/// The largest item kept in a slot: `slot_bytes`, but at least a block
/// reference (so that any slot can refer to a block) and at most the cap.
fn slot_size(max_item: usize, slot_bytes: usize) -> usize {
    slot_bytes.max(blocks::REF_LEN).min(max_item)
}

/// The file layout for a queue of these sizes: the ring's bytes, the slot
/// size, and where the blocks go.
fn layout(maxsize: usize, max_item: usize, slot_bytes: usize) -> Result<(usize, usize, Geometry), QueueError> {
    let slot = slot_size(max_item, slot_bytes);
    let too_large =
        |size| QueueError::BadSize { what: "maxsize x max_item_bytes (bytes)", value: size, min: 1, max: MAX_FILE };
    let ring_bytes = MpmcRing::footprint(maxsize, slot).map_err(|e| match e {
        ShmError::TooLarge { size, .. } => too_large(size),
        e => QueueError::Shm(e),
    })?;
    let classes = if max_item > slot { blocks::classes_for(max_item) } else { 0 };
    let geo = Geometry::new(ring_offset() + ring_bytes, maxsize.next_power_of_two(), classes)
        .filter(|g| g.file_len <= MAX_FILE)
        .ok_or_else(|| too_large(usize::MAX))?;
    Ok((ring_bytes, slot, geo))
}

fn ring_offset() -> usize {
    size_of::<Control>().next_multiple_of(MpmcRing::ALIGN)
}

fn align() -> usize {
    align_of::<Control>().max(MpmcRing::ALIGN)
}

impl RawQueue {
    /// A new queue in a memfd of its own: the control block and the ring (its
    /// slots left untouched, so they cost memory only once used), then the
    /// sparse block store.
    pub(crate) fn new(
        kind: Kind,
        maxsize: usize,
        max_item: usize,
        slot_bytes: usize,
        type_name: &str,
    ) -> Result<RawQueue, QueueError> {
        check_sizes(maxsize, max_item, slot_bytes)?;
        let (_, slot, geo) = layout(maxsize, max_item, slot_bytes)?;
        let seg = Segment::anonymous(geo.data)?;
        if geo.file_len > geo.data {
            let fd = seg.fd().expect("an anonymous segment has a memfd");
            rustix::fs::ftruncate(fd, geo.file_len as u64)
                .map_err(|e| os_error("ftruncate", format!("queue memfd of {} bytes", geo.file_len), e))?;
        }
        let base = seg.check_range(kind.name(), 0, size_of::<Control>(), align())?;
        let ring = MpmcRing::new_in_fresh(&seg, ring_offset(), maxsize, slot)?;
        let ctrl = base.cast::<Control>();
        // SAFETY: [1] the range was checked to lie in the segment, aligned for
        // Control; [2] the memfd is ours alone until a handle exists.
        unsafe { ctrl.as_ptr().write(Control::new(kind, maxsize, max_item, type_hash(type_name), ring_offset())) };
        let blocks = Self::blocks(&seg, ctrl, geo)?;
        Ok(Self::from_parts(
            ctrl,
            ring,
            Backing::Shared { seg, offset: 0, _block: None },
            kind,
            maxsize,
            max_item,
            blocks,
        ))
    }

    fn blocks(seg: &Segment, ctrl: NonNull<Control>, geo: Geometry) -> Result<Option<Arc<Blocks>>, ShmError> {
        if geo.classes == 0 {
            return Ok(None);
        }
        // SAFETY: the control block lies in `seg` (checked by the caller).
        let header = unsafe { NonNull::new_unchecked(std::ptr::addr_of_mut!((*ctrl.as_ptr()).store)) };
        Ok(Some(Arc::new(Blocks::new(seg.clone(), header, geo)?)))
    }

    /// A queue on the heap for loom models.
    #[cfg(loom)]
    /// Items larger than `slot_bytes` go to a block store on the heap.
    pub(crate) fn new_heap(
        kind: Kind,
        maxsize: usize,
        max_item: usize,
        slot_bytes: usize,
    ) -> Result<RawQueue, QueueError> {
        check_sizes(maxsize, max_item, slot_bytes)?;
        let slot = slot_size(max_item, slot_bytes);
        let ring = MpmcRing::new_heap(maxsize, slot)?;
        let mut ctrl = Box::new(Control::new(kind, maxsize, max_item, 0, 0));
        let ptr = NonNull::from(&mut *ctrl);
        let blocks =
            (max_item > slot).then(|| Arc::new(Blocks::new_heap(ring.capacity(), blocks::classes_for(max_item))));
        Ok(Self::from_parts(ptr, ring, Backing::Heap(ctrl), kind, maxsize, max_item, blocks))
    }

    fn from_parts(
        ctrl: NonNull<Control>,
        ring: MpmcRing,
        backing: Backing,
        kind: Kind,
        maxsize: usize,
        max_item: usize,
        blocks: Option<Arc<Blocks>>,
    ) -> RawQueue {
        let check_len = ring.capacity() > maxsize;
        let slot_bytes = ring.max_message();
        RawQueue {
            ctrl,
            ring,
            backing: Arc::new(backing),
            kind,
            maxsize,
            max_item,
            slot_bytes,
            blocks,
            check_len,
            futile: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Attaches to a queue another process created at `offset` of `seg`,
    /// checking its kind and item type.
    pub(crate) fn attach(seg: &Segment, offset: usize, kind: Kind, type_name: &str) -> Result<RawQueue, ShmError> {
        let what = kind.name();
        let at = Attach::new(seg, offset, what);
        let base = at.range(size_of::<Control>(), align())?;
        let c = base.cast::<Control>().as_ptr();
        // SAFETY: the range is in bounds and aligned; these fields are plain
        // integers (any bit pattern is valid), written once before any handle.
        let (magic, version, k, max_item, maxsize, hash, ring_off) = unsafe {
            (
                std::ptr::addr_of!((*c).magic).read_volatile(),
                std::ptr::addr_of!((*c).version).read_volatile(),
                std::ptr::addr_of!((*c).kind).read_volatile(),
                std::ptr::addr_of!((*c).max_item).read_volatile() as usize,
                std::ptr::addr_of!((*c).maxsize).read_volatile() as usize,
                std::ptr::addr_of!((*c).type_hash).read_volatile(),
                std::ptr::addr_of!((*c).ring_offset).read_volatile(),
            )
        };
        at.identity(magic::QUEUE, magic, version)?;
        at.layout(k == kind as u32, || format!("queue kind {k}, expected {} ({what})", kind as u32))?;
        at.layout(hash == type_hash(type_name), || format!("the queue holds another item type than {type_name}"))?;
        at.layout(
            offset == 0 && ring_off == ring_offset() as u64 && check_sizes(maxsize, max_item, 1).is_ok(),
            || format!("ring at +{ring_off}, maxsize {maxsize}, max item {max_item}: not a valid queue layout"),
        )?;
        let ring = MpmcRing::attach(seg, offset + ring_offset())?;
        let geo = layout(maxsize, max_item, ring.max_message()).ok().map(|(_, slot, geo)| (slot, geo));
        let Some((slot, geo)) = geo.filter(|(slot, _)| *slot == ring.max_message()) else {
            return Err(at.mismatch(format!("slots of {} bytes for items of {max_item}", ring.max_message())));
        };
        at.layout(slot == ring.max_message() && ring.capacity() >= maxsize, || {
            format!(
                "ring of {} slots x {} bytes cannot hold {maxsize} items of {max_item} bytes",
                ring.capacity(),
                ring.max_message()
            )
        })?;
        let blocks = Self::blocks(seg, base.cast(), geo)?;
        Ok(Self::from_parts(
            base.cast(),
            ring,
            Backing::Shared { seg: seg.clone(), offset, _block: None },
            kind,
            maxsize,
            max_item,
            blocks,
        ))
    }

    pub(crate) fn export(&self, exports: &mut Exports, type_name: &str) -> Result<QueueToken, ShmError> {
        match &*self.backing {
            Backing::Shared { seg, offset, .. } => Ok(QueueToken {
                kind: self.kind,
                type_name: type_name.to_owned(),
                seg: seg.export(exports)?,
                offset: *offset as u64,
            }),
            #[cfg(loom)]
            Backing::Heap(_) => Err(ShmError::BadToken {
                what: self.kind.name(),
                detail: "a heap queue (loom) cannot be exported".into(),
            }),
        }
    }

    pub(crate) fn import(token: QueueToken, kind: Kind, type_name: &str) -> Result<RawQueue, ShmError> {
        let what = kind.name();
        if token.kind != kind {
            return Err(ShmError::BadToken {
                what,
                detail: format!("the token is for a {}, not a {what}", token.kind.name()),
            });
        }
        if token.type_name != type_name {
            return Err(ShmError::BadToken {
                what,
                detail: format!("the token is for items of type {}, not {type_name}", token.type_name),
            });
        }
        let offset = usize::try_from(token.offset)
            .map_err(|_| ShmError::BadToken { what, detail: format!("offset {} overflows", token.offset) })?;
        Self::attach(&Segment::import(token.seg)?, offset, kind, type_name)
    }

    #[inline]
    fn ctrl(&self) -> &Control {
        // SAFETY: the control block lives as long as `backing`; its mutable
        // fields are atomics.
        unsafe { self.ctrl.as_ref() }
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    pub(crate) fn max_item(&self) -> usize {
        self.max_item
    }

    /// Items in the queue (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Tasks put and not yet done (a snapshot).
    pub(crate) fn unfinished(&self) -> u32 {
        self.ctrl().unfinished.0.load(SeqCst) >> 1
    }

    /// One attempt to push: `write` fills the claimed slot (told its
    /// position) and returns `(length, flagged)`. `Ok(None)` when there is no
    /// room now.
    #[inline]
    fn try_push(
        &self,
        len: usize,
        write: impl FnOnce(u64, &mut [u8]) -> Result<(usize, bool), QueueError>,
    ) -> Result<Option<()>, QueueError> {
        if self.check_len && self.ring.len() >= self.maxsize {
            return Ok(None);
        }
        match self.ring.try_push_at(len, write) {
            Ok(Ok(())) => {
                let word = &self.ctrl().not_empty.0;
                wake_if_waiters(word, word.fetch_add(ONE, SeqCst));
                Ok(Some(()))
            }
            Ok(Err(e)) => Err(e),
            Err(RingError::Full { .. }) => Ok(None),
            Err(RingError::TooLarge { len, max }) => Err(QueueError::TooLarge { size: len, limit: max }),
            Err(e) => Err(e.into()),
        }
    }

    /// One attempt to pop the oldest item and `decode` it in place (from its
    /// slot, or from the block its slot refers to): `Ok(None)` when no item is
    /// ready. A decoding error consumes the item.
    #[inline]
    fn try_pop<R>(&self, decode: impl FnOnce(&[u8]) -> Result<R, QueueError>) -> Result<Option<R>, QueueError> {
        let read = |pos: u64, flagged: bool, msg: &[u8]| match (flagged, &self.blocks) {
            (false, _) => decode(msg),
            (true, Some(blocks)) => blocks.read(pos, msg, decode)?,
            (true, None) => Err(QueueError::Ring(RingError::Corrupt {
                position: pos,
                detail: "a block reference in a queue without blocks".into(),
            })),
        };
        let Some(item) = self.ring.try_pop_at(read)? else {
            return Ok(None);
        };
        let word = &self.ctrl().not_full.0;
        wake_if_waiters(word, word.fetch_add(ONE, SeqCst));
        item.map(Some)
    }

    /// Puts the item `encode` writes (it gets a buffer of at least `len`
    /// bytes and returns the length it used; `len` is that length, known
    /// beforehand), waiting for room until `deadline`: into a slot when it fits
    /// one, into a block otherwise. Fails with `Full`, `Closed` (checked with
    /// `closed` while waiting), `TooLarge`, or `encode`'s error — which, for an
    /// item in a slot, gives the claimed slot up, leaving a skipped place in
    /// the queue until consumers pass it, so the caller checks everything it
    /// can before.
    pub(crate) fn put(
        &self,
        encode: impl Fn(&mut [u8]) -> Result<usize, QueueError>,
        len: usize,
        deadline: Until,
        closed: &dyn Fn() -> bool,
    ) -> Result<(), QueueError> {
        if len > self.max_item {
            return Err(QueueError::TooLarge { size: len, limit: self.max_item });
        }
        let joinable = self.kind == Kind::Joinable;
        if joinable {
            // Counted before the item is visible, so a fast consumer's task_done
            // never finds the count short.
            self.ctrl().unfinished.0.fetch_add(ONE, SeqCst);
        }
        let r = if len <= self.slot_bytes {
            let write = |_, slot: &mut [u8]| encode(slot).map(|n| (n, false));
            match self.try_push(len, write) {
                Ok(None) => {
                    self.wait_slow(&self.ctrl().not_full.0, deadline, closed, None, &mut || self.try_push(len, write))
                }
                r => r,
            }
        } else {
            self.put_block(&encode, len, deadline, closed)
        };
        match r {
            Ok(Some(())) => Ok(()),
            Ok(None) => {
                self.undo_unfinished(joinable);
                Err(QueueError::Full { maxsize: self.maxsize })
            }
            Err(e) => {
                self.undo_unfinished(joinable);
                Err(e)
            }
        }
    }

    /// Puts an item too large for a slot: claims a block (waiting for one as
    /// for room), encodes the item there, then claims a slot and stores a
    /// reference to the block in it. `Ok(None)`: no room before `deadline`.
    #[cold]
    fn put_block(
        &self,
        encode: &dyn Fn(&mut [u8]) -> Result<usize, QueueError>,
        len: usize,
        deadline: Until,
        closed: &dyn Fn() -> bool,
    ) -> Result<Option<()>, QueueError> {
        let Some(blocks) = self.blocks.as_deref().filter(|b| len <= b.max_len()) else {
            return Err(QueueError::TooLarge { size: len, limit: self.slot_bytes });
        };
        if deadline == Until::Now && self.ring.len() >= self.maxsize.min(self.ring.capacity()) {
            return Ok(None); // no need to copy the item to learn that
        }
        let not_full = &self.ctrl().not_full.0;
        let held = match self.alloc_paced(blocks, len, deadline)? {
            Some(held) => Some(held),
            None => self.wait_slow(not_full, deadline, closed, None, &mut || blocks.alloc(len, true, &self.ring))?,
        };
        let Some(mut held) = held else { return Ok(None) };
        let used = encode(held.bytes())?;
        if used > self.max_item {
            // Only a `Serialize` that writes more on a second pass gets here.
            return Err(QueueError::TooLarge { size: used, limit: self.max_item });
        }
        let write = |pos, slot: &mut [u8]| Ok((held.queue(pos, used, slot), true));
        match self.try_push(blocks::REF_LEN, write)? {
            Some(()) => Ok(Some(())),
            None => self.wait_slow(not_full, deadline, closed, None, &mut || self.try_push(blocks::REF_LEN, write)),
        }
    }

    /// Claims a block for an item of `len` bytes, pacing the producer (see
    /// `blocks.rs`): for a large item, and when the caller may wait, it waits
    /// up to [`blocks::pace`] (spinning, then yielding) while
    ///
    /// - [`AHEAD`] items or more are queued and a consumer is taking them (so
    ///   that a stream cycles through a few blocks warm in cache, as an SPSC
    ///   ring of a few slots does), or
    /// - no warm block is free while items are queued (a consumer will soon
    ///   give one back; a cold block costs a zeroing and page faults).
    ///
    /// Then it takes a warm block, or a cold one. A wait that saw no item
    /// taken is not repeated until one is: a burst of puts with no consumer
    /// pays it once. `Ok(None)`: every block of the class is in use.
    fn alloc_paced<'b>(&self, blocks: &'b Blocks, len: usize, deadline: Until) -> Result<Option<Held<'b>>, QueueError> {
        let budget = match (blocks::pace(len), deadline.left()) {
            (Some(pace), Some(left)) => pace.min(left),
            (Some(pace), None) => pace,
            (None, _) => Duration::ZERO,
        };
        let gets = || self.ctrl().not_full.0.load(SeqCst) >> 1;
        let futile = self.futile.load(Relaxed);
        // The sequence of gets when the last wait of this process timed out
        // without one; a wait is worth it again once the sequence moved on.
        let mut patient = !budget.is_zero() && (futile & 1 == 0 || (futile >> 1) as u32 != gets());
        let (mut started, mut spins) = (None, 0u32);
        loop {
            let queued = self.ring.len();
            if !(patient && queued >= AHEAD) {
                if let Some(held) = blocks.alloc(len, false, &self.ring)? {
                    return Ok(Some(held));
                }
            }
            if !patient || queued == 0 {
                return blocks.alloc(len, true, &self.ring);
            }
            let (since, seen) = *started.get_or_insert_with(|| (Instant::now(), gets()));
            if since.elapsed() >= budget {
                let now = gets();
                if now == seen {
                    self.futile.store(u64::from(now) << 1 | 1, Relaxed);
                }
                patient = false;
                continue;
            }
            if spins < SPIN {
                spins += 1;
                sys::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn undo_unfinished(&self, joinable: bool) {
        if joinable {
            let _ = self.task_done();
        }
    }

    /// Takes the oldest item and `decode`s it in place, waiting until
    /// `deadline`; `Empty` when none came. A getter that has waited a whole
    /// [`IDLE_RELEASE`] gives the queue's idle block memory back (`blocks.rs`).
    pub(crate) fn get<R>(
        &self,
        decode: impl Fn(&[u8]) -> Result<R, QueueError>,
        deadline: Until,
        closed: &dyn Fn() -> bool,
    ) -> Result<R, QueueError> {
        let got = match self.try_pop(&decode)? {
            Some(item) => Some(item),
            None => {
                let idle = || {
                    if let Some(b) = &self.blocks {
                        b.release_idle(&self.ring)
                    }
                };
                self.wait_slow(&self.ctrl().not_empty.0, deadline, closed, Some(&idle), &mut || self.try_pop(&decode))?
            }
        };
        got.ok_or(QueueError::Empty)
    }

    /// Bytes of shared memory the queue's file holds now (`fstat`'s blocks):
    /// the control block, the slots used so far, and blocks in use or kept warm.
    pub(crate) fn shared_bytes(&self) -> usize {
        match &*self.backing {
            Backing::Shared { seg, .. } => {
                seg.fd().and_then(|fd| rustix::fs::fstat(fd).ok()).map_or(0, |st| st.st_blocks as usize * 512)
            }
            #[cfg(loom)]
            Backing::Heap(_) => 0,
        }
    }

    /// The largest item kept in a ring slot.
    pub(crate) fn slot_bytes(&self) -> usize {
        self.slot_bytes
    }

    /// Runs `attempt` until it returns `Ok(Some(_))`: spinning, then sleeping on
    /// `word` in slices of at most [`WAIT_CAP`]. `Ok(None)` once `deadline` has
    /// passed.
    #[cold]
    fn wait_slow<R>(
        &self,
        word: &AtomicU32,
        deadline: Until,
        closed: &dyn Fn() -> bool,
        idle: Option<&dyn Fn()>,
        attempt: &mut dyn FnMut() -> Result<Option<R>, QueueError>,
    ) -> Result<Option<R>, QueueError> {
        if deadline.left() == Some(Duration::ZERO) {
            return Ok(None);
        }
        let mut idle = idle.map(|f| (f, Instant::now()));
        for _ in 0..SPIN {
            sys::spin_loop();
            if let Some(r) = attempt()? {
                return Ok(Some(r));
            }
        }
        loop {
            if closed() {
                return Err(QueueError::Closed);
            }
            // Announce the sleeper with a read-modify-write (see the module doc).
            let seen = word.fetch_or(WAITERS, SeqCst) | WAITERS;
            if let Some(r) = attempt()? {
                return Ok(Some(r));
            }
            let left = deadline.left();
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            sys::wait(word, seen, Some(left.map_or(WAIT_CAP, |l| l.min(WAIT_CAP))));
            if let Some((f, since)) = idle {
                if since.elapsed() >= IDLE_RELEASE {
                    f();
                    idle = None;
                }
            }
        }
    }

    /// For tests and loom models: the block store (a queue whose large items
    /// go to blocks has one).
    pub(crate) fn block_store(&self) -> Option<&Blocks> {
        self.blocks.as_deref()
    }

    /// For loom models: the ring.
    #[cfg(loom)]
    pub(crate) fn ring(&self) -> &MpmcRing {
        &self.ring
    }

    /// For loom models: what a getter idle for [`IDLE_RELEASE`] does.
    #[cfg(loom)]
    pub(crate) fn release_idle(&self) {
        if let Some(b) = &self.blocks {
            b.release_idle(&self.ring)
        }
    }

    /// Marks one task done; wakes the joiners when none is left.
    pub(crate) fn task_done(&self) -> Result<(), QueueError> {
        let word = &self.ctrl().unfinished.0;
        let mut w = word.load(SeqCst);
        loop {
            if w >> 1 == 0 {
                return Err(QueueError::TaskDoneTooOften);
            }
            match word.compare_exchange_weak(w, w - ONE, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        if w >> 1 == 1 {
            wake_if_waiters(word, w);
        }
        Ok(())
    }

    /// For the async adapters: the word a get (`NOT_EMPTY`), a put
    /// (`NOT_FULL`) or a join (`UNFINISHED`) sleeps on, with its `WAITERS`
    /// bit set (the value it now holds is returned: look at the queue again,
    /// then await the word while it holds that value); and what keeps the
    /// word's memory mapped.
    #[cfg(feature = "tokio")]
    pub(crate) fn arm(&self, which: usize) -> (&AtomicU32, u32, Arc<dyn std::any::Any + Send + Sync>) {
        let c = self.ctrl();
        let word = [&c.not_empty.0, &c.not_full.0, &c.unfinished.0][which];
        (word, word.fetch_or(WAITERS, SeqCst) | WAITERS, self.backing.clone())
    }

    /// Waits until no task is unfinished, at most until `deadline`; true if so.
    pub(crate) fn join(&self, deadline: Until) -> bool {
        let word = &self.ctrl().unfinished.0;
        if word.load(SeqCst) >> 1 == 0 {
            return true;
        }
        loop {
            let seen = word.fetch_or(WAITERS, SeqCst) | WAITERS;
            if seen >> 1 == 0 {
                return true;
            }
            let left = deadline.left();
            if left == Some(Duration::ZERO) {
                return false;
            }
            sys::wait(word, seen, Some(left.map_or(WAIT_CAP, |l| l.min(WAIT_CAP))));
        }
    }
}
