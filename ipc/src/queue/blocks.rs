//! `Blocks`: where a queue keeps the items too large for a ring slot — size
//! classes of blocks in the queue's own memfd, past the part every handle maps.
//!
//! The file is sparse: a block costs memory only once written, and a block
//! given back is punched out of the file (`fallocate(FALLOC_FL_PUNCH_HOLE)`),
//! unless it joins the small set of recently used blocks kept resident
//! ([`HOT_BYTES`], and at least [`MIN_HOT`] blocks of each class) so that a
//! stream of large items reuses warm pages instead of faulting in and zeroing
//! fresh ones for every item. A getter that waits
//! [`IDLE_RELEASE`](super::IDLE_RELEASE) on an empty queue releases that set too,
//! and takes back any orphan (below).
//!
//! Allocation takes a warm block first (a FREE+HOT one, or any free block
//! under a page, which is never punched); only when none is free does it take
//! a cold one. A producer of large items that finds no warm block while items
//! are queued first waits a little for a consumer to give one back
//! ([`pace`]): a stream of large items then cycles through a few warm blocks,
//! as a ring of a few slots would, instead of running ahead into fresh pages
//! that each cost a zeroing, a page fault and a punch.
//!
//! Classes: powers of two from 64 B to 16 KiB, then four classes per octave
//! (20, 24, 28, 32 KiB; 40, 48, 56, 64 KiB; …; 1.25, 1.5, 1.75, 2 MiB; …), so
//! a block is at most a quarter larger than the item it holds: a 1 MiB buffer
//! and its length prefix take a 1.25 MiB block, not 2 MiB. Blocks of 16 KiB
//! and more are whole pages. Each class has `T` blocks (the ring's slots plus
//! [`SPARE`]), so `maxsize` items of any one size always fit.
//! A block's life is its state word (u64), in a table per class:
//!
//! | bits 63-62 | state  | bits 61-0                                           |
//! |------------|--------|-----------------------------------------------------|
//! | 0          | FREE   | bit 0: HOT, the block's pages are resident (counted in `hot_bytes`) |
//! | 1          | HELD   | the holder's pid: a producer writing, or a releaser punching |
//! | 2          | QUEUED | the ring position whose slot refers to the block    |
//!
//! ```text
//! FREE ──producer CAS──▶ HELD(pid) ──write item, claim slot p, store──▶ QUEUED(p)
//!   ▲                        │ (encode fails, timeout: give back)          │
//!   └────────────────────────┴──────── consumer reads in place, frees ◀────┘
//! ```
//!
//! The producer fills its block before it claims a slot, so a large item never
//! holds up the items behind it while it is copied; it stores `QUEUED(p)` while
//! it holds slot `p` (WRITING), before publishing the slot. The consumer frees
//! the block before it frees the slot. Hence a block is referenced exactly
//! while its state says so, and a SIGKILL leaves one of two recognisable
//! orphans, which a producer finding its class exhausted takes over:
//!
//! - `HELD(pid)` with `pid` dead: a producer (or releaser) died before its item
//!   was published; nothing refers to the block.
//! - `QUEUED(p)` with position `p` done ([`MpmcRing::position_done`]): the
//!   slot moved on without freeing the block (the consumer died reading it,
//!   or the producer died after `QUEUED(p)` and its slot was skipped).
//!
//! A consumer never sees a half-written block: the slot becomes readable only
//! when its producer publishes it, after the block is written. Whatever is
//! lost, the memfd itself goes when the last process holding the queue does.

use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

use mproc_shm::sys::{alive as process_alive, pid as current_pid};
use mproc_shm::{MpmcRing, Segment, ShmError};
use mproc_sync::primitive::{AtomicU32, AtomicU64, Ordering::SeqCst};
use rustix::fs::FallocateFlags;
use rustix::mm::{Advice, MapFlags, ProtFlags};

use super::QueueError;

