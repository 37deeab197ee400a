//! `Synchronized<T>`: a plain-data value and its lock in one shared block —
//! Python's `multiprocessing.Value(typecode, v)` (with `lock=True`, the
//! default) and its `get_lock()`.
//!
//! The body is a [`RawLock`] followed by the value; the lock comes first, so
//! [`Synchronized::get_lock`] hands out an ordinary [`Lock`] on the same bytes
//! (and `Lock::attach` accepts a `Synchronized` block). The header records a
//! hash of `T`'s name, size and alignment, checked on attach.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytemuck::Pod;
use mproc_shm::{Exports, Share};

use crate::error::{Result, SyncError};
use crate::lock::{Acquired, Lock, RawLock};
use crate::shared::{self, kind, Object, Place, PlaceToken};

/// The shared-memory body of a [`Synchronized<T>`].
#[repr(C)]
pub struct SyncCell<T> {
    lock: RawLock,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `SyncGuard`, i.e. under the lock;
// T is Pod (no pointers, no drop).
unsafe impl<T: Pod> Sync for SyncCell<T> {}

impl<T: Pod> Object for SyncCell<T> {
    const KIND: u16 = kind::SYNCHRONIZED;
    const NAME: &'static str = "Synchronized";
    fn aux() -> u64 {
        let name = std::any::type_name::<T>().as_bytes();
        let h = name.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        h ^ ((std::mem::size_of::<T>() as u64) << 48) ^ ((std::mem::align_of::<T>() as u64) << 40)
    }
}

/// A value in shared memory behind its own lock: Python's
/// `multiprocessing.Value('q', 0)`.
///
/// ```
/// let v = mproc_sync::Synchronized::new(0_i64).unwrap();
/// *v.lock().unwrap() += 5;
/// assert_eq!(v.get().unwrap(), 5);
/// let _held = v.get_lock().lock().unwrap(); // the same lock
/// assert!(v.try_lock().is_err());
/// ```
#[doc(alias = "multiprocessing.Value")]
#[doc(alias = "Value")]
pub struct Synchronized<T: Pod> {
    place: Place<SyncCell<T>>,
}

impl<T: Pod> Clone for Synchronized<T> {
    fn clone(&self) -> Self {
        Synchronized { place: self.place.clone() }
    }
}

impl<T: Pod> Synchronized<T> {
    fn cell(init: T) -> SyncCell<T> {
        SyncCell { lock: RawLock::new(), value: UnsafeCell::new(init) }
    }

    /// A new value `init` in the shared arena.
    pub fn new(init: T) -> Result<Synchronized<T>> {
        Ok(Synchronized { place: Place::new(Self::cell(init))? })
    }

    /// A new value placed in `seg` at `offset` (see [`Synchronized::footprint`]).
    pub fn new_in(seg: &mproc_shm::Segment, offset: usize, init: T) -> Result<Synchronized<T>> {
        Ok(Synchronized { place: Place::new_in(seg, offset, Self::cell(init))? })
    }

    /// Attaches to a value another process placed at `offset`; checks its header
    /// (including the type).
    pub fn attach(seg: &mproc_shm::Segment, offset: usize) -> Result<Synchronized<T>> {
        Ok(Synchronized { place: Place::attach(seg, offset)? })
    }

    /// Bytes a `Synchronized<T>` takes when placed with `new_in`.
    pub fn footprint() -> usize {
        shared::footprint::<SyncCell<T>>()
    }

    /// Python's `get_lock()`: the value's lock, as a [`Lock`] handle.
    pub fn get_lock(&self) -> Lock {
        Lock::from_place(self.place.project(|c| &c.lock))
    }

    fn guard(&self, how: Acquired) -> SyncGuard<'_, T> {
        SyncGuard { cell: self.place.raw(), how, _t: PhantomData }
    }

    /// Locks the value; the guard dereferences to it.
    #[doc(alias = "acquire")]
    #[inline]
    pub fn lock(&self) -> Result<SyncGuard<'_, T>> {
        let how = self.place.raw().lock.lock(None).unwrap_or(Acquired::Clean);
        Ok(self.guard(how))
    }

    /// Locks the value if it is free, else [`SyncError::WouldBlock`].
    pub fn try_lock(&self) -> Result<SyncGuard<'_, T>> {
        if self.place.raw().lock.try_lock() {
            Ok(self.guard(Acquired::Clean))
        } else {
            Err(SyncError::WouldBlock { what: "Synchronized" })
        }
    }

    /// Locks the value, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<SyncGuard<'_, T>> {
        match self.place.raw().lock.lock(shared::deadline(timeout)) {
            Some(how) => Ok(self.guard(how)),
            None => Err(SyncError::Timeout { what: "Synchronized", after: timeout }),
        }
    }

    /// Python's `v.value` read: a copy taken under the lock.
    #[doc(alias = "value")]
    pub fn get(&self) -> Result<T> {
        Ok(*self.lock()?)
    }

    /// Python's `v.value = x`: a store under the lock.
    pub fn set(&self, value: T) -> Result<()> {
        *self.lock()? = value;
        Ok(())
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Synchronized<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Ok(g) => f.debug_tuple("Synchronized").field(&*g).finish(),
            Err(_) => f.write_str("Synchronized(<locked>)"),
        }
    }
}

impl<T: Pod> Share for Synchronized<T> {
    type Token = PlaceToken;

    fn export(&self, exports: &mut Exports) -> mproc_shm::Result<PlaceToken> {
        Ok(self.place.token(exports)?)
    }

    fn import(token: PlaceToken) -> mproc_shm::Result<Self> {
        Ok(Synchronized { place: Place::import(token)? })
    }
}

/// The locked value of a [`Synchronized`]; unlocks on drop.
#[must_use = "the value is unlocked as soon as the guard drops"]
pub struct SyncGuard<'a, T: Pod> {
    cell: &'a SyncCell<T>,
    how: Acquired,
    _t: PhantomData<&'a mut T>,
}

impl<T: Pod> SyncGuard<'_, T> {
    /// True when the lock was taken over from a holder that died holding it: the
    /// value may be half-updated (for a `T` wider than one store).
    pub fn owner_died(&self) -> bool {
        self.how == Acquired::OwnerDied
    }
}

impl<T: Pod> Deref for SyncGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other handle touches the value.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T: Pod> DerefMut for SyncGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T: Pod> Drop for SyncGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.lock.unlock();
    }
}
