//! The pool's engine: worker processes, the dispatcher thread and the collector
//! thread.
//!
//! # Who knows what
//! Each worker is a forked process with two socketpairs to the parent: tasks
//! in, results out. The **dispatcher** thread moves units (one task, or one
//! chunk of a map) from the pool's `pending` queue to a worker's `in_flight`
//! queue and writes them, many per message. The **collector** thread reads the
//! results messages of all workers (one `poll`), pops the same number of units
//! off the worker's `in_flight` queue (a worker answers in order) and hands each
//! outcome to its job. Two threads, because either side may block on a full
//! socket while the other must keep draining: a worker blocked writing results
//! is unblocked by the collector, never by the dispatcher.
//!
//! # How many units in flight
//! A worker holds at most `depth` units, where `depth` keeps about
//! [`TARGET_QUEUED`] of work queued per worker, from the running average of the
//! time per unit the workers report (1 until the first report, and for units of
//! a millisecond or more): short tasks are pipelined and batched, long tasks go
//! one at a time to whichever worker is free, as in CPython.
//!
//! # Results in batches, and a worker that dies
//! A worker answers a message of units with one message of results (or sooner,
//! after [`FLUSH_AFTER`] or when its journal is full). Each finished result is
//! first copied into the worker's *journal*, a small shared-memory segment, and
//! the worker counts the units it started there too. When a worker dies its
//! results socket reports EOF; the collector then reads the journal: finished
//! results not yet sent are delivered as usual, the unit that was running fails
//! with `WorkerLost`, and the units it held but had not started go back to the
//! front of `pending`. The worker is reaped for its exit code and replaced.
//! So a task that kills its worker takes only itself down, while results still
//! travel many to a write.
//!
//! # Fork, spawn and threads
//! The collector starts every worker, without holding the pool's lock, as a
//! daemon process (killed by `PR_SET_PDEATHSIG` if the pool's process dies).
//! A forked worker closes every parent-side socket it inherited, then touches
//! nothing but its own sockets and the task functions — no lock another thread
//! could hold. A spawned worker is an exec of this binary running
//! [`SPAWNED_WORKER`], this crate's spawn entry: its two channel ends and its
//! journal arrive as shared handles (inherited fds), its initializer as code
//! offsets and encoded argument. From there both run the same [`worker_main`].

use std::collections::VecDeque;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mproc_ipc::{Connection, ConnectionToken, PAIR_MAX_FRAME};
use mproc_process::{Entry, Process, Shared as Handle};
use mproc_shm::{Exports, Segment, Share};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::job::{Delivery, Job};
use crate::task::{self, Code, ForkInit, Initializer};
use crate::wire::{self, Outcome, ResultsWriter};
use crate::{PoolError, StartMethod, WorkerExit};

/// How much work, in time, the scheduler tries to keep queued at each worker.
pub(crate) const TARGET_QUEUED: Duration = Duration::from_millis(2);
/// The most units in flight at one worker.
const MAX_DEPTH: usize = 1024;
/// Beyond this many payload bytes in flight, a worker gets no more units until
/// it answers (it always gets at least one).
const MAX_IN_FLIGHT_BYTES: usize = 4 << 20;
/// A worker sends the results it holds once it has spent this long on them,
/// even if more units of the message are waiting.
const FLUSH_AFTER: Duration = Duration::from_millis(2);
/// How long to wait for a worker whose socket closed to be reaped before it is
/// SIGKILLed.
const REAP_GRACE: Duration = Duration::from_secs(2);
/// The collector wakes at least this often to notice `terminate` and to retry a
/// failed worker start.
const COLLECT_TICK: Duration = Duration::from_millis(200);
/// After this many worker starts in a row failed, a pool left with no worker
/// stops (outstanding work fails with the start's error) instead of waiting for
/// a worker forever: the failure is not a passing one (for a spawn pool, most
/// likely its binary was replaced on disk).
const MAX_FAILED_STARTS: u32 = 5;

/// Fixed settings of a pool.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) maxtasks: Option<u64>,
    pub(crate) start_method: StartMethod,
}

/// The pool's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// No new calls; the work already submitted finishes, then the workers exit.
    Closed,
    /// Workers killed, outstanding work cancelled.
    Terminated,
}