/// The smallest block: one cache line.
const MIN_SHIFT: u32 = 6;
/// Power-of-two classes: 64 B up to [`POW2_TOP`].
const POW2_CLASSES: u32 = 9;
/// The largest power-of-two class, 16 KiB; above it, [`STEPS`] classes per octave.
const POW2_TOP: usize = 64 << (POW2_CLASSES - 1);
/// Classes per octave above [`POW2_TOP`]: a quarter octave apart, whole pages.
const STEPS: u32 = 4;
/// The most classes: blocks of 64 B up to 1 GiB.
pub(crate) const MAX_CLASSES: usize = 73;
/// Blocks per class beyond the ring's slots: producers filling blocks while
/// the queue is full (one under loom, to keep the models small).
pub(crate) const SPARE: usize = if cfg!(loom) { 1 } else { 64 };
/// Bytes of freed blocks kept resident for reuse, at most, per queue (beyond
/// the [`MIN_HOT`] blocks of each class).
pub(crate) const HOT_BYTES: u64 = 32 << 20;
/// Freed blocks of one class kept resident whatever their size: enough for a
/// producer to fill one while a consumer reads another, with one queued
/// between them (what an SPSC ring of four slots has).
pub(crate) const MIN_HOT: u32 = 4;
/// Items from this size up: a producer finding no warm block paces itself
/// ([`pace`]), and cold blocks are populated with one `madvise`.
const LARGE: usize = 64 << 10;
const PAGE: usize = 4096;
/// Blocks mapped together in one `mmap`.
const CHUNK_BLOCKS: usize = 64;
/// The size of a slot's reference to a block.
pub(crate) const REF_LEN: usize = 16;

const KIND_SHIFT: u32 = 62;
const FREE_COLD: u64 = 0;
const FREE_HOT: u64 = 1;
const HELD: u64 = 1 << KIND_SHIFT;
const QUEUED: u64 = 2 << KIND_SHIFT;
const LOW: u64 = (1 << KIND_SHIFT) - 1;

/// The block store's shared words, in the queue's control block.
#[repr(C, align(64))]
pub(crate) struct StoreHeader {
    /// Bytes of FREE+HOT blocks (page classes only).
    hot_bytes: AtomicU64,
    /// Per class, its words side by side, so that a stream of one size moves
    /// one cache line of them between producer and consumer.
    class: [ClassWords; MAX_CLASSES],
}

/// One class's shared words.
#[repr(C, align(16))]
struct ClassWords {
    /// The lowest index that may be free (a hint: allocation scans from it,
    /// so recently freed low blocks, warm in cache, are reused first).
    hint: AtomicU32,
    /// One past the highest index ever allocated: no block from here on has
    /// been written, so none is HOT.
    high: AtomicU32,
    /// FREE+HOT blocks of the class.
    hot: AtomicU32,
}

impl StoreHeader {
    pub(crate) fn new() -> StoreHeader {
        StoreHeader {
            hot_bytes: AtomicU64::new(0),
            class: std::array::from_fn(|_| ClassWords {
                hint: AtomicU32::new(0),
                high: AtomicU32::new(0),
                hot: AtomicU32::new(0),
            }),
        }
    }
}

/// The classes an item of up to `max_item` bytes needs.
pub(crate) fn classes_for(max_item: usize) -> usize {
    class_of(max_item) as usize + 1
}

/// The smallest class whose blocks hold `len` bytes.
fn class_of(len: usize) -> u32 {
    if len <= POW2_TOP {
        return len.max(1).next_power_of_two().trailing_zeros().saturating_sub(MIN_SHIFT);
    }
    // len - 1 lies in [base, 2 base): the classes base + k * base / STEPS, k = 1..=STEPS.
    let octave = usize::BITS - 1 - (len - 1).leading_zeros();
    let base = 1usize << octave;
    let k = (len - base).div_ceil(base / STEPS as usize) as u32;
    POW2_CLASSES + (octave - POW2_TOP.trailing_zeros()) * STEPS + k - 1
}

fn block_size(class: u32) -> usize {
    if class < POW2_CLASSES {
        return 1 << (class + MIN_SHIFT);
    }
    let i = class - POW2_CLASSES;
    let base = POW2_TOP << (i / STEPS);
    base / STEPS as usize * (STEPS + 1 + i % STEPS) as usize
}

/// Where things lie in the queue's file, from the fixed sizes alone (the
/// creator and every attacher compute the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Blocks per class.
    pub(crate) per_class: usize,
    pub(crate) classes: usize,
    /// Offset of the state tables.
    pub(crate) tables: usize,
    /// Offset of class 0's blocks: the end of what every handle maps.
    pub(crate) data: usize,
    /// The file's length.
    pub(crate) file_len: usize,
}

