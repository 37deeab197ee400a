//! `Pool` and its builder: the public face of the scheduler.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mproc_shm::sys::IgnorePoison;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::imap::{Imap, ImapUnordered};
use crate::job::{ApplyJob, Callbacks, Delivery, MapJob};
use crate::result::{AsyncResult, Slot};
use crate::scheduler::{self, Config, Phase, Scheduler, Unit};
use crate::task::{Code, Initializer, StarFn};
use crate::PoolError;

/// How worker processes are started.
///
/// Tasks are the same either way: a task's function travels as a code offset
/// within this binary, valid in a copy of this process and in a fresh exec of
/// the same executable alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartMethod {
    /// `fork(2)`: each worker is a copy of this process (the default). Fast to
    /// start; a worker sees the program's statics as they were at the fork. See
    /// the crate docs on forking a multi-threaded process.
    #[default]
    Fork,
    /// A fresh exec of this binary (`/proc/self/exe`), through the `process`
    /// crate's spawn start method. The pool registers its worker entry itself
    /// ([`mproc_process::entry!`] in this crate), so every binary linking the
    /// pool can start spawn workers with no registration of its own.
    ///
    /// A spawned worker starts from a clean state: no lock of the parent's
    /// threads can be held in it, and it sees the program's statics as they are
    /// before `main` — set anything a task needs in an
    /// [`initializer`](PoolBuilder::initializer_with). It runs before `main`, so
    /// `main`'s own set-up does not run in it (see
    /// [`mproc_process`] on spawn). Slower to start than a fork (an exec and a
    /// check that the executable is the parent's). A worker that cannot start —
    /// the binary was replaced on disk, say — fails [`PoolBuilder::build`] with
    /// [`PoolError::Spawn`]; a later replacement worker (after a worker died, or
    /// `maxtasksperchild`) that cannot start is retried, and once the pool has no
    /// worker left and several starts in a row failed, the pool stops:
    /// outstanding and later calls fail with that [`PoolError::Spawn`] rather
    /// than wait for a worker forever.
    Spawn,
}

/// Builds a [`Pool`]: Python's `Pool(processes, initializer, maxtasksperchild)`.
#[derive(Debug, Clone, Default)]
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<Initializer>,
    maxtasks: Option<usize>,
    start_method: StartMethod,
}

impl PoolBuilder {
    /// The number of worker processes; `None` (the default) means
    /// [`cpu_count()`](mproc_process::cpu_count). Zero is an error at `build`.
    pub fn processes(mut self, n: impl Into<Option<usize>>) -> PoolBuilder {
        self.processes = n.into();
        self
    }

    /// A function each worker runs once when it starts, before any task — e.g. to
    /// set a `static` or `thread_local` the tasks read. If it panics, the pool
    /// stops (workers killed, outstanding and later calls fail with
    /// [`PoolError::InitializerFailed`]) instead of respawning workers forever as
    /// CPython does.
    pub fn initializer(mut self, init: fn()) -> PoolBuilder {
        self.initializer = Some(Initializer::plain(init));
        self
    }

    /// An initializer with an argument: Python's `initializer` with `initargs`.
    /// Each worker runs `init(arg.clone())` once when it starts, before any
    /// task; a panic stops the pool as for [`initializer`](Self::initializer).
    /// Replaces an earlier initializer.
    ///
    /// The argument is any serde type (a tuple for several). A shared handle —
    /// a queue, a lock, a shared value, a connection — goes inside as
    /// [`mproc_process::Shared`], as for [`Process`](mproc_process::Process)
    /// spawn arguments: a forked worker gets a clone of it, a spawned worker
    /// imports it from the inherited fds. A handle not wrapped so would fail to
    /// encode for a spawned worker.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc_ipc::Queue;
    /// use mproc_pool::Pool;
    /// use mproc_process::Shared;
    ///
    /// fn hello((q, greeting): (Shared<Queue<(u32, String)>>, String)) {
    ///     q.put((std::process::id(), greeting)).unwrap();
    /// }
    ///
    /// let q = Queue::new()?;
    /// let pool = Pool::builder().processes(2).initializer_with(hello, (Shared(q.clone()), "hi".into())).build()?;
    /// for _ in 0..2 {
    ///     let (pid, greeting) = q.get_timeout(Duration::from_secs(30))?;
    ///     assert_eq!(greeting, "hi");
    ///     assert_ne!(pid, std::process::id());
    /// }
    /// # drop(pool);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "initargs")]
    pub fn initializer_with<A>(mut self, init: fn(A), arg: A) -> PoolBuilder
    where
        A: Serialize + DeserializeOwned + Clone + Send + 'static,
    {
        self.initializer = Some(Initializer::with(init, arg));
        self
    }

