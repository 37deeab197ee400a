//! `RLock`: a reentrant cross-process lock — a [`RawLock`] plus the owning
//! thread and a recursion count.
//!
//! The owner is (pid, tid): the pid sits in the lock word (so owner-death
//! recovery works exactly as for [`Lock`](crate::Lock), see `lock.rs`), the
//! kernel tid in `owner_tid`. Only the owner writes `owner_tid` and `count`, and
//! it clears `owner_tid` before it unlocks, so a thread that reads its own tid
//! there is the owner. Release by any other thread is
//! [`SyncError::NotOwner`]. A lock taken over from a dead owner starts at count 1.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::error::{Result, SyncError};
use crate::ident;
use crate::lock::{Acquired, RawLock};
use crate::primitive::{AtomicU32, Ordering};
use crate::shared::{self, kind, placed, Object, Place};

/// The shared-memory body of an [`RLock`].
#[repr(C)]
pub struct RawRLock {
    /// The lock word (holder pid and `PARKED_BIT`; see [`RawLock`]).
    lock: RawLock,
    /// The owning thread's kernel tid while held, 0 otherwise. Written only by
    /// the owner.
    owner_tid: AtomicU32,
    /// Recursion depth while held. Written only by the owner.
    count: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawRLock>() == 12 && std::mem::align_of::<RawRLock>() == 4);

impl Default for RawRLock {
    fn default() -> Self {
        RawRLock::new()
    }
}

impl RawRLock {
    /// An unlocked reentrant lock.
    pub fn new() -> RawRLock {
        RawRLock { lock: RawLock::new(), owner_tid: AtomicU32::new(0), count: AtomicU32::new(0) }
    }

    /// Whether the calling thread owns the lock.
    #[inline]
    pub fn is_owned(&self) -> bool {
        self.owner_tid.load(Ordering::Relaxed) == ident::tid() && self.lock.holder() == Some(ident::pid())
    }

    fn enter(&self, how: Acquired) -> Acquired {
        self.owner_tid.store(ident::tid(), Ordering::Relaxed);
        self.count.store(1, Ordering::Relaxed);
        how
    }

    fn recurse(&self) -> Result<Acquired> {
        let c = self.count.load(Ordering::Relaxed);
        if c == u32::MAX {
            return Err(SyncError::Overflow { what: "RLock recursion depth", max: u32::MAX as u64 });
        }
        self.count.store(c + 1, Ordering::Relaxed);
        Ok(Acquired::Clean)
    }

    /// Takes the lock (or one more level of it), waiting until `deadline`;
    /// `Ok(None)` on timeout.
    pub fn lock(&self, deadline: Option<Instant>) -> Result<Option<Acquired>> {
        if self.is_owned() {
            return self.recurse().map(Some);
        }
        Ok(self.lock.lock(deadline).map(|how| self.enter(how)))
    }

    /// Takes the lock (or one more level) if that needs no waiting.
    pub fn try_lock(&self) -> Result<bool> {
        if self.is_owned() {
            return self.recurse().map(|_| true);
        }
        Ok(self.lock.try_lock() && self.enter(Acquired::Clean) == Acquired::Clean)
    }

    /// Drops one level; unlocks at zero. [`SyncError::NotOwner`] unless the
    /// calling thread owns the lock.
    pub fn unlock(&self) -> Result<()> {
        if !self.is_owned() {
            return Err(self.not_owner("RLock.release"));
        }
        let c = self.count.load(Ordering::Relaxed);
        if c > 1 {
            self.count.store(c - 1, Ordering::Relaxed);
        } else {
            self.count.store(0, Ordering::Relaxed);
            self.owner_tid.store(0, Ordering::Relaxed);
            self.lock.unlock();
        }
        Ok(())
    }

    /// Releases every level at once (for `Condition::wait`); returns the depth.
    pub fn release_all(&self, what: &'static str) -> Result<u32> {
        if !self.is_owned() {
            return Err(self.not_owner(what));
        }
        let c = self.count.swap(0, Ordering::Relaxed);
        self.owner_tid.store(0, Ordering::Relaxed);
        self.lock.unlock();
        Ok(c)
    }

    /// Takes the lock again at depth `depth` (after [`RawRLock::release_all`]).
    pub fn restore(&self, depth: u32) -> Acquired {
        let how = self.lock.lock(None).unwrap_or(Acquired::Clean);
        self.owner_tid.store(ident::tid(), Ordering::Relaxed);
        self.count.store(depth.max(1), Ordering::Relaxed);
        how
    }