impl Geometry {
    /// `ring_end`: the first byte past the ring; `slots`: the ring's slots.
    pub(crate) fn new(ring_end: usize, slots: usize, classes: usize) -> Option<Geometry> {
        let per_class = slots + SPARE;
        let tables = ring_end.next_multiple_of(PAGE);
        let data = (tables + classes * per_class * 8).next_multiple_of(PAGE);
        let mut file_len = data;
        for c in 0..classes as u32 {
            file_len = file_len.checked_add(region_len(per_class, c)?)?;
        }
        Some(Geometry { per_class, classes, tables, data, file_len })
    }

    fn region(&self, class: u32) -> usize {
        // Cannot overflow: `new` summed all of them.
        self.data + (0..class).filter_map(|c| region_len(self.per_class, c)).sum::<usize>()
    }
}

/// Bytes of class `class`'s blocks, whole pages (`None` on overflow).
fn region_len(per_class: usize, class: u32) -> Option<usize> {
    per_class.checked_mul(block_size(class))?.checked_next_multiple_of(PAGE)
}

/// Blocks of one class that one `mmap` covers (whole pages).
fn per_chunk(class: u32) -> usize {
    CHUNK_BLOCKS.max(PAGE / block_size(class))
}

/// One process's view of a queue's block store.
pub(crate) struct Blocks {
    store: Store,
    header: NonNull<StoreHeader>,
    geo: Geometry,
    /// Per class, null or an array (leaked box) of this process's chunk
    /// mappings, each null until first needed. Lock-free, so a fork while
    /// another thread maps a chunk never leaves the child a held lock; the
    /// mappings stay until the handle drops.
    chunks: [AtomicPtr<AtomicPtr<u8>>; MAX_CLASSES],
}

/// Where the tables and blocks live.
enum Store {
    /// The queue's memfd: `seg` maps the head (control, ring, tables).
    File(Segment),
    /// The heap, for loom models: loom's atomics cannot live in a mapping.
    /// One shadow cell per block makes loom check each block access for a
    /// happens-before edge.
    #[cfg(loom)]
    Heap {
        _header: Box<StoreHeader>,
        states: Box<[AtomicU64]>,
        data: Box<[u64]>,
        shadow: Box<[loom::cell::UnsafeCell<()>]>,
    },
}

// SAFETY: the header and tables are reached only through atomics and live as
// long as the store; the chunk tables are atomics too.
unsafe impl Send for Blocks {}
// SAFETY: as for Send.
unsafe impl Sync for Blocks {}

/// A block this process holds (HELD(pid)) while it writes an item into it;
/// given back when dropped unless [`Held::queue`] handed it to a slot.
pub(crate) struct Held<'a> {
    blocks: &'a Blocks,
    class: u32,
    index: usize,
    ptr: NonNull<u8>,
    /// The block was cold (or an orphan's): its pages may be missing from
    /// other processes' page tables.
    fresh: bool,
    queued: std::cell::Cell<bool>,
}

impl Blocks {
    /// The store of the queue whose head segment is `seg`, its header at
    /// `header` (inside `seg`). Checks that the file is long enough.
    pub(crate) fn new(seg: Segment, header: NonNull<StoreHeader>, geo: Geometry) -> Result<Blocks, ShmError> {
        let fd =
            seg.fd().ok_or(ShmError::BadToken { what: "queue", detail: "a queue's memory must be a memfd".into() })?;
        let size = rustix::fs::fstat(fd).map_err(|e| os_error("fstat", "queue memfd", e))?.st_size as usize;
        if size < geo.file_len || seg.len() < geo.data {
            return Err(ShmError::LayoutMismatch {
                what: "queue",
                offset: 0,
                segment: seg.to_string(),
                detail: format!(
                    "file of {size} bytes, mapped {}: the layout needs {} and {}",
                    seg.len(),
                    geo.file_len,
                    geo.data
                ),
            });
        }
        Ok(Blocks { store: Store::File(seg), header, geo, chunks: std::array::from_fn(|_| AtomicPtr::default()) })
    }