    /// Replace each worker by a fresh process after it has run this many units
    /// (a task, or a chunk of a map); `None` (the default) keeps workers for the
    /// pool's life. Zero is an error at `build`.
    pub fn maxtasksperchild(mut self, n: impl Into<Option<usize>>) -> PoolBuilder {
        self.maxtasks = n.into();
        self
    }

    /// How workers are started: [`StartMethod::Fork`] (the default) or
    /// [`StartMethod::Spawn`].
    pub fn start_method(mut self, method: StartMethod) -> PoolBuilder {
        self.start_method = method;
        self
    }

    /// Starts the workers; [`PoolError::Spawn`] if one cannot be started.
    ///
    /// Fork workers are forked from a thread of the pool: see the crate docs on
    /// forking a multi-threaded process.
    pub fn build(self) -> Result<Pool, PoolError> {
        let processes = match self.processes {
            Some(0) => return Err(PoolError::ZeroProcesses(0)),
            Some(n) => n,
            None => mproc_process::cpu_count(),
        };
        if self.maxtasks == Some(0) {
            return Err(PoolError::ZeroMaxTasks(0));
        }
        let shared = Scheduler::new(Config {
            processes,
            initializer: self.initializer,
            maxtasks: self.maxtasks.map(|n| n as u64),
            start_method: self.start_method,
        });
        let (tx, rx) = mpsc::sync_channel(1);
        let s = shared.clone();
        let collector = std::thread::Builder::new()
            .name("mproc-pool-collector".into())
            .spawn(move || scheduler::collect(s, tx))
            .map_err(|e| PoolError::Spawn(e.to_string()))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = collector.join();
                return Err(e);
            }
            Err(_) => {
                let _ = collector.join();
                return Err(PoolError::Spawn("the pool's collector thread ended early".into()));
            }
        }
        let s = shared.clone();
        let dispatcher = match std::thread::Builder::new()
            .name("mproc-pool-dispatcher".into())
            .spawn(move || scheduler::dispatch(s))
        {
            Ok(t) => t,
            Err(e) => {
                shared.lock().terminate();
                let _ = collector.join();
                return Err(PoolError::Spawn(e.to_string()));
            }
        };
        Ok(Pool { shared, threads: Mutex::new(Some((dispatcher, collector))) })
    }
}

/// A pool of worker processes: Python's `multiprocessing.Pool`.
///
/// Tasks are `fn` items, or closures without captures (which coerce to `fn`
/// pointers), taking and returning serde types; arguments and results travel
/// encoded with postcard. For bulk data take and return
/// [`Bytes`](mproc_ipc::Bytes) and [`PodVec`](mproc_ipc::PodVec) (one `memcpy`
/// each way): a `Vec<u8>` argument costs about 1.7 ns per byte to encode and as
/// much to decode, serde handling it byte by byte.
///
/// ```
/// use std::time::Duration;
/// use mproc_pool::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.map(square, 0..5)?, vec![0, 1, 4, 9, 16]);
/// let r = pool.apply_async(square, 7)?;
/// assert_eq!(r.get_timeout(Duration::from_secs(10))?, 49);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), mproc_pool::PoolError>(())
/// ```
///
/// # Start methods
/// Workers are forked by default. With [`StartMethod::Spawn`] each worker is a
/// fresh exec of this binary instead. Nothing needs registering for that: the
/// pool's worker entry is part of this crate, so it is linked into every binary
/// that uses the pool (tasks and initializers travel as code offsets, as with
/// fork).
///
/// ```
/// use mproc_pool::{Pool, StartMethod};
///
/// fn cube(x: i64) -> i64 { x * x * x }
///
/// let pool = Pool::builder().processes(2).start_method(StartMethod::Spawn).build()?;
/// assert_eq!(pool.map(cube, [1, 2, 3])?, vec![1, 8, 27]);
/// # Ok::<(), mproc_pool::PoolError>(())
/// ```
///
/// # Failures
/// A task that panics gives [`PoolError::TaskPanicked`] with the message; the
/// worker survives. A worker that dies while running a task (SIGKILL, the OOM
/// killer, `std::process::exit`) gives [`PoolError::WorkerLost`] for that task;
/// the pool starts a replacement and completes everything else. (CPython's pool
/// hangs forever here.) An argument that does not decode in the worker (a
/// `PodVec` read as another element type) gives [`PoolError::BadArgument`],
/// naming the task, the item and the cause.
///
/// # Shutting down
/// [`close`](Pool::close) stops new submissions and lets the work finish;
/// [`terminate`](Pool::terminate) kills the workers (SIGKILL) and cancels
/// outstanding work with [`PoolError::Terminated`]; [`join`](Pool::join) waits for
/// the workers to be gone (after `close` or `terminate`). Dropping a pool that was
/// not joined terminates it, like Python's `with Pool() as p:` — no worker and no
/// zombie outlives it.
pub struct Pool {
    shared: Arc<Scheduler>,
    threads: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Pool")
            .field("processes", &self.shared.config.processes)
            .field("state", &st.phase.name())
            .field("pending", &st.pending.len())
            .finish()
    }
}

