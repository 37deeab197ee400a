//! Tasks for workers that another launcher started: the same executable, run as other
//! processes of one job (for example the ranks of an MPI job, `mproc-mpi`).
//!
//! A [`RemoteTask`] is what the pool's own workers receive: two code offsets from a
//! function of this crate, a trampoline monomorphised for the argument and result types
//! and the function itself (`task.rs`). The offsets are valid in any process running the
//! very same executable, whatever base address ASLR gave its image — and in no other:
//! a launcher that sends them must make sure every process runs one executable (the
//! MPI pool compares a hash of the executable file across ranks before the first task).
//! Arguments and results travel as postcard bytes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::pool::default_chunksize;

/// Decodes a task's result bytes as `T` — for a `map`-like call, a chunk's
/// `Vec` of results whose first input item is `first_item` — with the pool's
/// own errors: [`PoolError::Payload`] for a `PodVec` of another element type,
/// [`PoolError::Decode`] naming the type, the length and the item otherwise.
///
/// ```
/// use mproc_pool::{remote::decode_result, PoolError};
/// assert_eq!(decode_result::<u64>(&[7], None), Ok(7));
/// let err = decode_result::<String>(&[5, b'a'], Some(10)).unwrap_err();
/// assert!(matches!(err, PoolError::Decode { len: 2, item: Some(10), .. }));
/// ```
pub fn decode_result<T: DeserializeOwned>(bytes: &[u8], first_item: Option<usize>) -> Result<T, PoolError> {
    crate::job::decode_result(bytes, first_item)
}
use crate::task::{Code, StarFn};
use crate::PoolError;

/// A task's code, ready to cross to a process running this same executable.
///
/// ```
/// use mproc_pool::remote::RemoteTask;
/// fn square(x: u64) -> u64 { x * x }
/// let task = RemoteTask::apply(square);
/// let mut out = Vec::new();
/// // SAFETY: the task was made in this very process.
/// unsafe { task.run(&postcard::to_allocvec(&7u64).unwrap(), &mut out) }.unwrap();
/// assert_eq!(postcard::from_bytes::<u64>(&out).unwrap(), 49);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTask {
    trampoline: i64,
    func: i64,
}

impl From<Code> for RemoteTask {
    fn from(c: Code) -> RemoteTask {
        RemoteTask { trampoline: c.trampoline, func: c.func }
    }
}

impl RemoteTask {
    /// `f(arg)`: one encoded `A` in, one encoded `R` out.
    pub fn apply<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> RemoteTask {
        Code::apply(f).into()
    }

    /// `f` over a chunk: an encoded `Vec<A>` in, an encoded `Vec<R>` out. A panic names
    /// the index of the item within the chunk.
    pub fn map<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> RemoteTask {
        Code::map(f).into()
    }

    /// `f(*args)` over a chunk: an encoded `Vec<Args>` in, an encoded `Vec<R>` out.
    pub fn starmap<F: StarFn<Args, R>, Args: DeserializeOwned, R: Serialize>(f: F) -> RemoteTask {
        Code::starmap(f).into()
    }

    /// The task as 16 bytes (little-endian trampoline and function offsets), for
    /// launchers that frame their own messages.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.trampoline.to_le_bytes());
        b[8..].copy_from_slice(&self.func.to_le_bytes());
        b
    }

    /// The inverse of [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(b: [u8; 16]) -> RemoteTask {
        let (t, f) = b.split_at(8);
        RemoteTask {
            trampoline: i64::from_le_bytes(t.try_into().expect("8 bytes")),
            func: i64::from_le_bytes(f.try_into().expect("8 bytes")),
        }
    }

    /// Runs the task on `input`, appending the encoded result to `out`. A panic in the
    /// task is caught and returned as [`PoolError::TaskPanicked`] (with the item's index
    /// within the chunk for [`map`](Self::map) and [`starmap`](Self::starmap) tasks); an
    /// input that does not decode as the task's argument type is
    /// [`PoolError::BadArgument`], naming the task, the item and the cause.
    ///
    /// # Safety
    /// `self` must have been made by one of the constructors above in a process running
    /// this very executable (this process, or another started from the same file): its
    /// offsets are then the addresses of a trampoline and of the function it was
    /// monomorphised for. Offsets from any other source are arbitrary code addresses.
    pub unsafe fn run(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), PoolError> {
        let code = Code { trampoline: self.trampoline, func: self.func };
        // SAFETY: the offsets come from `Code`'s constructors in this executable
        // (caller's contract), which is what `Code::run` asks.
        unsafe { code.run(input, out) }.map_err(|f| {
            let item = f.item;
            f.into_error(item)
        })
    }
}

/// Makes a panic in a task of this process travel back as the task's error instead of
/// being printed: records the panic's location for the message. Call it once in a
/// process that runs [`RemoteTask`]s.
pub fn install_worker_panic_hook() {
    crate::task::install_worker_panic_hook();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        x * 2
    }

    fn boom(x: u32) -> u32 {
        if x == 2 {
            panic!("two");
        }
        x
    }

    #[test]
    fn bytes_round_trip() {
        let t = RemoteTask::map(double);
        assert_eq!(RemoteTask::from_bytes(t.to_bytes()), t);
    }

    #[test]
    fn map_runs_a_chunk_and_names_the_panicking_item() {
        let mut out = Vec::new();
        let input = postcard::to_allocvec(&vec![1u32, 2, 3]).unwrap();
        // SAFETY: made in this process.
        unsafe { RemoteTask::map(double).run(&input, &mut out) }.unwrap();
        assert_eq!(postcard::from_bytes::<Vec<u32>>(&out).unwrap(), [2, 4, 6]);
        // SAFETY: made in this process.
        let err = unsafe { RemoteTask::map(boom).run(&input, &mut Vec::new()) }.unwrap_err();
        assert!(
            matches!(err, PoolError::TaskPanicked { item: Some(1), ref message } if message.contains("two")),
            "{err:?}"
        );
    }
}
