//! Queues between processes: [`Queue`], [`JoinableQueue`] and [`SimpleQueue`],
//! Python's `multiprocessing.Queue`, `JoinableQueue` and `SimpleQueue`.
//!
//! Items are any `T: Serialize + DeserializeOwned`, encoded with postcard (not
//! pickle) into the slots of a lock-free, crash-safe MPMC ring in shared memory
//! ([`mproc_shm::MpmcRing`]); blocked callers sleep on futex words next to it
//! (see `raw.rs` for the protocol). A process SIGKILLed in the middle of a put
//! or a get never wedges the queue and never makes another process receive a
//! torn item: at most its own in-flight item is lost.
//!
//! - `raw.rs`: the untyped core (control block, ring, waiting).
//! - `blocks.rs`: the block store for items larger than a slot.
//! - `bounded.rs`: [`Queue`]; `joinable.rs`: [`JoinableQueue`]; `simple.rs`: [`SimpleQueue`].
//! - `error.rs`: [`QueueError`], [`PutError`].
//!
//! # Sizes and memory
//! A queue holds at most `maxsize` items (default [`DEFAULT_MAXSIZE`]), each of
//! any size up to a cap (default [`DEFAULT_MAX_ITEM`], 64 MiB, the frame cap of a
//! `Connection`; [`QueueBuilder::max_item_bytes`] sets it, up to
//! [`MAX_ITEM_CAP`]). Only an item over the cap is refused, with
//! [`QueueError::TooLarge`] naming both sizes. For byte payloads prefer
//! [`Bytes`](crate::Bytes) to `Vec<u8>`, and [`PodVec`](crate::PodVec) to
//! `Vec<f64>` and kin: serde encodes a `Vec` element by element, these as one
//! copy.
//!
//! Each queue is one memfd (one fd) of its own, laid out as:
//!
//! - a control page (futex words, the block store's counters);
//! - the ring: one slot per item place (`maxsize` rounded up to a power of
//!   two), the slots sharing 256 KiB: 64 B each in a default queue, larger in a
//!   queue of a smaller `maxsize` (16 KiB from 64 places down; see
//!   [`QueueBuilder::slot_bytes`]). An item that fits its slot ([`DEFAULT_SLOT_BYTES`],
//!   48 encoded bytes, in a default queue) is encoded straight into it and
//!   decoded straight out of it: one copy each way;
//! - a store of blocks (`blocks.rs`) for larger items: size classes (powers of
//!   two up to 16 KiB, then four per octave, so a block is at most a quarter
//!   larger than its item) up to the cap, `maxsize` + 64 blocks per class, in
//!   the sparse part of the file that each process maps in chunks as it first
//!   needs them.
//!   A large item is encoded into a block before its slot is claimed, so
//!   copying it never holds up the items behind it; the slot then carries a
//!   16-byte reference, and the consumer decodes in place from the block.
//!
//! Cost model. The file is sparse, so a page costs memory only once written:
//! a new default queue holds one page (4 KiB; measured with
//! [`Queue::shared_memory_bytes`]), and 1,000 of them add about 4 MiB of RSS and
//! 1,000 fds. The ring's slots become resident as the ring turns, 256 KiB at
//! most for small items (1 MiB for a default [`SimpleQueue`]'s 16384 slots;
//! more in a small queue's large slots while they hold medium items). Blocks
//! are resident while they hold an item. A freed block of a page or more is
//! punched out of the file (`fallocate(FALLOC_FL_PUNCH_HOLE)`) unless the
//! queue's warm set has room for it: up to 32 MiB of recently freed blocks, and
//! in any case 4 blocks of each size class (so 4 × 80 MiB for a stream of
//! 64 MiB items). A getter that has waited [`IDLE_RELEASE`] (100 ms) on an
//! empty queue releases the warm set, and the pages of the block table, too.
//! So a queue that held 1 GiB and was drained is back to its ring and its warm
//! set at once, and to its ring alone once idle. Blocks under a page share
//! pages and stay (`maxsize` × 2 KiB per class at most). Address space: each
//! chunk mapping covers 64 blocks of a class (up to 5 GiB of address space, no
//! memory, for the 80 MiB class).
//!
//! Why blocks in the queue's own memfd:
//!
//! - A segment per large item (memfd or `/dev/shm` name) faults in and zeroes
//!   fresh pages on every put (256 faults per MiB) and maps them anew on every
//!   get; passing
//!   a memfd needs a socket beside the queue (another fd) or `pidfd_getfd`
//!   (ptrace rights), and a named one needs the resource tracker. Blocks reused
//!   warm avoid the faults, and living in the queue's own file they need no
//!   names, no tracker and no extra fd: the kernel frees everything when the
//!   last process holding the queue goes. A cold block (punched, or never
//!   used) is mapped in with one `madvise(MADV_POPULATE_WRITE)` rather than a
//!   fault per page.
//! - A byte stream under the queue's locks (CPython's pipe with a feeder
//!   thread) bounds memory but makes a put of an item larger than the stream
//!   wait for a consumer, and serialises producers; here a put returns once its
//!   item is in the queue, as a put of a small item does.
//! - A warm large item costs one copy in (encoding into the block) and one out
//!   (decoding from it) plus the consumer's allocation of the decoded value:
//!   what the `queue_large_*` benches set against the cross-process copy limit
//!   (two processes, an SPSC ring, `memcpy` in and out). A cold block costs
//!   more than the copy (the kernel zeroes its pages, both processes map them,
//!   the punch unmaps them again): profiled, a producer running ahead through
//!   cold blocks spent 57 % of its time in `madvise` and the punches 15 %. So a
//!   producer of large items (64 KiB and up) paces itself: it takes a warm
//!   block first, and while a consumer is taking items it keeps at most two
//!   queued ahead of it, or waits for a block to come back when none is warm —
//!   in either case at most about what a cold block would cost, after which it
//!   goes on. A stream thus cycles through a few warm blocks, as an SPSC ring of
//!   a few slots does, and a burst of puts with no consumer still returns at
//!   once.
//!
//! Handles are cheap clones. Move one into a forked child's closure, or send it
//! to a spawned child with [`mproc_shm::Share`]; the token names the queue's kind
//! and item type, and importing it as another kind or type is an error. As with
//! every arena object, keep the creating process's handle alive while children
//! use the queue.
//!
//! ```
//! use mproc_ipc::Queue;
//! let q = Queue::<(u32, String)>::new().unwrap();
//! q.put((1, "one".into())).unwrap();
//! assert_eq!(q.qsize(), 1);
//! assert_eq!(q.get().unwrap(), (1, "one".to_string()));
//! assert!(q.try_get().unwrap_err().is_empty());
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