    /// A store on the heap for loom models: `classes` classes of `per_class` blocks.
    #[cfg(loom)]
    pub(crate) fn new_heap(slots: usize, classes: usize) -> Blocks {
        let geo = Geometry { per_class: slots + SPARE, classes, tables: 0, data: 0, file_len: 0 };
        let n = classes * geo.per_class;
        let mut header = Box::new(StoreHeader::new());
        let header_ptr = NonNull::from(&mut *header);
        let words: usize = (0..classes as u32).map(|c| geo.per_class * block_size(c) / 8).sum();
        let store = Store::Heap {
            _header: header,
            states: (0..n).map(|_| AtomicU64::new(0)).collect(),
            data: vec![0u64; words].into_boxed_slice(),
            shadow: (0..n).map(|_| loom::cell::UnsafeCell::new(())).collect(),
        };
        Blocks { store, header: header_ptr, geo, chunks: std::array::from_fn(|_| AtomicPtr::default()) }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.store {
            Store::File(seg) => seg.fd(),
            #[cfg(loom)]
            Store::Heap { .. } => None,
        }
    }

    /// Records a read (`write` false) or write of a block for loom (free otherwise).
    #[inline]
    fn shadow(&self, _class: u32, _index: usize, _write: bool) {
        #[cfg(loom)]
        if let Store::Heap { shadow, .. } = &self.store {
            let cell = &shadow[_class as usize * self.geo.per_class + _index];
            if _write {
                cell.with_mut(|_| ());
            } else {
                cell.with(|_| ());
            }
        }
    }

    fn header(&self) -> &StoreHeader {
        // SAFETY: inside the head segment, which `self.seg` keeps mapped; atomics only.
        unsafe { self.header.as_ref() }
    }

    /// The largest item the store takes.
    pub(crate) fn max_len(&self) -> usize {
        block_size(self.geo.classes as u32 - 1)
    }

    fn state(&self, class: u32, index: usize) -> &AtomicU64 {
        debug_assert!((class as usize) < self.geo.classes && index < self.geo.per_class);
        self.word(class as usize * self.geo.per_class + index)
    }