    /// The recursion depth if the caller owns the lock, else 0.
    pub fn depth(&self) -> u32 {
        if self.is_owned() {
            self.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// The holder's pid, if held.
    pub fn holder(&self) -> Option<u32> {
        self.lock.holder()
    }

    pub(crate) fn not_owner(&self, what: &'static str) -> SyncError {
        SyncError::NotOwner { what, pid: ident::pid(), tid: ident::tid(), owner_pid: self.holder().unwrap_or(0) }
    }
}

impl Object for RawRLock {
    const KIND: u16 = kind::RLOCK;
    const NAME: &'static str = "RLock";
}

/// A reentrant lock shared between processes: Python's `multiprocessing.RLock`.
///
/// ```
/// let l = mproc_sync::RLock::new().unwrap();
/// let a = l.lock().unwrap();
/// let b = l.lock().unwrap(); // the owner may take it again
/// drop((b, a));
/// assert!(l.release().is_err()); // not owned any more
/// ```
#[doc(alias = "multiprocessing.RLock")]
#[derive(Clone)]
pub struct RLock {
    place: Place<RawRLock>,
}

placed!(RLock, RawRLock);

impl RLock {
    /// A new unlocked reentrant lock in the shared arena.
    pub fn new() -> Result<RLock> {
        Ok(RLock { place: Place::new(RawRLock::new())? })
    }

    /// A new unlocked reentrant lock placed in `seg` at `offset`.
    pub fn new_in(seg: &mproc_shm::Segment, offset: usize) -> Result<RLock> {
        Ok(RLock { place: Place::new_in(seg, offset, RawRLock::new())? })
    }

    fn from_place(place: Place<RawRLock>) -> RLock {
        RLock { place }
    }

    /// The shared body.
    pub fn raw(&self) -> &RawRLock {
        self.place.raw()
    }

    /// Takes the lock (or one more level of it), waiting as long as it takes.
    #[doc(alias = "acquire")]
    pub fn lock(&self) -> Result<RLockGuard<'_>> {
        let how = self.raw().lock(None)?.unwrap_or(Acquired::Clean);
        Ok(RLockGuard { lock: self, how, _not_send: PhantomData })
    }

    /// Takes the lock if that needs no waiting, else [`SyncError::WouldBlock`].
    pub fn try_lock(&self) -> Result<RLockGuard<'_>> {
        if self.raw().try_lock()? {
            Ok(RLockGuard { lock: self, how: Acquired::Clean, _not_send: PhantomData })
        } else {
            Err(SyncError::WouldBlock { what: "RLock" })
        }
    }

    /// Takes the lock, waiting at most `timeout`, else [`SyncError::Timeout`].
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>> {
        match self.raw().lock(shared::deadline(timeout))? {
            Some(how) => Ok(RLockGuard { lock: self, how, _not_send: PhantomData }),
            None => Err(SyncError::Timeout { what: "RLock", after: timeout }),
        }
    }

    /// Python's `acquire()`: takes the lock (or one more level of it), waiting
    /// as long as it takes (also from a dead owner). The caller must
    /// [`release`](RLock::release); the guard of [`lock`](RLock::lock) does that for you.
    pub fn acquire(&self) -> Result<()> {
        self.acquire_with(true, None).map(drop)
    }

    /// Python's `acquire(block=False)`: takes the lock if that needs no
    /// waiting, else [`SyncError::WouldBlock`]. Never blocks.
    pub fn try_acquire(&self) -> Result<()> {
        if self.acquire_with(false, None)? {
            Ok(())
        } else {
            Err(SyncError::WouldBlock { what: "RLock" })
        }
    }

    /// Python's `acquire(timeout=t)`: takes the lock, waiting at most
    /// `timeout`, else [`SyncError::Timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        if self.acquire_with(true, Some(timeout))? {
            Ok(())
        } else {
            Err(SyncError::Timeout { what: "RLock", after: timeout })
        }
    }

    pub(crate) fn acquire_with(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        match (block, timeout) {
            (false, _) => self.raw().try_lock(),
            (true, None) => Ok(self.raw().lock(None)?.is_some()),
            (true, Some(t)) => Ok(self.raw().lock(shared::deadline(t))?.is_some()),
        }
    }

    /// Python's `release()`: drops one level; [`SyncError::NotOwner`] unless the
    /// calling thread owns the lock.
    pub fn release(&self) -> Result<()> {
        self.raw().unlock()
    }

    /// Whether the calling thread owns the lock.
    pub fn is_owned(&self) -> bool {
        self.raw().is_owned()
    }

    /// The holder's pid, if held.
    pub fn holder(&self) -> Option<u32> {
        self.raw().holder()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").field("holder", &self.holder()).field("owned", &self.is_owned()).finish()
    }
}

/// Holds one level of an [`RLock`]; releases it on drop.
#[must_use = "the level is released as soon as the guard drops"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    how: Acquired,
    /// Ownership is per thread: the guard must stay on it.
    _not_send: PhantomData<*const ()>,
}

impl RLockGuard<'_> {
    /// True when the lock was taken over from an owner that died holding it.
    pub fn owner_died(&self) -> bool {
        self.how == Acquired::OwnerDied
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // Owned by this thread since the guard was made (guards are !Send).
        let _ = self.lock.raw().unlock();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").field("how", &self.how).finish()
    }
}
