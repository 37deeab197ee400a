//! [`MpiPool`], the calls rank 0's program makes, and [`main`], the entry point every
//! rank runs.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use mpi::traits::Communicator;
use mpi::Threading;
use mproc_pool::remote::{decode_result, default_chunksize, RemoteTask};
use mproc_pool::{PoolError, StarFn};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dispatch::{self, Msg, Reply, Unit};
use crate::wire::Outcome;

/// What can stop an MPI job from starting its pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MpiError {
    /// MPI was initialized before [`main`], or could not be.
    #[error("MPI could not be initialized (was it initialized already in this process?)")]
    Init,
    /// The MPI library gives less thread support than the pool needs.
    #[error("the MPI library provides thread support {provided}, the pool needs at least Serialized")]
    Threading {
        /// The level the library provided.
        provided: String,
    },
    /// The job has one rank: no worker to run tasks. Start it with `mpiexec -n N`, N ≥ 2.
    #[error("the MPI job has {size} rank(s); the pool needs at least 2 (run it under `mpiexec -n N`, N >= 2)")]
    NoWorkers {
        /// The number of ranks.
        size: i32,
    },
    /// This rank's executable could not be read to compare it with rank 0's.
    #[error("cannot read this rank's executable to check it: {0}")]
    Executable(String),
}

/// Initializes MPI, runs `program` with the pool on rank 0 and serves tasks on every
/// other rank; closes the pool and finalizes MPI afterwards.
///
/// Returns `Ok(Some(r))` on rank 0 with what `program` returned, and `Ok(None)` on the
/// worker ranks once the pool has closed; the caller's `main` then simply returns. See
/// the crate doc for what each failure does.
pub fn main<R>(program: impl FnOnce(&MpiPool) -> R) -> Result<Option<R>, MpiError> {
    let (universe, provided) = mpi::initialize_with_threading(Threading::Multiple).ok_or(MpiError::Init)?;
    // The dispatcher thread of rank 0 makes its MPI calls, one at a time; the main thread
    // makes none while it runs.
    if provided < Threading::Serialized {
        return Err(MpiError::Threading { provided: format!("{provided:?}") });
    }
    let world = universe.world();
    let size = world.size();
    crate::exe::check_same_executable(&world)?;
    if size < 2 {
        return Err(MpiError::NoWorkers { size });
    }
    // From here every rank leaves through the barrier before MPI_Finalize, rank 0 also
    // when its program panics (the pool, dropped first, has told the workers to stop).
    let universe = Finalizing(Some(universe));
    if world.rank() != 0 {
        crate::worker::serve(&world);
        return Ok(None);
    }
    let pool = MpiPool::start(world, (size - 1) as usize);
    let out = program(&pool);
    pool.close();
    drop(pool);
    drop(universe);
    Ok(Some(out))
}

/// MPI while the pool runs; on drop, every rank makes the barrier that keeps MPICH's UCX
/// finalize from hanging over TCP (see `finalize.rs`), then finalizes MPI.
struct Finalizing(Option<mpi::environment::Universe>);

impl Drop for Finalizing {
    fn drop(&mut self) {
        if let Some(universe) = self.0.take() {
            crate::finalize::before_finalize();
            drop(universe);
        }
    }
}

/// The pool of an MPI job, on rank 0: each other rank is a worker.
///
/// Built by [`main`]. Every call may come from any thread of rank 0.
pub struct MpiPool {
    tx: Mutex<Option<Sender<Msg>>>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    workers: usize,
}

impl std::fmt::Debug for MpiPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiPool").field("workers", &self.workers).finish_non_exhaustive()
    }
}

impl MpiPool {
    fn start(world: mpi::topology::SimpleCommunicator, workers: usize) -> MpiPool {
        let (tx, rx) = mpsc::channel();
        let dispatcher = dispatch::spawn(world, rx);
        MpiPool { tx: Mutex::new(Some(tx)), dispatcher: Mutex::new(Some(dispatcher)), workers }
    }