    /// The state word of block `i` of the tables, all classes in a row.
    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < self.geo.classes * self.geo.per_class);
        match &self.store {
            Store::File(seg) => {
                // SAFETY: [1] the tables lie inside the head segment (checked in `new`);
                // [2] each word is 8-aligned (tables are page-aligned) and used only atomically.
                unsafe { &*seg.as_ptr().add(self.geo.tables + i * 8).cast::<AtomicU64>() }
            }
            #[cfg(loom)]
            Store::Heap { states, .. } => &states[i],
        }
    }

    /// The chunks of `class`: (their count, the array of their mappings).
    fn chunk_table(&self, class: u32) -> &[AtomicPtr<u8>] {
        let n = self.geo.per_class.div_ceil(per_chunk(class));
        let slot = &self.chunks[class as usize];
        let mut table = slot.load(Acquire);
        if table.is_null() {
            let fresh: Box<[AtomicPtr<u8>]> = (0..n).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect();
            let fresh = Box::into_raw(fresh).cast::<AtomicPtr<u8>>();
            match slot.compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire) {
                Ok(_) => table = fresh,
                Err(theirs) => {
                    // SAFETY: ours, just leaked above and never shared.
                    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, n)) });
                    table = theirs;
                }
            }
        }
        // SAFETY: a leaked box of `n` entries, freed only in `drop`.
        unsafe { std::slice::from_raw_parts(table, n) }
    }

    /// The address of block `index` of `class` in this process, mapping its
    /// chunk on first use.
    fn map(&self, class: u32, index: usize) -> Result<NonNull<u8>, QueueError> {
        let size = block_size(class);
        #[cfg(loom)]
        if let Store::Heap { data, .. } = &self.store {
            let words: usize =
                (0..class).map(|c| self.geo.per_class * block_size(c) / 8).sum::<usize>() + index * size / 8;
            return Ok(NonNull::from(&data[words]).cast());
        }
        let per_chunk = per_chunk(class);
        let k = index / per_chunk;
        let entry = &self.chunk_table(class)[k];
        let mut base = entry.load(Acquire);
        if base.is_null() {
            let fresh = self.map_chunk(class, k)?;
            match entry.compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire) {
                Ok(_) => base = fresh,
                Err(theirs) => {
                    // SAFETY: our own mapping of chunk_len bytes, never handed out.
                    let _ = unsafe { rustix::mm::munmap(fresh.cast(), self.chunk_len(class, k)) };
                    base = theirs;
                }
            }
        }
        // SAFETY: the block lies inside chunk k's mapping: (index - k * per_chunk + 1) * size <= its length.
        Ok(unsafe { NonNull::new_unchecked(base.add((index - k * per_chunk) * size)) })
    }

    fn chunk_len(&self, class: u32, k: usize) -> usize {
        let first = k * per_chunk(class);
        (per_chunk(class).min(self.geo.per_class - first) * block_size(class)).next_multiple_of(PAGE)
    }

    #[cold]
    fn map_chunk(&self, class: u32, k: usize) -> Result<*mut u8, QueueError> {
        let Some(fd) = self.fd() else { unreachable!("only a heap store has no fd") };
        let len = self.chunk_len(class, k);
        let off = self.geo.region(class) + k * per_chunk(class) * block_size(class);
        // SAFETY: a fresh shared mapping of our memfd chosen by the kernel;
        // [off, off + len) lies inside the file (checked in `new`).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                off as u64,
            )
        }
        .map_err(|e| os_error("mmap", format!("{len} bytes of queue blocks at {off}"), e))?;
        Ok(ptr.cast())
    }

    fn words(&self, class: u32) -> &ClassWords {
        &self.header().class[class as usize]
    }

    /// Claims a free block for an item of `len` bytes (`len <= max_len`): a
    /// warm one if any is free; else, when `cold` allows, a cold one (its
    /// pages mapped in at once) or an orphan. `Ok(None)` when none is.
    pub(crate) fn alloc(&self, len: usize, cold: bool, ring: &MpmcRing) -> Result<Option<Held<'_>>, QueueError> {
        let class = class_of(len);
        if block_size(class) < PAGE {
            // Sub-page blocks share pages and are never punched: all warm.
            return match self.claim(class, FREE_COLD) {
                Some(i) => self.held(class, i, false).map(Some),
                None => self.take_orphan(class, ring),
            };
        }
        if let Some(i) = self.claim(class, FREE_HOT) {
            self.words(class).hot.fetch_sub(1, SeqCst);
            self.header().hot_bytes.fetch_sub(block_size(class) as u64, SeqCst);
            return self.held(class, i, false).map(Some);
        }
        if !cold {
            return Ok(None);
        }
        if let Some(i) = self.claim(class, FREE_COLD) {
            let held = self.held(class, i, true)?;
            populate(held.ptr, len, Advice::LinuxPopulateWrite);
            return Ok(Some(held));
        }
        self.take_orphan(class, ring)
    }

    /// Finds a block of `class` in state `want` (FREE_HOT or FREE_COLD),
    /// scanning from the hint, and makes it HELD by this process.
    #[inline]
    fn claim(&self, class: u32, want: u64) -> Option<usize> {
        let words = self.words(class);
        let n = self.geo.per_class;
        // No block from `high` on was ever written, so none there is HOT.
        let end = if want == FREE_HOT { (words.high.load(SeqCst) as usize).min(n) } else { n };
        let start = (words.hint.load(SeqCst) as usize).min(end);
        let me = HELD | current_pid() as u64;
        for i in (start..end).chain(0..start) {
            let state = self.state(class, i);
            if state.load(SeqCst) == want && state.compare_exchange(want, me, SeqCst, SeqCst).is_ok() {
                // Plain loads first: a read-modify-write would take the line
                // from the other side even when it changes nothing.
                if i >= start && words.hint.load(SeqCst) == start as u32 {
                    let _ = words.hint.compare_exchange(start as u32, i as u32 + 1, SeqCst, SeqCst);
                }
                if words.high.load(SeqCst) <= i as u32 {
                    words.high.fetch_max(i as u32 + 1, SeqCst);
                }
                return Some(i);
            }
        }
        None
    }

    /// The recovery path: takes over a block left by a dead process (module doc).
    #[cold]
    fn take_orphan(&self, class: u32, ring: &MpmcRing) -> Result<Option<Held<'_>>, QueueError> {
        let me = current_pid() as u64;
        for i in 0..self.geo.per_class {
            let state = self.state(class, i);
            let w = state.load(SeqCst);
            let orphan = match w >> KIND_SHIFT {
                1 => (w & LOW) != me && !process_alive((w & LOW) as u32),
                2 => ring.position_done(w & LOW),
                _ => false,
            };
            if orphan && state.compare_exchange(w, HELD | me, SeqCst, SeqCst).is_ok() {
                self.words(class).high.fetch_max(i as u32 + 1, SeqCst);
                // Its pages may have been punched: the reader maps them in.
                return self.held(class, i, true).map(Some);
            }
        }
        Ok(None)
    }

    fn held(&self, class: u32, index: usize, fresh: bool) -> Result<Held<'_>, QueueError> {
        match self.map(class, index) {
            Ok(ptr) => Ok(Held { blocks: self, class, index, ptr, fresh, queued: std::cell::Cell::new(false) }),
            Err(e) => {
                self.free(class, index);
                Err(e)
            }
        }
    }

    /// Gives a block this process holds (HELD, or QUEUED while it holds the
    /// slot) back: kept resident while the warm set has room, punched out of
    /// the file otherwise.
    fn free(&self, class: u32, index: usize) {
        let new = if block_size(class) < PAGE {
            FREE_COLD // sub-page blocks share pages: never punched, never counted
        } else if self.keep_hot(class) {
            FREE_HOT
        } else {
            self.punch(class, index);
            FREE_COLD
        };
        self.state(class, index).store(new, SeqCst);
        let words = self.words(class);
        if words.hint.load(SeqCst) > index as u32 {
            words.hint.fetch_min(index as u32, SeqCst);
        }
    }

    /// Counts a freed block of `class` into the warm set if it has room: while
    /// its class has fewer than [`MIN_HOT`] warm blocks, or all of them
    /// together fewer than [`HOT_BYTES`].
    fn keep_hot(&self, class: u32) -> bool {
        let size = block_size(class) as u64;
        let (h, words) = (self.header(), self.words(class));
        let n = words.hot.fetch_add(1, SeqCst);
        let bytes = h.hot_bytes.fetch_add(size, SeqCst) + size;
        if n < MIN_HOT || bytes <= HOT_BYTES {
            return true;
        }
        words.hot.fetch_sub(1, SeqCst);
        h.hot_bytes.fetch_sub(size, SeqCst);
        false
    }

    fn punch(&self, class: u32, index: usize) {
        let size = block_size(class);
        let off = self.geo.region(class) + index * size;
        let Some(fd) = self.fd() else { return };
        // Failure only leaves the pages resident (they are reused or freed with the file).
        let _ =
            rustix::fs::fallocate(fd, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, off as u64, size as u64);
    }

    /// Reads the block a flagged slot at position `pos` refers to (`reference`,
    /// the slot's bytes) in place, then frees it. The caller holds the slot.
    pub(crate) fn read<R>(&self, pos: u64, reference: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, QueueError> {
        let corrupt = |detail: String| QueueError::Ring(mproc_shm::RingError::Corrupt { position: pos, detail });
        let Ok(r) = <[u8; REF_LEN]>::try_from(reference) else {
            return Err(corrupt(format!("a block reference of {} bytes", reference.len())));
        };
        let (class, index, len, fresh) = decode_ref(r);
        if class as usize >= self.geo.classes || index >= self.geo.per_class || len > block_size(class) {
            return Err(corrupt(format!("reference to block {index} of class {class} with {len} bytes")));
        }
        let w = self.state(class, index).load(SeqCst);
        if w != QUEUED | pos {
            return Err(corrupt(format!("block {index} of class {class} in state {w:#x}, not queued for it")));
        }
        let ptr = self.map(class, index)?;
        self.shadow(class, index, false);
        if fresh {
            // Fresh pages are not in this process's page tables yet; warm
            // ones are (a punch would have made the block cold), and asking
            // the kernel to walk them again costs about as much as the copy.
            populate(ptr, len, Advice::LinuxPopulateRead);
        }
        // SAFETY: [1] the block is ours to read: QUEUED(pos) and we hold slot pos;
        // its producer wrote it before publishing the slot, which our claim observed;
        // [2] len <= block size, inside a chunk mapped while `self` lives.
        let r = f(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) });
        self.free(class, index);
        Ok(r)
    }

    /// Gives idle memory back: punches every FREE+HOT block out of the file,
    /// and takes back (and punches) the orphans of dead processes.
    #[cold]
    pub(crate) fn release_idle(&self, ring: &MpmcRing) {
        let h = self.header();
        let me = current_pid() as u64;
        for class in 0..self.geo.classes as u32 {
            let words = self.words(class);
            let high = (words.high.load(SeqCst) as usize).min(self.geo.per_class);
            for i in 0..high {
                let state = self.state(class, i);
                let w = state.load(SeqCst);
                let take = match w >> KIND_SHIFT {
                    0 => w == FREE_HOT,
                    1 => (w & LOW) != me && !process_alive((w & LOW) as u32),
                    2 => ring.position_done(w & LOW),
                    _ => false,
                };
                if take && state.compare_exchange(w, HELD | me, SeqCst, SeqCst).is_ok() {
                    if block_size(class) >= PAGE {
                        self.punch(class, i);
                    }
                    state.store(FREE_COLD, SeqCst);
                    if w == FREE_HOT {
                        words.hot.fetch_sub(1, SeqCst);
                        h.hot_bytes.fetch_sub(block_size(class) as u64, SeqCst);
                    }
                    words.hint.fetch_min(i as u32, SeqCst);
                }
            }
        }
        self.release_tables();
    }

    /// Punches out the pages of the state tables whose blocks are all free and
    /// cold: the page comes back as zeros, which read as FREE (cold). Each word
    /// of a page is claimed (HELD by this process) before the punch, so that no
    /// other process takes a block while the page under its word is replaced;
    /// a page with a block in use is left alone.
    #[cold]
    fn release_tables(&self) {
        let Some(fd) = self.fd() else { return };
        const WORDS: usize = PAGE / 8;
        let (per_class, total) = (self.geo.per_class, self.geo.classes * self.geo.per_class);
        let mut next = 0; // the first table page not yet looked at
        for class in 0..self.geo.classes {
            let high = (self.words(class as u32).high.load(SeqCst) as usize).min(per_class);
            if high == 0 {
                continue;
            }
            let (first, last) = ((class * per_class) / WORDS, (class * per_class + high - 1) / WORDS);
            for page in first.max(next)..=last {
                let words = page * WORDS..((page + 1) * WORDS).min(total);
                let me = HELD | current_pid() as u64;
                let claimed = words
                    .clone()
                    .take_while(|&i| self.word(i).compare_exchange(FREE_COLD, me, SeqCst, SeqCst).is_ok())
                    .count();
                let off = (self.geo.tables + page * PAGE) as u64;
                let punched = claimed == words.len()
                    && rustix::fs::fallocate(
                        fd,
                        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                        off,
                        PAGE as u64,
                    )
                    .is_ok();
                if !punched {
                    words.take(claimed).for_each(|i| self.word(i).store(FREE_COLD, SeqCst));
                }
            }
            next = last + 1;
        }
    }
}

