//! `Queue<Bytes>` read in place: the item's bytes handed to a closure where they lie in
//! the queue's shared memory, without a copy into a new `Bytes`.

use std::time::Duration;

use super::Bytes;
use crate::queue::{Queue, QueueError};

/// The byte string of an encoded `Bytes`, borrowed, as the queue's decode error.
fn view_item(encoded: &[u8]) -> Result<&[u8], QueueError> {
    match postcard::take_from_bytes::<&[u8]>(encoded) {
        Ok((bytes, [])) => Ok(bytes),
        Ok(_) => Err(QueueError::Decode {
            type_name: "Bytes",
            len: encoded.len(),
            source: postcard::Error::DeserializeBadEncoding,
        }),
        Err(source) => Err(QueueError::Decode { type_name: "Bytes", len: encoded.len(), source }),
    }
}

/// Reading a `Bytes` item where it lies, without a copy.
impl Queue<Bytes> {
    /// Takes the oldest item and hands `f` its bytes in place (in the queue's
    /// shared memory), without copying them into a new `Bytes`: for a consumer
    /// that parses, hashes or writes the bytes out. The item is consumed once
    /// `f` returns; while `f` runs it holds its slot, so keep it short. Fails
    /// as [`get`](Queue::get) does.
    ///
    /// ```
    /// use mproc_ipc::{Bytes, Queue};
    /// let q = Queue::<Bytes>::new()?;
    /// q.put(Bytes::from(vec![2u8; 1 << 20]))?;
    /// let sum = q.get_with(|b| b.iter().map(|&x| u64::from(x)).sum::<u64>())?;
    /// assert_eq!(sum, 2 << 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, QueueError> {
        self.get_bytes_with(|enc| view_item(enc).map(f))?
    }

    /// [`get_with`](Self::get_with), waiting at most `timeout`;
    /// [`QueueError::Timeout`] if no item came (then `f` is not called).
    pub fn get_with_timeout<R>(&self, timeout: Duration, f: impl FnOnce(&[u8]) -> R) -> Result<R, QueueError> {
        self.get_bytes_with_timeout(timeout, |enc| view_item(enc).map(f))?
    }

    /// [`get_with`](Self::get_with) if an item is ready; [`QueueError::Empty`]
    /// otherwise (then `f` is not called).
    pub fn try_get_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, QueueError> {
        self.try_get_bytes_with(|enc| view_item(enc).map(f))?
    }
}