mod blocks;
mod bounded;
mod error;
mod joinable;
mod raw;
mod simple;

pub use bounded::Queue;
pub use error::{PutError, QueueError};
pub use joinable::JoinableQueue;
pub use raw::{QueueToken, IDLE_RELEASE, MAX_ITEM_CAP, WAIT_CAP};
pub use simple::SimpleQueue;

use raw::{Kind, RawQueue, Until};

#[cfg(feature = "tokio")]
#[path = "../asyncio/queue.rs"]
mod asyncio;

/// The default bound of a [`Queue`] or [`JoinableQueue`], in items.
pub const DEFAULT_MAXSIZE: usize = 4096;
/// The default bound of a [`SimpleQueue`], in items (it has no `full`/`Full`:
/// a put into a full one waits).
pub const SIMPLE_MAXSIZE: usize = 16384;
/// The default cap on one item, in encoded bytes: the frame cap of a
/// [`Connection`](crate::Connection) ([`DEFAULT_MAX_FRAME`](crate::DEFAULT_MAX_FRAME), 64 MiB).
pub const DEFAULT_MAX_ITEM: usize = 64 << 20;
/// The largest item kept in a ring slot of a default queue, in encoded bytes:
/// with the slot's 16-byte header, one slot is one 64-byte cache line, and the
/// 4096 slots of a default queue are 256 KiB. A queue of a smaller `maxsize`
/// gets larger slots in the same 256 KiB ([`QueueBuilder::slot_bytes`]).
pub const DEFAULT_SLOT_BYTES: usize = 48;