/// How long a producer of an item of `len` bytes that finds no warm block
/// waits for a consumer to give one back before it takes a cold one: about
/// what the cold block would cost (zeroing and mapping in its pages, at some
/// 8 GB/s), so that pacing at most doubles a put that waits in vain. `None`
/// for items whose cold blocks cost too little to wait for.
pub(crate) fn pace(len: usize) -> Option<std::time::Duration> {
    (len >= LARGE).then(|| std::time::Duration::from_nanos((len >> 3) as u64))
}

/// Hooks for tests and loom models (see `ipc/tests/loom_queue.rs`).
impl Blocks {
    /// Blocks in any state but FREE and cold: in use, kept warm, or orphaned.
    pub(crate) fn not_cold(&self) -> usize {
        (0..self.geo.classes as u32)
            .map(|c| {
                let high = (self.words(c).high.load(SeqCst) as usize).min(self.geo.per_class);
                (0..high).filter(|&i| self.state(c, i).load(SeqCst) != FREE_COLD).count()
            })
            .sum()
    }

    /// Makes block `index` of class 0 look held by a process that died
    /// writing it (HELD(pid of the dead)).
    #[cfg(loom)]
    pub(crate) fn forge_dead_holder(&self, index: usize) {
        self.state(0, index).store(HELD | mproc_shm::sys::LOOM_DEAD_PID as u64, SeqCst);
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        for class in 0..self.geo.classes as u32 {
            let table = self.chunks[class as usize].load(Acquire);
            if table.is_null() {
                continue;
            }
            for (k, entry) in self.chunk_table(class).iter().enumerate() {
                let base = entry.load(Acquire);
                if !base.is_null() {
                    // SAFETY: our mapping of chunk k, made in `map_chunk`; no block
                    // borrowed from it outlives `self`.
                    let _ = unsafe { rustix::mm::munmap(base.cast(), self.chunk_len(class, k)) };
                }
            }
            let n = self.geo.per_class.div_ceil(per_chunk(class));
            // SAFETY: the leaked box of `chunk_table`, freed once, here.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(table, n)) });
        }
    }
}