    /// The number of worker ranks (the job's size less rank 0).
    pub fn processes(&self) -> usize {
        self.workers
    }

    fn submit(&self, units: Vec<Unit>) -> Result<(), PoolError> {
        let tx = mproc_shm::sys::lock(&self.tx);
        let tx = tx.as_ref().ok_or(PoolError::NotRunning("closed"))?;
        tx.send(Msg::Units(units)).map_err(|_| PoolError::Terminated)
    }

    /// Python's `apply`: `f(arg)` on a worker rank, waiting for the result.
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.apply_async(f, arg)?.get()
    }

    /// Python's `apply_async`: `f(arg)` on a worker rank; the result comes later.
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<MpiAsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let input = postcard::to_allocvec(&arg)
            .map_err(|source| PoolError::Encode { type_name: std::any::type_name::<A>(), source })?;
        let (reply, rx) = mpsc::channel();
        self.submit(vec![Unit { task: RemoteTask::apply(f), input, reply, seq: 0 }])?;
        Ok(MpiAsyncResult { rx, _result: PhantomData })
    }

    /// Python's `map`: `f` over every item, in order, in chunks of about
    /// `len / (4 × workers)` items (CPython's default).
    pub fn map<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = default_chunksize(items.len(), self.workers);
        self.map_chunked(f, items, chunksize)
    }

    /// [`map`](Self::map) with a chosen chunk size.
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.run_chunks(RemoteTask::map(f), items.into_iter().collect(), chunksize)
    }

    /// Python's `starmap`: `f(*args)` for every tuple of arguments, in order.
    pub fn starmap<F, Args, R>(&self, f: F, items: impl IntoIterator<Item = Args>) -> Result<Vec<R>, PoolError>
    where
        F: StarFn<Args, R>,
        Args: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let items: Vec<Args> = items.into_iter().collect();
        let chunksize = default_chunksize(items.len(), self.workers);
        self.run_chunks(RemoteTask::starmap(f), items, chunksize)
    }

    fn run_chunks<A: Serialize, R: DeserializeOwned>(
        &self,
        task: RemoteTask,
        items: Vec<A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError> {
        let n = items.len();
        let mut it = self.send_chunks(task, items, chunksize, true)?;
        let mut out = Vec::with_capacity(n);
        for r in &mut it {
            out.push(r?);
        }
        Ok(out)
    }

    fn send_chunks<A: Serialize, R: DeserializeOwned>(
        &self,
        task: RemoteTask,
        items: Vec<A>,
        chunksize: usize,
        ordered: bool,
    ) -> Result<MpiImap<R>, PoolError> {
        if chunksize == 0 {
            return Err(PoolError::ZeroChunksize(chunksize));
        }
        let (reply, rx) = mpsc::channel();
        let mut units = Vec::with_capacity(items.len().div_ceil(chunksize));
        let mut starts = Vec::with_capacity(units.capacity());
        for (seq, chunk) in items.chunks(chunksize).enumerate() {
            let input = postcard::to_allocvec(chunk)
                .map_err(|source| PoolError::Encode { type_name: std::any::type_name::<A>(), source })?;
            units.push(Unit { task, input, reply: reply.clone(), seq });
            starts.push(seq * chunksize);
        }
        let chunks = units.len();
        self.submit(units)?;
        Ok(MpiImap {
            rx,
            starts,
            chunks,
            received: 0,
            ordered,
            next: 0,
            held: BTreeMap::new(),
            ready: Vec::new().into_iter(),
            _r: PhantomData,
        })
    }

    /// Python's `imap`: results in input order, as they become ready (one item a task).
    pub fn imap<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<MpiImap<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.send_chunks(RemoteTask::map(f), items.into_iter().collect(), 1, true)
    }

    /// Python's `imap_unordered`: results in the order they finish (one item a task).
    pub fn imap_unordered<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<MpiImap<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.send_chunks(RemoteTask::map(f), items.into_iter().collect(), 1, false)
    }

    /// Python's `close`: no more tasks; those submitted still run.
    pub fn close(&self) {
        if let Some(tx) = mproc_shm::sys::lock(&self.tx).take() {
            let _ = tx.send(Msg::Close);
        }
    }

    /// Python's `join`: waits until every submitted task has finished and the workers
    /// were told to stop. [`PoolError::StillRunning`] before [`close`](Self::close).
    pub fn join(&self) -> Result<(), PoolError> {
        if mproc_shm::sys::lock(&self.tx).is_some() {
            return Err(PoolError::StillRunning);
        }
        if let Some(d) = mproc_shm::sys::lock(&self.dispatcher).take() {
            d.join().map_err(|_| PoolError::Terminated)?;
        }
        Ok(())
    }
}