/// CPython's default chunk size for `map`: `ceil(len / (4 × workers))`, at least 1
/// (a count of 0 workers counts as 1). Pools of other launchers share it through
/// [`remote::default_chunksize`](crate::remote::default_chunksize).
pub fn default_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(4 * workers.max(1)).max(1)
}

/// Encodes an argument of type `A`, or a chunk (`[A]`) of them.
fn encode<A, T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, PoolError> {
    postcard::to_allocvec(value).map_err(|source| PoolError::Encode { type_name: std::any::type_name::<A>(), source })
}

impl Pool {
    /// A pool of `processes` workers; [`PoolError::ZeroProcesses`] for 0.
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// A builder, for the initializer, `maxtasksperchild`, the start method, or a
    /// pool of `cpu_count()` workers (`Pool::builder().build()`).
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.shared.config.processes
    }

    fn check_running(&self) -> Result<(), PoolError> {
        match self.shared.lock().phase {
            Phase::Running => Ok(()),
            p => Err(PoolError::NotRunning(p.name())),
        }
    }

    pub(crate) fn shared(&self) -> &Scheduler {
        &self.shared
    }

    /// Runs `f(arg)` in a worker and waits for the result.
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, arg)?.get()
    }

    /// Submits `f(arg)`; the result comes through the [`AsyncResult`].
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_inner(f, arg, None)
    }

    /// [`apply_async`](Self::apply_async) with Python's `callback` (given the
    /// result) and `error_callback` (given the error). One of them runs, on the
    /// pool's collector thread, before the result is ready; keep them short. A
    /// panic in a callback is caught and ignored.
    #[doc(alias = "apply_async")]
    pub fn apply_async_with<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        callback: impl FnOnce(&R) + Send + 'static,
        error_callback: impl FnOnce(&PoolError) + Send + 'static,
    ) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_inner(f, arg, Some(Callbacks { ok: Box::new(callback), err: Box::new(error_callback) }))
    }

    fn apply_inner<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        callbacks: Option<Callbacks<R>>,
    ) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let payload = encode::<A, _>(&arg)?;
        let slot = Slot::new();
        let job = Arc::new(ApplyJob { slot: slot.clone(), callbacks: Mutex::new(callbacks) });
        let unit = Unit { job, chunk: 0, items: None, code: Code::apply(f), payload };
        self.shared.submit([unit], false)?;
        Ok(AsyncResult::new(slot))
    }

    /// `f` over every item, in parallel, results in input order; chunk size
    /// `ceil(len / (4 × processes))`. Fails with the first failed chunk's error,
    /// which names the item ([`PoolError::TaskPanicked`]) or the chunk's items
    /// ([`PoolError::WorkerLost`]).
    pub fn map<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_inner(Code::map(f), items.into_iter().collect(), None, None)?.get()
    }

    /// [`map`](Self::map) with an explicit chunk size (≥ 1).
    #[doc(alias = "map")]
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_inner(Code::map(f), items.into_iter().collect(), Some(chunksize), None)?.get()
    }

    /// [`map`](Self::map) that gives up waiting after `timeout` with
    /// [`PoolError::Timeout`] (Python's `map_async(f, items).get(timeout)`).
    /// The tasks already submitted still run; their results are dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mproc_pool::{Pool, PoolError};
    ///
    /// fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    /// fn stall(x: u32) -> u32 {
    ///     std::thread::sleep(Duration::from_secs(2));
    ///     x
    /// }
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map_timeout(double, 1..4, Duration::from_secs(20))?, [2, 4, 6]);
    /// let short = Duration::from_millis(10);
    /// assert_eq!(pool.map_timeout(stall, [1], short), Err(PoolError::Timeout(short)));
    /// pool.terminate(); // the stalled task is not waited for
    /// # Ok::<(), PoolError>(())
    /// ```
    #[doc(alias = "map")]
    pub fn map_timeout<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        timeout: Duration,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_inner(Code::map(f), items.into_iter().collect(), None, None)?.get_timeout(timeout)
    }

    /// Submits [`map`](Self::map) (default chunk size); the result comes later.
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_inner(Code::map(f), items.into_iter().collect(), None, None)
    }

    /// Submits [`map_chunked`](Self::map_chunked): `chunksize` (≥ 1) items per task.
    #[doc(alias = "map_async")]
    pub fn map_async_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_inner(Code::map(f), items.into_iter().collect(), Some(chunksize), None)
    }

    /// [`map_async`](Self::map_async) with `callback` / `error_callback`, as for
    /// [`apply_async_with`](Self::apply_async_with).
    #[doc(alias = "map_async")]
    pub fn map_async_with<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        callback: impl FnOnce(&Vec<R>) + Send + 'static,
        error_callback: impl FnOnce(&PoolError) + Send + 'static,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let cb = Callbacks { ok: Box::new(callback), err: Box::new(error_callback) };
        self.map_async_inner(Code::map(f), items.into_iter().collect(), None, Some(cb))
    }

    /// `f(*args)` for every tuple of arguments, in input order: Python's
    /// `starmap`. `f` is a fn item or a closure without captures, of one to six
    /// arguments (a `fn` pointer variable is rejected at compile time).
    pub fn starmap<F, Args, R>(&self, f: F, items: impl IntoIterator<Item = Args>) -> Result<Vec<R>, PoolError>
    where
        F: StarFn<Args, R>,
        Args: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.starmap_async(f, items)?.get()
    }

    /// Submits [`starmap`](Self::starmap) (default chunk size).
    pub fn starmap_async<F, Args, R>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        F: StarFn<Args, R>,
        Args: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_inner(Code::starmap::<F, Args, R>(f), items.into_iter().collect(), None, None)
    }

    /// Submits [`starmap`](Self::starmap) with `chunksize` (≥ 1) items per task.
    #[doc(alias = "starmap_async")]
    pub fn starmap_async_chunked<F, Args, R>(
        &self,
        f: F,
        items: impl IntoIterator<Item = Args>,
        chunksize: usize,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        F: StarFn<Args, R>,
        Args: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_inner(Code::starmap::<F, Args, R>(f), items.into_iter().collect(), Some(chunksize), None)
    }

    fn map_async_inner<A, R>(
        &self,
        code: Code,
        items: Vec<A>,
        chunksize: Option<usize>,
        callbacks: Option<Callbacks<Vec<R>>>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        if chunksize == Some(0) {
            return Err(PoolError::ZeroChunksize(0));
        }
        self.check_running()?;
        let len = items.len();
        let cs = chunksize.unwrap_or_else(|| default_chunksize(len, self.processes()));
        let chunks = len.div_ceil(cs);
        if u32::try_from(chunks).is_err() {
            return Err(PoolError::TooManyChunks { items: len, chunksize: cs, chunks });
        }
        let slot = Slot::new();
        let job = Arc::new(MapJob::new(chunks, slot.clone(), callbacks));
        if chunks == 0 {
            job.finish_empty();
            return Ok(AsyncResult::new(slot));
        }
        // Each chunk is submitted as soon as it is encoded, so the workers start
        // while the rest is being encoded.
        for (i, chunk) in items.chunks(cs).enumerate() {
            let start = i * cs;
            let unit = Unit {
                job: job.clone(),
                chunk: i as u32,
                items: Some(start..start + chunk.len()),
                code,
                payload: encode::<A, _>(chunk)?,
            };
            // Only the first submission can find the pool closed by another thread;
            // later chunks belong to a job already accepted.
            self.shared.submit([unit], i > 0)?;
        }
        Ok(AsyncResult::new(slot))
    }

    /// A lazy, ordered `map`: items are taken from `items` as results are
    /// consumed, one per task (Python's default `chunksize=1`), with at most
    /// `4 × processes` tasks submitted and not yet consumed — so memory stays
    /// bounded for an endless iterator. Each result is a `Result`: a failed task
    /// yields its error and the iteration goes on.
    pub fn imap<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<'_, I::IntoIter, R>, PoolError>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_chunked(f, items, 1)
    }

    /// [`imap`](Self::imap) with `chunksize` items per task; a failed chunk yields
    /// one error for its items.
    #[doc(alias = "imap")]
    pub fn imap_chunked<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<Imap<'_, I::IntoIter, R>, PoolError>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Imap::new(self, Code::map(f), items.into_iter(), chunksize)
    }

    /// Like [`imap`](Self::imap), but yields results in completion order.
    pub fn imap_unordered<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<ImapUnordered<'_, I::IntoIter, R>, PoolError>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_unordered_chunked(f, items, 1)
    }

    /// [`imap_unordered`](Self::imap_unordered) with `chunksize` items per task.
    #[doc(alias = "imap_unordered")]
    pub fn imap_unordered_chunked<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<ImapUnordered<'_, I::IntoIter, R>, PoolError>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ImapUnordered::new(self, Code::map(f), items.into_iter(), chunksize)
    }

    /// No more submissions; the work already submitted finishes, then the
    /// workers exit. Call [`join`](Self::join) to wait for that.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        if st.phase == Phase::Running {
            st.phase = Phase::Closed;
        }
        drop(st);
        self.shared.notify();
    }

    /// Kills the workers (SIGKILL) at once; outstanding work fails with
    /// [`PoolError::Terminated`]. Waits until every worker is reaped.
    pub fn terminate(&self) {
        let cancelled = {
            let mut st = self.shared.lock();
            if st.phase == Phase::Terminated {
                Vec::new()
            } else {
                st.terminate()
            }
        };
        self.shared.notify();
        for unit in cancelled {
            unit.deliver(Delivery::Cancelled(PoolError::Terminated));
        }
        self.join_threads();
    }

    /// Waits for the workers to exit after [`close`](Self::close) (all work done)
    /// or [`terminate`](Self::terminate); [`PoolError::StillRunning`] on a running
    /// pool.
    pub fn join(&self) -> Result<(), PoolError> {
        if self.shared.lock().phase == Phase::Running {
            return Err(PoolError::StillRunning);
        }
        self.join_threads();
        Ok(())
    }

    fn join_threads(&self) {
        let threads = self.threads.lock().ignore_poison().take();
        if let Some((dispatcher, collector)) = threads {
            let _ = dispatcher.join();
            let _ = collector.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let joined = self.threads.get_mut().ignore_poison().is_none();
        if !joined {
            self.terminate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chunksize_is_cpythons() {
        assert_eq!(default_chunksize(100_000, 2), 12_500);
        assert_eq!(default_chunksize(10, 2), 2);
        assert_eq!(default_chunksize(9, 2), 2);
        assert_eq!(default_chunksize(1, 4), 1);
        assert_eq!(default_chunksize(0, 4), 1);
        assert_eq!(default_chunksize(10_000, 2), 1250);
        assert_eq!(default_chunksize(5, 0), 2, "no workers counts as one");
    }

    #[test]
    fn bad_sizes_are_typed_errors() {
        assert_eq!(Pool::new(0).unwrap_err(), PoolError::ZeroProcesses(0));
        assert_eq!(Pool::builder().processes(1).maxtasksperchild(0).build().unwrap_err(), PoolError::ZeroMaxTasks(0));
    }
}