impl Held<'_> {
    /// The block's bytes (at least the item's length; stale data).
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        self.blocks.shadow(self.class, self.index, true);
        // SAFETY: the block is ours (HELD(me)) and lies in the chunk we keep mapped.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), block_size(self.class)) }
    }

    /// Hands the block to the slot at `pos` (which the caller holds, WRITING)
    /// and writes the slot's reference to it into `slot`.
    pub(crate) fn queue(&self, pos: u64, len: usize, slot: &mut [u8]) -> usize {
        slot[..REF_LEN].copy_from_slice(&encode_ref(self.class, self.index, len, self.fresh));
        self.blocks.state(self.class, self.index).store(QUEUED | pos, SeqCst);
        self.queued.set(true);
        REF_LEN
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.queued.get() {
            self.blocks.free(self.class, self.index);
        }
    }
}

/// A slot's reference to a block: class (byte 0), fresh (byte 1), index
/// (bytes 4..8), length (bytes 8..16), little-endian.
fn encode_ref(class: u32, index: usize, len: usize, fresh: bool) -> [u8; REF_LEN] {
    let mut r = [0u8; REF_LEN];
    r[0] = class as u8;
    r[1] = fresh as u8;
    r[4..8].copy_from_slice(&(index as u32).to_le_bytes());
    r[8..].copy_from_slice(&(len as u64).to_le_bytes());
    r
}