impl Phase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Closed => "closed",
            Phase::Terminated => "terminated",
        }
    }
}

/// One unit of work: a task, or a chunk of a map.
pub(crate) struct Unit {
    pub(crate) job: Arc<dyn Job>,
    /// The unit's index in its job.
    pub(crate) chunk: u32,
    /// The input items the unit covers, for map-like jobs.
    pub(crate) items: Option<Range<usize>>,
    pub(crate) code: Code,
    pub(crate) payload: Vec<u8>,
}

impl Unit {
    pub(crate) fn deliver(self, d: Delivery<'_>) {
        self.job.deliver(self.chunk, self.items, d);
    }
}

struct Worker {
    id: u64,
    pid: u32,
    tx: Arc<Mutex<Connection>>,
    /// Parent-side fds, which later children must close.
    fds: [RawFd; 3],
    in_flight: VecDeque<Unit>,
    in_flight_bytes: usize,
    /// Units sent since the worker started; the first in flight is number
    /// `sent - in_flight.len()` (counting from 0).
    sent: u64,
    /// Units it may still be sent (`maxtasksperchild`).
    budget: Option<u64>,
    /// What the worker has started and finished, readable after it died.
    journal: Segment,
    process: Process,
    stopped: bool,
}

impl Worker {
    fn can_take(&self, depth: usize) -> bool {
        !self.stopped
            && self.budget != Some(0)
            && (self.in_flight.is_empty()
                || (self.in_flight.len() < depth && self.in_flight_bytes < MAX_IN_FLIGHT_BYTES))
    }

    fn journal(&self) -> Journal {
        Journal(self.journal.as_ptr())
    }
}

/// Everything behind the pool's lock.
pub(crate) struct State {
    pub(crate) phase: Phase,
    pub(crate) pending: VecDeque<Unit>,
    /// Live `imap` iterators that may still submit (they keep a closed pool's
    /// workers alive).
    pub(crate) feeders: usize,
    workers: Vec<Worker>,
    /// Running average of the time per unit, as the workers report it.
    unit_nanos: Option<u64>,
    /// Why outstanding work is cancelled once terminated: `Terminated`, or
    /// `InitializerFailed`.
    pub(crate) cancel_error: PoolError,
    /// The dispatcher is blocked on `work` (a notify costs a futex call, so it
    /// is made only then).
    dispatcher_idle: bool,
    next_id: u64,
}

impl State {
    fn depth(&self) -> usize {
        match self.unit_nanos {
            None => 1,
            Some(t) => (TARGET_QUEUED.as_nanos() as u64 / t.max(1)).clamp(1, MAX_DEPTH as u64) as usize,
        }
    }

    /// Nothing left to do and nothing that could add work.
    fn drained(&self) -> bool {
        self.pending.is_empty() && self.feeders == 0 && self.workers.iter().all(|w| w.in_flight.is_empty())
    }

    fn wants_workers(&self) -> bool {
        match self.phase {
            Phase::Running => true,
            Phase::Closed => !self.drained(),
            Phase::Terminated => false,
        }
    }

    /// Moves units from `pending` to the least loaded worker that can take
    /// some; the message to send it.
    fn next_batch(&mut self) -> Option<(Arc<Mutex<Connection>>, Vec<u8>)> {
        if self.pending.is_empty() {
            return None;
        }
        let depth = self.depth();
        let open = self.workers.iter().filter(|w| w.can_take(depth)).count();
        let share = self.pending.len().div_ceil(open.max(1));
        let w = self.workers.iter_mut().filter(|w| w.can_take(depth)).min_by_key(|w| w.in_flight.len())?;
        let mut msg = Vec::new();
        for _ in 0..share {
            if !w.can_take(depth) {
                break;
            }
            let Some(unit) = self.pending.pop_front() else { break };
            wire::put_unit(&mut msg, unit.code, &unit.payload);
            w.in_flight_bytes += unit.payload.len();
            w.sent += 1;
            if let Some(b) = &mut w.budget {
                *b -= 1;
            }
            w.in_flight.push_back(unit);
        }
        Some((w.tx.clone(), msg))
    }