impl Drop for MpiPool {
    fn drop(&mut self) {
        self.close();
        let _ = self.join();
    }
}

/// The result of [`MpiPool::apply_async`], Python's `AsyncResult`.
pub struct MpiAsyncResult<R> {
    rx: Receiver<Reply>,
    _result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for MpiAsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiAsyncResult").finish_non_exhaustive()
    }
}

impl<R: DeserializeOwned> MpiAsyncResult<R> {
    /// Waits for the result.
    pub fn get(self) -> Result<R, PoolError> {
        decode_one(self.rx.recv().map_err(|_| PoolError::Terminated)?)
    }

    /// Waits at most `timeout`; [`PoolError::Timeout`] leaves the result to a later call.
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, PoolError> {
        match self.rx.recv_timeout(timeout) {
            Ok(reply) => decode_one(reply),
            Err(RecvTimeoutError::Timeout) => Err(PoolError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Terminated),
        }
    }
}

fn decode_one<R: DeserializeOwned>((_, reply): Reply) -> Result<R, PoolError> {
    let (msg, range) = reply?;
    decode_result(&msg[range], None)
}

/// The results of [`MpiPool::imap`] (in order) or [`MpiPool::imap_unordered`] (as they
/// finish), and of `map`'s chunks: an iterator of each item's result.
pub struct MpiImap<R> {
    rx: Receiver<Reply>,
    starts: Vec<usize>,
    chunks: usize,
    received: usize,
    ordered: bool,
    next: usize,
    held: BTreeMap<usize, Outcome>,
    ready: std::vec::IntoIter<R>,
    _r: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for MpiImap<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiImap")
            .field("chunks", &self.chunks)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<R: DeserializeOwned> MpiImap<R> {
    /// The next chunk's outcome: in order (`ordered`) or as it arrives.
    fn next_chunk(&mut self) -> Option<(usize, Outcome)> {
        loop {
            if self.ordered {
                if let Some(r) = self.held.remove(&self.next) {
                    self.next += 1;
                    return Some((self.next - 1, r));
                }
            }
            if self.received == self.chunks {
                return None;
            }
            let (seq, r) = match self.rx.recv() {
                Ok(reply) => reply,
                Err(_) => {
                    self.received = self.chunks;
                    return Some((self.next, Err(PoolError::Terminated)));
                }
            };
            self.received += 1;
            if !self.ordered {
                return Some((seq, r));
            }
            self.held.insert(seq, r);
        }
    }
}

impl<R: DeserializeOwned> Iterator for MpiImap<R> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Result<R, PoolError>> {
        loop {
            if let Some(r) = self.ready.next() {
                return Some(Ok(r));
            }
            let (seq, outcome) = self.next_chunk()?;
            let start = self.starts.get(seq).copied().unwrap_or(0);
            match outcome {
                Ok((msg, range)) => match decode_result::<Vec<R>>(&msg[range], Some(start)) {
                    Ok(v) => self.ready = v.into_iter(),
                    Err(e) => return Some(Err(e)),
                },
                Err(PoolError::TaskPanicked { message, item }) => {
                    return Some(Err(PoolError::TaskPanicked { message, item: Some(start + item.unwrap_or(0)) }))
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
