//! The memo: entries indexed by memo id.
//!
//! CPython numbers memo entries 0, 1, 2 … (`MEMOIZE` takes the next id; `BINPUT` and
//! `PUT` in older protocols count the same way), so entries live in a `Vec` indexed by id.
//! An id can only be that dense if each entry took at least one input byte, so ids below
//! the input's length go to the `Vec` (whose size the input bounds) and any larger id a
//! hand-made pickle names goes to a hash map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Memo ids to entries: dense ids in a `Vec`, the rest in a map.
#[derive(Debug)]
pub(super) struct Memo<T> {
    dense: Vec<Option<T>>,
    /// Ids at or above `dense_limit`.
    sparse: HashMap<u32, T, BuildHasherDefault<IdHasher>>,
    /// Ids below it are kept in `dense` (the input's length).
    dense_limit: usize,
    /// Entries present.
    len: usize,
}

impl<T> Memo<T> {
    /// An empty memo for an input of `input_len` bytes.
    pub(super) fn new(input_len: usize) -> Memo<T> {
        Memo { dense: Vec::new(), sparse: HashMap::default(), dense_limit: input_len, len: 0 }
    }

    /// Entries present.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    #[inline]
    pub(super) fn get(&self, id: u32) -> Option<&T> {
        match self.dense.get(id as usize) {
            Some(entry) => entry.as_ref(),
            None if (id as usize) < self.dense_limit => None,
            None => self.sparse.get(&id),
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        match self.dense.get_mut(id as usize) {
            Some(entry) => entry.as_mut(),
            None if (id as usize) < self.dense_limit => None,
            None => self.sparse.get_mut(&id),
        }
    }

    /// Stores `value` under `id`, replacing any entry there.
    #[inline]
    pub(super) fn insert(&mut self, id: u32, value: T) {
        let i = id as usize;
        if i == self.dense.len() && i < self.dense_limit {
            // The next id in order: what every CPython pickle does.
            if self.dense.capacity() == 0 {
                // One memo entry takes at least 3 input bytes (a 1-byte opcode with its
                // argument, then `MEMOIZE`): a tenth of the input is a guess that grows
                // at most a few times.
                self.dense.reserve((self.dense_limit / 10).clamp(8, 4096));
            }
            self.dense.push(Some(value));
            self.len += 1;
            return;
        }
        let old = if i < self.dense_limit {
            if i >= self.dense.len() {
                self.dense.resize_with(i + 1, || None);
            }
            self.dense[i].replace(value)
        } else {
            self.sparse.insert(id, value)
        };
        if old.is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, id: u32) -> Option<T> {
        let i = id as usize;
        let old =
            if i < self.dense_limit { self.dense.get_mut(i).and_then(Option::take) } else { self.sparse.remove(&id) };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
}

impl<T: Default> Memo<T> {
    /// The entry under `id`, inserted as `T::default()` when absent.
    pub(super) fn get_or_default(&mut self, id: u32) -> &mut T {
        if !self.contains(id) {
            self.insert(id, T::default());
        }
        self.get_mut(id).expect("inserted above")
    }
}

/// Fibonacci hashing of one `u32` (SipHash's flood resistance is not needed: the memory
/// budget and the input cap bound what a hostile pickle can make the reader do).
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn dense_and_sparse_ids_behave_as_one_map() {
        let mut memo = Memo::new(4);
        memo.insert(1, "one");
        memo.insert(1_000_000, "big");
        assert_eq!(memo.len(), 2);
        assert_eq!(memo.get(0), None);
        assert_eq!(memo.get(1), Some(&"one"));
        assert_eq!(memo.get(3), None);
        assert_eq!(memo.get(1_000_000), Some(&"big"));
        memo.insert(1, "uno");
        assert_eq!(memo.len(), 2);
        assert_eq!(memo.remove(1), Some("uno"));
        assert_eq!(memo.remove(1), None);
        assert_eq!(memo.remove(1_000_000), Some("big"));
        assert_eq!(memo.len(), 0);
        assert!(memo.dense.len() <= 4, "dense part stays within the input length");
    }
}