    /// Sets the phase to terminated and SIGKILLs every worker; the pending units,
    /// to be cancelled by the caller outside the lock.
    pub(crate) fn terminate(&mut self) -> Vec<Unit> {
        self.phase = Phase::Terminated;
        for w in &mut self.workers {
            // The worker is in `workers`, so the collector has not reaped it yet:
            // its pid cannot have been reused. A failure means it is gone already.
            let _ = w.process.kill();
        }
        self.pending.drain(..).collect()
    }
}

/// Starts a worker (forked or spawned, as configured) and adds it to the pool;
/// the parent end of its results socket, for the collector. Called by the
/// collector only, without the pool's lock: a spawn takes an exec.
fn start_worker(shared: &Shared) -> Result<(u64, Connection), PoolError> {
    let config = &shared.config;
    let (id, close) = {
        let mut st = shared.lock();
        let id = st.next_id;
        st.next_id += 1;
        // Only this thread adds or removes workers, so the list stays right.
        (id, st.workers.iter().flat_map(|w| w.fds).collect::<Vec<RawFd>>())
    };
    let spawn_err = |e: &dyn std::fmt::Display| PoolError::Spawn(e.to_string());
    let (p_tx, c_rx) = Connection::pair().map_err(|e| spawn_err(&e))?;
    let (c_tx, p_rx) = Connection::pair().map_err(|e| spawn_err(&e))?;
    let (c_rx, c_tx) = (Arc::new(c_rx), Arc::new(c_tx));
    let journal = Segment::anonymous(JOURNAL_LEN).map_err(|e| spawn_err(&e))?;
    let journal_fd = journal.fd().map_or(-1, |fd| fd.as_raw_fd());
    let builder = Process::builder().name(format!("PoolWorker-{id}")).daemon(true);
    // Why the initializer's argument did not encode for a spawned worker, if it
    // did not (the process crate's error says only that serde failed).
    let init_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut process = match config.start_method {
        StartMethod::Fork => {
            let mut close = close;
            close.extend([p_tx.as_raw_fd(), p_rx.as_raw_fd(), journal_fd]);
            let child = WorkerArgs {
                rx: c_rx.as_raw_fd(),
                tx: c_tx.as_raw_fd(),
                journal: journal.as_ptr() as usize,
                close,
                initializer: config.initializer.as_ref().map(|i| (i.for_fork)()),
                maxtasks: config.maxtasks,
            };
            builder.target(move || forked_worker(child)).build()
        }
        StartMethod::Spawn => {
            let args = SpawnArgs {
                rx: Handle(ChildEnd(c_rx.clone())),
                tx: Handle(ChildEnd(c_tx.clone())),
                journal: Handle(journal.clone()),
                init: config.initializer.as_ref().map(|i| SpawnInit {
                    code: (i.code.trampoline, i.code.func),
                    arg: InitArg::Encode { encode: i.encode.clone(), error: init_error.clone() },
                }),
                maxtasks: config.maxtasks,
            };
            builder.spawn_entry(&SPAWNED_WORKER, args).build()
        }
    };
    if let Err(e) = process.start() {
        let why = init_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        return Err(match why {
            Some(why) => PoolError::Spawn(format!("{e} ({why})")),
            None => spawn_err(&e),
        });
    }
    // The child has its copies; ours must go, or its death would not show as EOF.
    drop((c_rx, c_tx));
    let pid = process.pid().unwrap_or(0);
    let mut worker = Worker {
        id,
        pid,
        fds: [p_tx.as_raw_fd(), p_rx.as_raw_fd(), journal_fd],
        tx: Arc::new(Mutex::new(p_tx)),
        in_flight: VecDeque::new(),
        in_flight_bytes: 0,
        sent: 0,
        budget: config.maxtasks,
        journal,
        process,
        stopped: false,
    };
    let mut st = shared.lock();
    // The pool may have been shut down while the worker started: it is added
    // anyway, so that the collector reaps it, but told to go.
    if st.phase == Phase::Terminated {
        let _ = worker.process.kill();
    } else if !st.wants_workers() {
        worker.stopped = true;
        let _ = worker.tx.lock().unwrap_or_else(|p| p.into_inner()).send_bytes(&[]);
    }
    st.workers.push(worker);
    Ok((id, p_rx))
}