fn decode_ref(r: [u8; REF_LEN]) -> (u32, usize, usize, bool) {
    let index = u32::from_le_bytes(r[4..8].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(r[8..].try_into().expect("8 bytes"));
    (r[0] as u32, index as usize, usize::try_from(len).unwrap_or(usize::MAX), r[1] != 0)
}

/// A failed system call on the queue's memory.
pub(crate) fn os_error(op: &'static str, what: impl Into<String>, e: rustix::io::Errno) -> ShmError {
    ShmError::Os { op, what: what.into(), source: e.into() }
}

/// Maps in the pages of a block's first `len` bytes with one `madvise` call
/// instead of a page fault per page (`MADV_POPULATE_WRITE` before writing a
/// block whose pages were punched out, `MADV_POPULATE_READ` before reading one
/// this process may not have mapped yet): below 64 KiB the faults cost less
/// than the call. A kernel without these calls (before 5.14) just faults.
#[inline]
fn populate(ptr: NonNull<u8>, len: usize, advice: Advice) {
    if len < LARGE || cfg!(loom) {
        return;
    }
    // SAFETY: the range lies in a block of a chunk mapped while the store lives
    // (blocks of 64 KiB and more are whole, page-aligned pages); populating
    // changes no byte of it.
    let _ = unsafe { rustix::mm::madvise(ptr.as_ptr().cast(), len.next_multiple_of(PAGE), advice) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_fit_their_items_tightly() {
        for class in 0..MAX_CLASSES as u32 {
            let size = block_size(class);
            assert_eq!(class_of(size), class, "block of {size} bytes");
            assert_eq!(class_of(size + 1), class + 1, "{} bytes", size + 1);
            if size >= POW2_TOP {
                assert_eq!(size % PAGE, 0, "block of {size} bytes is not whole pages");
            }
        }
        assert_eq!(block_size(class_of((1 << 20) + 3)), 5 << 18);
        assert_eq!(classes_for(1 << 30), MAX_CLASSES);
        assert_eq!(block_size(MAX_CLASSES as u32 - 1), 1 << 30);
        for len in [1, 64, 65, 4097, 16 << 10, (16 << 10) + 1, 100_000, (64 << 20) + 5] {
            let c = class_of(len);
            assert!(block_size(c) >= len && (c == 0 || block_size(c - 1) < len), "{len} bytes in class {c}");
            assert!(block_size(c) < len.max(64) * 2 && (len <= POW2_TOP || block_size(c) * 4 < len * 5));
        }
    }

    #[test]
    fn pacing_waits_about_what_a_cold_block_costs() {
        // Zeroing and faulting in a cold block runs at some 8 GB/s: 1 MiB ≈ 131 µs.
        assert_eq!(pace(LARGE - 1), None);
        assert_eq!(pace(LARGE), Some(std::time::Duration::from_nanos(8 << 10)));
        assert_eq!(pace(1 << 20), Some(std::time::Duration::from_nanos(1 << 17)));
        assert_eq!(pace(16 << 20), Some(std::time::Duration::from_micros(2097) + std::time::Duration::from_nanos(152)));
    }
}