/// Bytes of slots a ring holds at most once small items have turned it over
/// (the default slot size keeps every ring within it).
const RING_BYTES: usize = 256 << 10;
/// The largest item a slot takes by default, in the rings of 64 slots or
/// fewer, whose slots are each a page or more apart.
const MAX_AUTO_SLOT: usize = 16 << 10;
/// A slot's header in the ring.
const SLOT_HEADER: usize = 16;

/// The default slot size for a ring of `maxsize` items: slots share
/// [`RING_BYTES`] (48 B for 4096 slots, 1008 B for 256, 4080 B for 64); from
/// a page apart on, a small item touches one page of its slot however large the
/// slot, so rings of 64 slots or fewer take items up to [`MAX_AUTO_SLOT`] in
/// their slots at the same cost.
fn auto_slot_bytes(maxsize: usize) -> usize {
    let slots = maxsize.max(1).next_power_of_two();
    if slots <= RING_BYTES / 4096 {
        MAX_AUTO_SLOT
    } else {
        (RING_BYTES / slots).saturating_sub(SLOT_HEADER).max(DEFAULT_SLOT_BYTES)
    }
}

/// Builds a queue with chosen sizes.
///
/// ```
/// use mproc_ipc::{QueueBuilder, QueueError};
/// let q = QueueBuilder::new().maxsize(3).max_item_bytes(64).build::<Vec<u8>>().unwrap();
/// assert_eq!((q.maxsize(), q.max_item_bytes()), (3, 64));
/// let err = q.try_put(vec![0; 100]).unwrap_err();
/// assert!(matches!(err.error(), QueueError::TooLarge { size: 101, limit: 64 }));
/// assert!(matches!(QueueBuilder::new().maxsize(0).build::<u8>(), Err(QueueError::BadSize { value: 0, .. })));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBuilder {
    maxsize: Option<usize>,
    max_item: usize,
    slot_bytes: Option<usize>,
}

impl Default for QueueBuilder {
    fn default() -> Self {
        QueueBuilder::new()
    }
}

impl QueueBuilder {
    /// Default sizes: [`DEFAULT_MAXSIZE`] items ([`SIMPLE_MAXSIZE`] for a
    /// `SimpleQueue`) of up to [`DEFAULT_MAX_ITEM`] bytes, those of up to
    /// [`DEFAULT_SLOT_BYTES`] kept in ring slots (more in a queue of a smaller
    /// `maxsize`: see [`slot_bytes`](Self::slot_bytes)).
    pub fn new() -> QueueBuilder {
        QueueBuilder { maxsize: None, max_item: DEFAULT_MAX_ITEM, slot_bytes: None }
    }

    /// The bound in items, `1..=`[`mproc_shm::ring::mpmc::MAX_SLOTS`]. Python's
    /// `maxsize <= 0` (unbounded) has no equivalent: zero is [`QueueError::BadSize`].
    pub fn maxsize(mut self, items: usize) -> QueueBuilder {
        self.maxsize = Some(items);
        self
    }

    /// A cap on one encoded item, in bytes, `1..=`[`MAX_ITEM_CAP`] (default
    /// [`DEFAULT_MAX_ITEM`]): a larger item is refused with
    /// [`QueueError::TooLarge`]. Only a cap: no memory is reserved for it.
    pub fn max_item_bytes(mut self, bytes: usize) -> QueueBuilder {
        self.max_item = bytes;
        self
    }