/// A worker's end of a channel, as a spawned worker's argument. The parent
/// keeps a reference of its own until the worker has started: the process crate
/// drops the arguments once they are encoded, before the exec, and the exported
/// fd must still be open then.
struct ChildEnd(Arc<Connection>);

impl Share for ChildEnd {
    type Token = ConnectionToken;

    fn export(&self, exports: &mut Exports) -> mproc_shm::Result<ConnectionToken> {
        self.0.export(exports)
    }

    fn import(token: ConnectionToken) -> mproc_shm::Result<ChildEnd> {
        Connection::import(token).map(|c| ChildEnd(Arc::new(c)))
    }
}

impl ChildEnd {
    /// The connection; `None` if something else still holds it (never in a
    /// worker, where the import made the only reference).
    fn into_connection(self) -> Option<Connection> {
        Arc::into_inner(self.0)
    }
}

/// State shared by the pool handle, the dispatcher and the collector.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the dispatcher: new units, free capacity, a phase change.
    work: Condvar,
    pub(crate) config: Config,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                phase: Phase::Running,
                pending: VecDeque::new(),
                feeders: 0,
                workers: Vec::new(),
                unit_nanos: None,
                dispatcher_idle: false,
                cancel_error: PoolError::Terminated,
                next_id: 1,
            }),
            work: Condvar::new(),
            config,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the dispatcher.
    pub(crate) fn notify(&self) {
        self.work.notify_all();
    }

    /// Queues units. `continuation` lets an `imap` started before `close` go on.
    pub(crate) fn submit(&self, units: impl IntoIterator<Item = Unit>, continuation: bool) -> Result<(), PoolError> {
        let mut st = self.lock();
        match st.phase {
            Phase::Running => {}
            Phase::Closed if continuation => {}
            Phase::Terminated if st.cancel_error != PoolError::Terminated => return Err(st.cancel_error.clone()),
            p => return Err(PoolError::NotRunning(p.name())),
        }
        st.pending.extend(units);
        let wake = st.dispatcher_idle;
        drop(st);
        if wake {
            self.work.notify_all();
        }
        Ok(())
    }
}

/// The dispatcher thread: sends pending units to workers with room for them,
/// and the stop message once a closed pool has drained.
pub(crate) fn dispatch(shared: Arc<Shared>) {
    let mut st = shared.lock();
    loop {
        if st.phase == Phase::Terminated {
            return;
        }
        if let Some((tx, msg)) = st.next_batch() {
            drop(st);
            // A send to a dead worker fails; the collector sees its EOF and
            // accounts for its units.
            let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send_bytes(&msg);
            st = shared.lock();
            continue;
        }
        if st.phase == Phase::Closed && st.drained() {
            let stops: Vec<_> = st
                .workers
                .iter_mut()
                .filter(|w| !w.stopped)
                .map(|w| {
                    w.stopped = true;
                    w.tx.clone()
                })
                .collect();
            drop(st);
            for tx in stops {
                let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send_bytes(&[]);
            }
            return;
        }
        st.dispatcher_idle = true;
        st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
        st.dispatcher_idle = false;
    }
}

