//! `SynchronizedArray<T>`: a shared plain-data array and the [`Lock`] that guards
//! it — Python's `multiprocessing.Array(typecode, n)` (with `lock=True`, the
//! default) and its `get_lock()`.
//!
//! Two shared blocks, each checked on attach: an [`mproc_shm::Array`] (header with
//! the element type's size and the length) and a [`Lock`] in the arena. The array is
//! private to this type and every access takes the lock, which is what makes the
//! guard's `&mut [T]` sound. There is no `get_obj()`: an unlocked view beside a
//! locked `&mut [T]` would be a data race; use [`mproc_shm::Array`] (Python's
//! `RawArray`) for an array without a lock.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytemuck::Pod;
use mproc_shm::{Array, Exports, Share, ShmError};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lock::{Lock, LockGuard};
use crate::shared::PlaceToken;

/// A shared array behind its own lock: Python's `multiprocessing.Array('i', n)`.
///
/// ```
/// let a = mproc_sync::SynchronizedArray::from_slice(&[1_i32, 2, 3]).unwrap();
/// {
///     let mut g = a.lock().unwrap(); // derefs to `[i32]`
///     for x in g.iter_mut() {
///         *x = -*x;
///     }
/// }
/// assert_eq!(a.to_vec().unwrap(), vec![-1, -2, -3]);
/// assert!(a.get(3).is_err()); // names the index and the length
/// let lock = a.get_lock(); // the same lock
/// let _held = lock.lock().unwrap();
/// assert!(a.try_lock().is_err());
/// ```
#[doc(alias = "multiprocessing.Array")]
#[doc(alias = "Array")]
pub struct SynchronizedArray<T: Pod> {
    lock: Lock,
    array: Array<T>,
}

impl<T: Pod> Clone for SynchronizedArray<T> {
    fn clone(&self) -> Self {
        SynchronizedArray { lock: self.lock.clone(), array: self.array.clone() }
    }
}

impl<T: Pod> SynchronizedArray<T> {
    /// An array of `len` zeroed elements and its lock, in the shared arena.
    pub fn zeroed(len: usize) -> Result<SynchronizedArray<T>> {
        Ok(SynchronizedArray { lock: Lock::new()?, array: Array::zeroed(len)? })
    }

    /// An array holding a copy of `items`, and its lock, in the shared arena.
    pub fn from_slice(items: &[T]) -> Result<SynchronizedArray<T>> {
        Ok(SynchronizedArray { lock: Lock::new()?, array: Array::from_slice(items)? })
    }

    /// Python's `get_lock()`: the array's lock, as a [`Lock`] handle.
    pub fn get_lock(&self) -> Lock {
        self.lock.clone()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.array.len()
    }

    /// True for an array of no elements.
    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    fn guard<'a>(&'a self, lock: LockGuard<'a>) -> ArrayGuard<'a, T> {
        ArrayGuard { array: &self.array, lock }
    }

    /// Locks the array; the guard dereferences to its elements as a slice.
    #[doc(alias = "acquire")]
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>> {
        Ok(self.guard(self.lock.lock()?))
    }

    /// Locks the array if it is free, else [`SyncError::WouldBlock`](crate::SyncError::WouldBlock).
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>> {
        Ok(self.guard(self.lock.try_lock()?))
    }

    /// Locks the array, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ArrayGuard<'_, T>> {
        Ok(self.guard(self.lock.lock_timeout(timeout)?))
    }

    /// Python's `a[i]`: element `index`, read under the lock.
    pub fn get(&self, index: usize) -> Result<T> {
        let g = self.lock()?;
        g.get(index).copied().ok_or_else(|| ShmError::IndexOutOfRange { index, len: g.len() }.into())
    }

    /// Python's `a[i] = v`: a store under the lock.
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        let mut g = self.lock()?;
        let len = g.len();
        *g.get_mut(index).ok_or(ShmError::IndexOutOfRange { index, len })? = value;
        Ok(())
    }

    /// Python's `a[:]`: a copy of every element, taken under the lock.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        Ok(self.lock()?.to_vec())
    }

    /// Python's `a[:] = items`: overwrites every element under the lock; the lengths
    /// must match.
    pub fn copy_from_slice(&self, items: &[T]) -> Result<()> {
        let mut g = self.lock()?;
        if items.len() != g.len() {
            return Err(ShmError::LengthMismatch { expected: g.len(), found: items.len() }.into());
        }
        g.copy_from_slice(items);
        Ok(())
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for SynchronizedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Ok(g) => f.debug_tuple("SynchronizedArray").field(&&*g).finish(),
            Err(_) => f.write_str("SynchronizedArray(<locked>)"),
        }
    }
}

/// The spawn form of a [`SynchronizedArray`]: its lock's and its array's tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynchronizedArrayToken {
    lock: PlaceToken,
    array: <Array<u8> as Share>::Token,
}

impl<T: Pod> Share for SynchronizedArray<T> {
    type Token = SynchronizedArrayToken;

    fn export(&self, exports: &mut Exports) -> mproc_shm::Result<SynchronizedArrayToken> {
        Ok(SynchronizedArrayToken { lock: self.lock.export(exports)?, array: self.array.export(exports)? })
    }

    fn import(token: SynchronizedArrayToken) -> mproc_shm::Result<Self> {
        Ok(SynchronizedArray { lock: Lock::import(token.lock)?, array: Array::import(token.array)? })
    }
}

/// The locked elements of a [`SynchronizedArray`], as a slice; unlocks on drop.
#[must_use = "the array is unlocked as soon as the guard drops"]
pub struct ArrayGuard<'a, T: Pod> {
    array: &'a Array<T>,
    lock: LockGuard<'a>,
}

impl<T: Pod> ArrayGuard<'_, T> {
    /// True when the previous holder of the lock died holding it: the elements may
    /// be half-updated.
    pub fn owner_died(&self) -> bool {
        self.lock.owner_died()
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the array's `len` elements are initialised Pod in shared memory that
        // lives as long as `self.array`; every access through a `SynchronizedArray`
        // holds its lock, which this guard does, so no other access runs meanwhile.
        unsafe { std::slice::from_raw_parts(self.array.as_ptr(), self.array.len()) }
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only slice of the guard.
        unsafe { std::slice::from_raw_parts_mut(self.array.as_ptr(), self.array.len()) }
    }
}