    /// The largest encoded item kept in a ring slot, in bytes,
    /// `1..=`[`mproc_shm::ring::mpmc::MAX_MESSAGE`]; larger items go to
    /// blocks (see the module doc). Values below 16 count as 16: a slot must
    /// hold a reference to a block. The ring's slots take `maxsize` × this
    /// (plus 16, rounded up to 64) bytes of address space, resident once used:
    /// raise it for a stream of medium items that should each take one copy
    /// in and out with no block between.
    ///
    /// By default the slots of a ring share 256 KiB: [`DEFAULT_SLOT_BYTES`]
    /// (48) for the default 4096 items, 1008 for a `maxsize` of 256, 4080 for
    /// 64; rings of 64 slots or fewer have slots a page or more apart, where a
    /// small item touches one page whatever the slot's size, and take items of
    /// up to 16 KiB in their slots.
    ///
    /// ```
    /// use mproc_ipc::QueueBuilder;
    /// assert_eq!(QueueBuilder::new().build::<u8>()?.slot_bytes(), 48);
    /// assert_eq!(QueueBuilder::new().maxsize(256).build::<u8>()?.slot_bytes(), 1008);
    /// assert_eq!(QueueBuilder::new().maxsize(64).build::<u8>()?.slot_bytes(), 16 << 10);
    /// assert_eq!(QueueBuilder::new().maxsize(64).slot_bytes(100).build::<u8>()?.slot_bytes(), 100);
    /// # Ok::<(), mproc_ipc::QueueError>(())
    /// ```
    pub fn slot_bytes(mut self, bytes: usize) -> QueueBuilder {
        self.slot_bytes = Some(bytes);
        self
    }

    fn raw<T>(&self, kind: Kind, default_max: usize) -> Result<RawQueue, QueueError> {
        let maxsize = self.maxsize.unwrap_or(default_max);
        RawQueue::new(kind, maxsize, self.max_item, self.slot_bytes_for(maxsize), std::any::type_name::<T>())
    }

    /// The slot size: as chosen, else [`auto_slot_bytes`].
    fn slot_bytes_for(&self, maxsize: usize) -> usize {
        self.slot_bytes.unwrap_or_else(|| auto_slot_bytes(maxsize))
    }

    /// Builds a [`Queue`].
    pub fn build<T: Serialize + DeserializeOwned>(&self) -> Result<Queue<T>, QueueError> {
        Ok(Queue::from_typed(Typed::new(self.raw::<T>(Kind::Queue, DEFAULT_MAXSIZE)?)))
    }

    /// Builds a [`JoinableQueue`].
    pub fn build_joinable<T: Serialize + DeserializeOwned>(&self) -> Result<JoinableQueue<T>, QueueError> {
        Ok(JoinableQueue::from_typed(Typed::new(self.raw::<T>(Kind::Joinable, DEFAULT_MAXSIZE)?)))
    }

    /// Builds a [`SimpleQueue`].
    pub fn build_simple<T: Serialize + DeserializeOwned>(&self) -> Result<SimpleQueue<T>, QueueError> {
        Ok(SimpleQueue::from_typed(Typed::new(self.raw::<T>(Kind::Simple, SIMPLE_MAXSIZE)?)))
    }

    /// A [`Queue`] on the heap for loom models (not shareable between processes).
    #[cfg(loom)]
    pub(crate) fn build_heap<T: Serialize + DeserializeOwned>(&self) -> Result<Queue<T>, QueueError> {
        let maxsize = self.maxsize.unwrap_or(DEFAULT_MAXSIZE);
        let raw = RawQueue::new_heap(Kind::Queue, maxsize, self.max_item, self.slot_bytes_for(maxsize))?;
        Ok(Queue::from_typed(Typed::new(raw)))
    }

    /// A [`JoinableQueue`] on the heap for loom models.
    #[cfg(loom)]
    pub(crate) fn build_joinable_heap<T: Serialize + DeserializeOwned>(&self) -> Result<JoinableQueue<T>, QueueError> {
        let maxsize = self.maxsize.unwrap_or(DEFAULT_MAXSIZE);
        let raw = RawQueue::new_heap(Kind::Joinable, maxsize, self.max_item, self.slot_bytes_for(maxsize))?;
        Ok(JoinableQueue::from_typed(Typed::new(raw)))
    }