/// The collector thread: starts the workers (reporting on `started`), reads
/// results, replaces dead workers, and ends when the pool is shut down and
/// every worker is reaped.
pub(crate) fn collect(shared: Arc<Shared>, started: SyncSender<Result<(), PoolError>>) {
    let mut links: Vec<(u64, Connection)> = Vec::new();
    for _ in 0..shared.config.processes {
        match start_worker(&shared) {
            Ok(l) => links.push(l),
            Err(e) => {
                let _ = started.send(Err(e));
                shared.lock().terminate();
                break;
            }
        }
    }
    if shared.lock().phase == Phase::Running {
        let _ = started.send(Ok(()));
    }
    let mut failed_starts = 0u32;
    loop {
        loop {
            let need = {
                let st = shared.lock();
                st.wants_workers() && st.workers.len() < shared.config.processes
            };
            if !need {
                break;
            }
            match start_worker(&shared) {
                Ok(l) => {
                    links.push(l);
                    failed_starts = 0;
                }
                Err(e) => {
                    failed_starts += 1;
                    if failed_starts >= MAX_FAILED_STARTS {
                        stop_without_workers(&shared, e);
                    }
                    break; // retried on the next tick
                }
            }
        }
        {
            let mut st = shared.lock();
            if st.workers.is_empty() && !st.wants_workers() {
                let orphans: Vec<Unit> = st.pending.drain(..).collect();
                drop(st);
                for u in orphans {
                    u.deliver(Delivery::Cancelled(PoolError::Terminated));
                }
                return;
            }
            shared.work.notify_all();
        }
        let refs: Vec<&Connection> = links.iter().map(|(_, l)| l).collect();
        let ready = mproc_ipc::wait(&refs, Some(COLLECT_TICK)).unwrap_or_default();
        let mut dead = Vec::new();
        for i in ready {
            let (id, link) = &mut links[i];
            loop {
                match link.recv_bytes() {
                    Ok(msg) if on_results(&shared, *id, &msg) => {}
                    _ => {
                        dead.push(i);
                        break;
                    }
                }
                if link.buffered() == 0 {
                    break;
                }
            }
        }
        for i in dead.into_iter().rev() {
            let (id, link) = links.swap_remove(i);
            drop(link);
            on_death(&shared, id);
        }
    }
}

/// Worker starts keep failing with `error`: if no worker is left, stop the pool
/// and fail its outstanding work (and later calls) with that error.
fn stop_without_workers(shared: &Shared, error: PoolError) {
    let mut st = shared.lock();
    if !st.workers.is_empty() || st.phase == Phase::Terminated {
        return; // the live workers go on with the work
    }
    st.cancel_error = error.clone();
    let cancelled = st.terminate();
    drop(st);
    shared.notify();
    for unit in cancelled {
        unit.deliver(Delivery::Cancelled(error.clone()));
    }
}

/// Hands a results message's outcomes to their jobs; false if the message is
/// malformed (the worker is then treated as lost).
fn on_results(shared: &Shared, id: u64, msg: &[u8]) -> bool {
    let Ok((nanos, outcomes)) = wire::results(msg) else {
        if let Some(w) = shared.lock().workers.iter_mut().find(|w| w.id == id) {
            let _ = w.process.kill();
        }
        return false;
    };
    let mut st = shared.lock();
    let Some(w) = st.workers.iter_mut().find(|w| w.id == id) else { return false };
    if outcomes.len() > w.in_flight.len() {
        let _ = w.process.kill();
        return false;
    }
    let units: Vec<Unit> = w.in_flight.drain(..outcomes.len()).collect();
    w.in_flight_bytes -= units.iter().map(|u| u.payload.len()).sum::<usize>();
    if let Some(per_unit) = nanos.checked_div(outcomes.len() as u64) {
        st.unit_nanos = Some(match st.unit_nanos {
            None => per_unit,
            Some(avg) => (avg * 3 + per_unit) / 4,
        });
    }
    // The dispatcher needs waking for more work, or to stop a closed pool.
    let wake = st.dispatcher_idle && (!st.pending.is_empty() || st.phase == Phase::Closed);
    drop(st);
    if wake {
        shared.work.notify_all();
    }
    for (unit, outcome) in units.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Ok(r) => unit.deliver(Delivery::Done(&msg[r])),
            Outcome::Failed(f) => unit.deliver(Delivery::Failed(f)),
        }
    }
    true
}

