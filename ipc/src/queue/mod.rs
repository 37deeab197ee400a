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
//! - `bounded.rs`: [`Queue`]; `joinable.rs`: [`JoinableQueue`]; `simple.rs`: [`SimpleQueue`].
//! - `error.rs`: [`QueueError`], [`PutError`].
//!
//! Sizes: a queue holds at most `maxsize` items (default [`DEFAULT_MAXSIZE`]), each
//! at most `max_item_bytes` once encoded (default [`DEFAULT_MAX_ITEM`]); memory is
//! reserved up front for `maxsize` slots of `max_item_bytes`. A larger item is
//! refused with [`QueueError::TooLarge`] naming both sizes: items are never split
//! into chunks. For byte payloads prefer `serde_bytes::ByteBuf` to `Vec<u8>`:
//! serde encodes a `Vec<u8>` byte by byte, a `ByteBuf` as one copy.
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

mod bounded;
mod error;
mod joinable;
mod raw;
mod simple;

pub use bounded::Queue;
pub use error::{PutError, QueueError};
pub use joinable::JoinableQueue;
pub use raw::{QueueToken, WAIT_CAP};
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
/// The default largest item, in encoded bytes: with the slot's 16-byte header,
/// one slot is 1 KiB.
pub const DEFAULT_MAX_ITEM: usize = 1008;

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
}

impl Default for QueueBuilder {
    fn default() -> Self {
        QueueBuilder::new()
    }
}

impl QueueBuilder {
    /// Default sizes: [`DEFAULT_MAXSIZE`] items ([`SIMPLE_MAXSIZE`] for a
    /// `SimpleQueue`) of up to [`DEFAULT_MAX_ITEM`] bytes.
    pub fn new() -> QueueBuilder {
        QueueBuilder { maxsize: None, max_item: DEFAULT_MAX_ITEM }
    }

    /// The bound in items, `1..=`[`mproc_shm::ring::mpmc::MAX_SLOTS`]. Python's
    /// `maxsize <= 0` (unbounded) has no equivalent: zero is [`QueueError::BadSize`].
    pub fn maxsize(mut self, items: usize) -> QueueBuilder {
        self.maxsize = Some(items);
        self
    }

    /// The largest encoded item, in bytes, `1..=`[`mproc_shm::ring::mpmc::MAX_MESSAGE`].
    pub fn max_item_bytes(mut self, bytes: usize) -> QueueBuilder {
        self.max_item = bytes;
        self
    }

    fn raw<T>(&self, kind: Kind, default_max: usize) -> Result<RawQueue, QueueError> {
        RawQueue::new(kind, self.maxsize.unwrap_or(default_max), self.max_item, std::any::type_name::<T>())
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
    #[doc(hidden)]
    pub fn build_heap<T: Serialize + DeserializeOwned>(&self) -> Result<Queue<T>, QueueError> {
        let raw = RawQueue::new_heap(Kind::Queue, self.maxsize.unwrap_or(DEFAULT_MAXSIZE), self.max_item)?;
        Ok(Queue::from_typed(Typed::new(raw)))
    }

    /// A [`JoinableQueue`] on the heap for loom models.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn build_joinable_heap<T: Serialize + DeserializeOwned>(&self) -> Result<JoinableQueue<T>, QueueError> {
        let raw = RawQueue::new_heap(Kind::Joinable, self.maxsize.unwrap_or(DEFAULT_MAXSIZE), self.max_item)?;
        Ok(JoinableQueue::from_typed(Typed::new(raw)))
    }

    /// A [`SimpleQueue`] on the heap for loom models.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn build_simple_heap<T: Serialize + DeserializeOwned>(&self) -> Result<SimpleQueue<T>, QueueError> {
        let raw = RawQueue::new_heap(Kind::Simple, self.maxsize.unwrap_or(SIMPLE_MAXSIZE), self.max_item)?;
        Ok(SimpleQueue::from_typed(Typed::new(raw)))
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
        let encode = |slot: &mut [u8]| match postcard::to_slice(item, slot) {
            Ok(used) => Ok(used.len()),
            // Only a `Serialize` that writes differently on a second pass gets here.
            Err(source) => Err(encode_error(source)),
        };
        self.raw.put(encode, size, until, &|| self.is_closed())
    }

    /// Decodes the oldest item in place, from its slot.
    #[inline]
    fn get(&self, until: Until) -> Result<T, QueueError> {
        if self.is_closed() {
            return Err(QueueError::Closed);
        }
        let decode = |msg: &[u8]| {
            postcard::from_bytes(msg).map_err(|source| QueueError::Decode {
                type_name: std::any::type_name::<T>(),
                len: msg.len(),
                source,
            })
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

/// The methods every queue has, delegated to its `Typed` field `q`.
macro_rules! common_methods {
    () => {
        /// Takes the oldest item, waiting as long as it takes. [`QueueError::Closed`]
        /// after [`close`](Self::close); [`QueueError::Decode`] if the item does
        /// not decode as `T`.
        pub fn get(&self) -> Result<T, QueueError> {
            self.q.get(crate::queue::Until::Forever)
        }

        /// Takes the oldest item, waiting at most `timeout`; [`QueueError::Empty`]
        /// if none came. Python's `get(True, timeout)`.
        pub fn get_timeout(&self, timeout: std::time::Duration) -> Result<T, QueueError> {
            self.q.get(crate::queue::Until::after(timeout))
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

        /// The largest encoded item, in bytes.
        pub fn max_item_bytes(&self) -> usize {
            self.q.raw.max_item()
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

        /// Puts `item`, waiting at most `timeout` for room; [`QueueError::Full`]
        /// if none came. Python's `put(item, True, timeout)`.
        pub fn put_timeout(&self, item: T, timeout: std::time::Duration) -> Result<(), PutError<T>> {
            self.q.put(item, crate::queue::Until::after(timeout))
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