    /// A [`SimpleQueue`] on the heap for loom models.
    #[cfg(loom)]
    pub(crate) fn build_simple_heap<T: Serialize + DeserializeOwned>(&self) -> Result<SimpleQueue<T>, QueueError> {
        let maxsize = self.maxsize.unwrap_or(SIMPLE_MAXSIZE);
        let raw = RawQueue::new_heap(Kind::Simple, maxsize, self.max_item, self.slot_bytes_for(maxsize))?;
        Ok(SimpleQueue::from_typed(Typed::new(raw)))
    }
}

/// Hooks for tests and loom models: what the block store holds; forging
/// what a killed process leaves behind in a heap queue whose items go to
/// blocks, and the idle release.
pub(crate) mod testing {
    use super::Queue;

    /// Blocks of the queue in use, kept warm or orphaned (0 for a drained
    /// queue once a getter has idled on it).
    pub fn blocks_not_cold<T>(q: &Queue<T>) -> usize {
        q.q.raw.block_store().map_or(0, |b| b.not_cold())
    }

    /// Makes block `index` of class 0 look held by a producer that died
    /// writing it.
    #[cfg(loom)]
    pub fn forge_dead_block_writer<T>(q: &Queue<T>, index: usize) {
        q.q.raw.block_store().expect("a queue whose items go to blocks").forge_dead_holder(index);
    }

    /// Makes the ring slot at `index` (lap 0) look claimed by a consumer
    /// that died reading it.
    #[cfg(loom)]
    pub fn forge_dead_reader<T>(q: &Queue<T>, index: usize) {
        let word = 3 << 30 | mproc_shm::sys::LOOM_DEAD_PID as u64; // READING(lap 0, dead)
        mproc_shm::__testing::slot_state(q.q.raw.ring(), index).store(word, mproc_sync::primitive::Ordering::SeqCst);
    }

    /// What a getter idle on the queue for [`IDLE_RELEASE`](super::IDLE_RELEASE)
    /// does: releases warm blocks and takes back orphans.
    #[cfg(loom)]
    pub fn release_idle<T>(q: &Queue<T>) {
        q.q.raw.release_idle();
    }
}