/// A worker's results socket closed: account for its units, reap it.
fn on_death(shared: &Shared, id: u64) {
    let mut st = shared.lock();
    let Some(idx) = st.workers.iter().position(|w| w.id == id) else { return };
    let mut w = st.workers.remove(idx);
    let journal = w.journal();
    let mut cancelled_pending = Vec::new();
    let init_failure = journal.init_failure();
    if let Some(message) = init_failure.clone() {
        // The initializer panicked: stop the pool rather than respawn forever.
        st.cancel_error = PoolError::InitializerFailed { pid: w.pid as i32, message };
        if st.phase != Phase::Terminated {
            cancelled_pending = st.terminate();
        }
    }
    let terminated = st.phase == Phase::Terminated;
    let cancel_error = st.cancel_error.clone();
    let started = journal.word(STARTED).load(Ordering::Acquire);
    let mut first = w.sent - w.in_flight.len() as u64;
    // Results the worker finished but had not sent yet are in its journal.
    let (journal_first, journal_bytes) = match init_failure {
        None => journal.entries(),
        Some(_) => (0, Vec::new()),
    };
    let mut recovered = Vec::new();
    for (k, outcome) in wire::entries(&journal_bytes).unwrap_or_default().into_iter().enumerate() {
        let seq = journal_first + k as u64;
        if seq < first {
            continue; // sent, and read by us already
        }
        if seq != first + recovered.len() as u64 || recovered.len() == w.in_flight.len() {
            break;
        }
        recovered.push(outcome);
    }
    let recovered: Vec<(Unit, Outcome)> = w.in_flight.drain(..recovered.len()).zip(recovered).collect();
    first += recovered.len() as u64;
    let mut lost = Vec::new();
    let mut requeue = Vec::new();
    for (k, unit) in w.in_flight.drain(..).enumerate() {
        if terminated || first + (k as u64) < started {
            lost.push(unit);
        } else {
            requeue.push(unit);
        }
    }
    for unit in requeue.into_iter().rev() {
        st.pending.push_front(unit);
    }
    drop(st);
    shared.work.notify_all();
    for unit in cancelled_pending {
        unit.deliver(Delivery::Cancelled(cancel_error.clone()));
    }
    for (unit, outcome) in recovered {
        match outcome {
            Outcome::Ok(r) => unit.deliver(Delivery::Done(&journal_bytes[r])),
            Outcome::Failed(f) => unit.deliver(Delivery::Failed(f)),
        }
    }
    let exitcode = reap(&mut w.process);
    let exit = WorkerExit { pid: w.pid as i32, exitcode };
    for unit in lost {
        if terminated {
            unit.deliver(Delivery::Cancelled(cancel_error.clone()));
        } else {
            unit.deliver(Delivery::Lost(exit));
        }
    }
}

fn reap(p: &mut Process) -> Option<i32> {
    if p.join_timeout(REAP_GRACE).is_err() {
        let _ = p.kill();
        let _ = p.join_timeout(REAP_GRACE);
    }
    p.exitcode()
}

/// What a forked worker needs, as plain values that survive `fork`.
struct WorkerArgs {
    rx: RawFd,
    tx: RawFd,
    /// Address of the worker's journal (mapped at the same address in the child).
    journal: usize,
    /// Inherited fds the worker must close.
    close: Vec<RawFd>,
    initializer: Option<ForkInit>,
    maxtasks: Option<u64>,
}

/// What a spawned worker is started with: its channel ends and journal travel
/// as shared handles (inherited fds), the initializer as code offsets and the
/// encoded argument.
#[derive(Serialize, Deserialize)]
struct SpawnArgs {
    rx: Handle<ChildEnd>,
    tx: Handle<ChildEnd>,
    journal: Handle<Segment>,
    init: Option<SpawnInit>,
    maxtasks: Option<u64>,
}

/// A spawned worker's initializer: `(trampoline, function)` offsets and the
/// argument.
#[derive(Serialize, Deserialize)]
struct SpawnInit {
    code: (i64, i64),
    arg: InitArg,
}

/// An initializer's argument: encoded on the parent's side while the spawn
/// request is encoded (so `Shared` handles in it are exported with the rest),
/// bytes on the worker's side, decoded by the initializer's trampoline.
enum InitArg {
    Encode {
        encode: Arc<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>,
        /// Where a failure's message goes (the spawn's encoder keeps only that
        /// serde failed).
        error: Arc<Mutex<Option<String>>>,
    },
    Bytes(Vec<u8>),
}

impl Serialize for InitArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InitArg::Encode { encode, error } => match encode() {
                Ok(bytes) => bytes.serialize(s),
                Err(e) => {
                    *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                    Err(serde::ser::Error::custom(e))
                }
            },
            InitArg::Bytes(b) => b.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for InitArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<u8>::deserialize(d).map(InitArg::Bytes)
    }
}

/// The pool's spawn entry: registered in every binary that links this crate, so
/// a program needs no registration of its own for spawn pools.
static SPAWNED_WORKER: Entry<SpawnArgs> = mproc_process::entry!(spawned_worker);

/// The body of a spawned worker (a fresh exec of the pool's binary).
fn spawned_worker(args: SpawnArgs) {
    // Kept for the worker's life: the journal's mapping.
    let journal = args.journal.into_inner();
    let init = args.init.map(|SpawnInit { code: (trampoline, func), arg }| {
        let bytes = match arg {
            InitArg::Bytes(b) => b,
            InitArg::Encode { .. } => Vec::new(), // only ever made in the parent
        };
        Box::new(move || {
            // SAFETY: the offsets were made by `Code::init*` in the parent, which
            // runs this same binary (the process crate checked its identity before
            // this entry ran).
            unsafe { Code { trampoline, func }.run(&bytes, &mut Vec::new()) }.map_err(|f| f.message)
        }) as Box<dyn FnOnce() -> Result<(), String>>
    });
    let (Some(rx), Some(tx)) = (args.rx.into_inner().into_connection(), args.tx.into_inner().into_connection()) else {
        return;
    };
    worker_main(rx, tx, Journal(journal.as_ptr()), init, args.maxtasks);
}

/// Rebuilds a worker's end of a socketpair from its inherited fd number.
///
/// # Safety
/// `fd` must be an open stream socket that nothing else in this process owns.
unsafe fn connection_from_raw(fd: RawFd) -> Connection {
    // SAFETY: ownership of an open, otherwise unowned socket fd (contract).
    let mut c = Connection::from_unix(unsafe { UnixStream::from_raw_fd(fd) });
    c.set_max_frame(PAIR_MAX_FRAME);
    c
}

/// The body of a forked worker.
fn forked_worker(args: WorkerArgs) {
    for fd in &args.close {
        // SAFETY: these fds are the parent's ends of other channels, which no
        // object of this (forked) process will use or close again.
        unsafe { libc::close(*fd) };
    }
    // SAFETY: the two fds are this worker's ends, inherited open; the parent's
    // `Connection`s for them are never dropped here (that stack frame never
    // returns in the child), so these are their only owners.
    let (rx, tx) = unsafe { (connection_from_raw(args.rx), connection_from_raw(args.tx)) };
    let journal = Journal(args.journal as *mut u8);
    let init = args.initializer.map(|i| i as Box<dyn FnOnce() -> Result<(), String>>);
    worker_main(rx, tx, journal, init, args.maxtasks);
}

/// The body of a worker process, forked or spawned: run the initializer, then
/// answer task messages until told to stop (or the pool is gone).
fn worker_main(
    mut rx: Connection,
    mut tx: Connection,
    journal: Journal,
    init: Option<Box<dyn FnOnce() -> Result<(), String>>>,
    maxtasks: Option<u64>,
) {
    task::install_worker_panic_hook();
    if let Some(init) = init {
        if let Err(message) = init() {
            journal.note_init_failure(&message);
            // SAFETY: _exit ends this worker at once, as the process crate would.
            unsafe { libc::_exit(1) };
        }
    }
    let mut started = 0u64;
    let mut out = ResultsWriter::new(Vec::with_capacity(64 << 10));
    let mut journaled = 0usize;
    // Sends the results held so far; the journal then starts at unit `started`.
    let mut flush = |out: &mut ResultsWriter, journaled: &mut usize, since: Instant, started: u64| {
        let sent = out.count() == 0 || tx.send_bytes(out.finish(since.elapsed().as_nanos() as u64)).is_ok();
        out.reset();
        *journaled = 0;
        journal.word(COMMITTED).store(0, Ordering::Release);
        journal.word(FIRST_SEQ).store(started, Ordering::Release);
        sent
    };
    loop {
        let Ok(msg) = rx.recv_bytes() else { return }; // the pool is gone
        if msg.is_empty() {
            return; // stop
        }
        let mut since = Instant::now();
        for unit in wire::units(&msg) {
            let Ok((code, payload)) = unit else { return };
            started += 1;
            journal.word(STARTED).store(started, Ordering::Release);
            let at = out.len();
            // SAFETY: the code offsets were made by `Code`'s constructors in the
            // parent, which is this same binary (forked, or re-exec'd after the
            // process crate checked the executable's identity).
            out.push(|buf| unsafe { code.run(&msg[payload], buf) });
            // A finished result is in the journal or on its way before the next
            // unit starts: a unit that kills its worker takes only itself down.
            if !journal.append(&mut journaled, out.since(at)) || since.elapsed() >= FLUSH_AFTER {
                if !flush(&mut out, &mut journaled, since, started) {
                    return;
                }
                since = Instant::now();
            }
        }
        if !flush(&mut out, &mut journaled, since, started) {
            return;
        }
        if maxtasks.is_some_and(|m| started >= m) {
            return;
        }
    }
}