/// The typed layer shared by the three queues: encoding, decoding and the
/// per-handle `closed` flag.
struct Typed<T> {
    raw: RawQueue,
    /// Set by `close` on this handle (shared by its clones in this process).
    closed: Arc<AtomicBool>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        Typed { raw: self.raw.clone(), closed: self.closed.clone(), _t: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned> Typed<T> {
    fn new(raw: RawQueue) -> Typed<T> {
        Typed { raw, closed: Arc::new(AtomicBool::new(false)), _t: PhantomData }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Encodes `item` straight into a free slot: one copy, no staging buffer.
    #[inline]
    fn put(&self, item: T, until: Until) -> Result<(), PutError<T>> {
        self.put_ref(&item, until).map_err(|e| PutError::new(e, item))
    }

    #[inline]
    fn put_ref(&self, item: &T, until: Until) -> Result<(), QueueError> {
        if self.is_closed() {
            return Err(QueueError::Closed);
        }
        let encode_error = |source| QueueError::Encode { type_name: std::any::type_name::<T>(), source };
        // Sized first (a pass that writes nothing), so that an item that cannot
        // fit is refused before it claims a slot: a claimed slot that is then
        // given up would hold a place in the queue until consumers pass it.
        let size = postcard::serialize_with_flavor::<T, postcard::ser_flavors::Size, usize>(
            item,
            postcard::ser_flavors::Size::default(),
        )
        .map_err(encode_error)?;
        let encode =
            |slot: &mut [u8]| match postcard::serialize_with_flavor(item, crate::payload::SlotWriter::new(slot)) {
                Ok(used) => Ok(used),
                // Only a `Serialize` that writes differently on a second pass gets here.
                Err(source) => Err(encode_error(source)),
            };
        let put = self.raw.put(encode, size, until, &|| self.is_closed());
        if put.is_err() {
            // Encoded (sized) but not queued: the ShmBoxes in it stay the sender's.
            crate::handoff::reclaim(item);
        }
        put
    }

    /// Hands the oldest item's encoded bytes to `f` in place (its slot or its
    /// block), then frees them.
    fn get_bytes<R>(&self, until: Until, f: impl FnOnce(&[u8]) -> R) -> Result<R, QueueError> {
        if self.is_closed() {
            return Err(QueueError::Closed);
        }
        let f = std::cell::Cell::new(Some(f));
        // `try_pop` calls the decoder only for the item it returns: once.
        let read = |msg: &[u8]| Ok(f.take().map(|f| f(msg)));
        match self.raw.get(read, until, &|| self.is_closed())? {
            Some(r) => Ok(r),
            None => unreachable!("the reader runs once per item taken"),
        }
    }

    /// Decodes the oldest item in place, from its slot.
    #[inline]
    fn get(&self, until: Until) -> Result<T, QueueError> {
        if self.is_closed() {
            return Err(QueueError::Closed);
        }
        let decode = |msg: &[u8]| {
            crate::payload::clear_decode_error();
            postcard::from_bytes(msg).map_err(|source| decode_error::<T>(msg.len(), source))
        };
        self.raw.get(decode, until, &|| self.is_closed())
    }

    fn export(&self, exports: &mut mproc_shm::Exports) -> mproc_shm::Result<QueueToken> {
        self.raw.export(exports, std::any::type_name::<T>())
    }

    fn import(token: QueueToken, kind: Kind) -> mproc_shm::Result<Typed<T>> {
        Ok(Typed::new(RawQueue::import(token, kind, std::any::type_name::<T>())?))
    }
}

/// Why `len` encoded bytes did not decode as a `T`: the typed cause a
/// [`PodVec`](crate::PodVec) recorded ([`QueueError::Payload`]), else
/// postcard's error.
#[cold]
fn decode_error<T>(len: usize, source: postcard::Error) -> QueueError {
    match crate::payload::take_decode_error() {
        Some(e) => QueueError::Payload(e),
        None => QueueError::Decode { type_name: std::any::type_name::<T>(), len, source },
    }
}

/// The methods every queue has, delegated to its `Typed` field `q`.
macro_rules! common_methods {
    () => {
        /// Takes the oldest item, waiting as long as it takes. [`QueueError::Closed`]
        /// after [`close`](Self::close); [`QueueError::Decode`] if the item does
        /// not decode as `T` ([`QueueError::Payload`] if it is a `PodVec` of
        /// another element type).
        pub fn get(&self) -> Result<T, QueueError> {
            self.q.get(crate::queue::Until::Forever)
        }

        /// Takes the oldest item, waiting at most `timeout`;
        /// [`QueueError::Timeout`] if none came. Python's `get(True, timeout)`
        /// (which raises `queue.Empty`).
        pub fn get_timeout(&self, timeout: std::time::Duration) -> Result<T, QueueError> {
            self.q.get(crate::queue::Until::after(timeout)).map_err(|e| e.timed_out(timeout))
        }

        /// Takes the oldest item if one is ready; [`QueueError::Empty`] otherwise.
        /// Python's `get(False)` / `get_nowait()`.
        #[doc(alias = "get_nowait")]
        pub fn try_get(&self) -> Result<T, QueueError> {
            self.q.get(crate::queue::Until::Now)
        }

        /// Whether the queue holds no item (a snapshot: other processes may change
        /// it at once).
        pub fn empty(&self) -> bool {
            self.q.raw.len() == 0
        }

        /// Closes this handle (and its clones in this process): later puts and
        /// gets through it fail with [`QueueError::Closed`], and calls blocked in
        /// them return that within [`WAIT_CAP`](crate::queue::WAIT_CAP). Other
        /// processes' handles are unaffected, as in Python.
        pub fn close(&self) {
            self.q.close()
        }

        /// Whether [`close`](Self::close) was called on this handle.
        pub fn is_closed(&self) -> bool {
            self.q.is_closed()
        }

        /// The bound, in items.
        pub fn maxsize(&self) -> usize {
            self.q.raw.maxsize()
        }

        /// The cap on one encoded item, in bytes.
        pub fn max_item_bytes(&self) -> usize {
            self.q.raw.max_item()
        }

        /// The largest encoded item kept in a ring slot; larger ones go to blocks.
        pub fn slot_bytes(&self) -> usize {
            self.q.raw.slot_bytes()
        }

        /// Bytes of shared memory the queue holds now, as its memfd reports them
        /// (`fstat`): the control page, the ring slots used so far, and the
        /// blocks of large items queued or kept warm for reuse. A fresh default
        /// queue holds one page.
        pub fn shared_memory_bytes(&self) -> usize {
            self.q.raw.shared_bytes()
        }
    };
}

/// The bounded-queue methods of `Queue` and `JoinableQueue`.
macro_rules! bounded_methods {
    () => {
        /// Puts `item`, waiting for room as long as it takes. Fails with
        /// [`QueueError::Closed`], [`QueueError::TooLarge`] or
        /// [`QueueError::Encode`], giving the item back.
        pub fn put(&self, item: T) -> Result<(), PutError<T>> {
            self.q.put(item, crate::queue::Until::Forever)
        }

        /// Puts a copy of `item` (encoded from the reference: the caller keeps
        /// it, as Python's `put` leaves the object to its caller), waiting for
        /// room as long as it takes. Fails as [`put`](Self::put) does.
        pub fn put_ref(&self, item: &T) -> Result<(), QueueError> {
            self.q.put_ref(item, crate::queue::Until::Forever)
        }

        /// Puts `item`, waiting at most `timeout` for room;
        /// [`QueueError::Timeout`] (with the item given back) if none came.
        /// Python's `put(item, True, timeout)` (which raises `queue.Full`).
        pub fn put_timeout(&self, item: T, timeout: std::time::Duration) -> Result<(), PutError<T>> {
            self.q.put(item, crate::queue::Until::after(timeout)).map_err(|e| e.timed_out(timeout))
        }

        /// Puts `item` if there is room now; [`QueueError::Full`] otherwise.
        /// Python's `put(item, False)` / `put_nowait`.
        #[doc(alias = "put_nowait")]
        pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
            self.q.put(item, crate::queue::Until::Now)
        }

        /// The number of items in the queue (a snapshot). Python's `qsize()`.
        pub fn qsize(&self) -> usize {
            self.q.raw.len()
        }

        /// Whether the queue holds `maxsize` items (a snapshot).
        pub fn full(&self) -> bool {
            self.q.raw.len() >= self.q.raw.maxsize()
        }
    };
}

/// `Debug`, `Clone` and [`mproc_shm::Share`] for a queue type with a `q` field.
macro_rules! queue_impls {
    ($ty:ident, $kind:expr) => {
        impl<T> Clone for $ty<T> {
            fn clone(&self) -> Self {
                $ty { q: self.q.clone() }
            }
        }

        impl<T> std::fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("item", &std::any::type_name::<T>())
                    .field("len", &self.q.raw.len())
                    .field("maxsize", &self.q.raw.maxsize())
                    .field("max_item_bytes", &self.q.raw.max_item())
                    .field("closed", &self.q.closed.load(std::sync::atomic::Ordering::Relaxed))
                    .finish()
            }
        }

        impl<T: serde::Serialize + serde::de::DeserializeOwned> mproc_shm::Share for $ty<T> {
            type Token = crate::queue::QueueToken;

            fn export(&self, exports: &mut mproc_shm::Exports) -> mproc_shm::Result<Self::Token> {
                self.q.export(exports)
            }

            fn import(token: Self::Token) -> mproc_shm::Result<Self> {
                Ok($ty::from_typed(crate::queue::Typed::import(token, $kind)?))
            }
        }
    };
}

use {bounded_methods, common_methods, queue_impls};