/// The size of a worker's journal segment.
const JOURNAL_LEN: usize = 256 << 10;
/// Journal word: the number of units the worker has started.
const STARTED: usize = 0;
/// Journal word: the sequence number (counting units from 0) of the first
/// journaled result.
const FIRST_SEQ: usize = 8;
/// Journal word: the bytes of complete results in the journal.
const COMMITTED: usize = 16;
/// `FIRST_SEQ` when the initializer panicked; the data is then its message.
const INIT_FAILED: u64 = u64::MAX;
/// Where the results start.
const JOURNAL_DATA: usize = 64;

/// A worker's journal: shared memory the worker writes as it goes and the
/// parent reads after the worker died (never while it runs).
///
/// Three `AtomicU64` words (`STARTED`, `FIRST_SEQ`, `COMMITTED`), then, from
/// `JOURNAL_DATA`, the results the worker finished and has not sent yet, in the
/// wire format of results laid end to end. The worker copies each result in
/// before bumping `COMMITTED` (Release), so the parent (Acquire) sees only whole
/// results.
#[derive(Clone, Copy)]
struct Journal(*mut u8);

impl Journal {
    fn word(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at + 8 <= JOURNAL_DATA && at % 8 == 0);
        // SAFETY: the journal is a live, page-aligned mapping of JOURNAL_LEN
        // bytes whose first words are used only as AtomicU64s.
        unsafe { &*(self.0.add(at) as *const AtomicU64) }
    }

    /// Appends `entry` after the committed bytes; false if it does not fit.
    fn append(&self, journaled: &mut usize, entry: &[u8]) -> bool {
        if *journaled + entry.len() > JOURNAL_LEN - JOURNAL_DATA {
            return false;
        }
        // SAFETY: the range lies inside the mapping (checked above), past the
        // committed bytes, and only this worker writes it.
        unsafe { std::ptr::copy_nonoverlapping(entry.as_ptr(), self.0.add(JOURNAL_DATA + *journaled), entry.len()) };
        *journaled += entry.len();
        self.word(COMMITTED).store(*journaled as u64, Ordering::Release);
        true
    }

    /// Records that the initializer panicked, with its message, in place of
    /// results (the worker then exits).
    fn note_init_failure(&self, message: &str) {
        let mut len = 0;
        let msg = &message.as_bytes()[..message.len().min(4096)];
        self.append(&mut len, msg);
        self.word(FIRST_SEQ).store(INIT_FAILED, Ordering::Release);
    }

    /// The initializer's panic message, if it panicked.
    fn init_failure(&self) -> Option<String> {
        if self.word(FIRST_SEQ).load(Ordering::Acquire) != INIT_FAILED {
            return None;
        }
        Some(String::from_utf8_lossy(&self.entries().1).into_owned())
    }

    /// The first journaled sequence number and a copy of the committed results.
    fn entries(&self) -> (u64, Vec<u8>) {
        let len = (self.word(COMMITTED).load(Ordering::Acquire) as usize).min(JOURNAL_LEN - JOURNAL_DATA);
        let first = self.word(FIRST_SEQ).load(Ordering::Acquire);
        // SAFETY: `len` bytes from JOURNAL_DATA lie inside the mapping, and the
        // worker that wrote them is dead.
        let bytes = unsafe { std::slice::from_raw_parts(self.0.add(JOURNAL_DATA), len) }.to_vec();
        (first, bytes)
    }
}
