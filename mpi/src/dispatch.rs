//! The dispatcher: the one thread of rank 0 that talks MPI. It hands tasks to the worker
//! ranks, at most [`DEPTH`] per rank so a worker finds its next task already queued, and
//! routes each result to the call that waits for it.
//!
//! Sends to a worker block until the worker receives (past MPI's eager limit). That never
//! deadlocks: a worker waits on nothing but its own result send, which it starts before
//! and finishes after its next receive (`worker.rs`), so a blocked send of rank 0 always
//! meets a receive. A large task queued behind a long one does hold the dispatcher until
//! the worker takes it.
//!
//! Waiting: with every worker full it blocks in a matched probe for the next result;
//! with nothing in flight it blocks on the submission channel; in between (free workers,
//! results outstanding) it polls both, backing off from a yield to [`MAX_NAP`], since MPI
//! offers no wake-up a Rust channel could share.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Destination, Source};
use mproc_pool::remote::RemoteTask;

use crate::wire::{self, TAG_RESULT, TAG_STOP};

/// Tasks queued per worker rank.
const DEPTH: usize = 2;
/// The longest nap between polls while results are outstanding and workers are free.
const MAX_NAP: Duration = Duration::from_micros(200);

/// A chunk's (or one call's) outcome: its sequence number within its call, and the
/// result message with the range of the encoded result in it.
pub(crate) type Reply = (usize, wire::Outcome);

/// One task to run on some worker.
pub(crate) struct Unit {
    pub(crate) task: RemoteTask,
    pub(crate) input: Vec<u8>,
    pub(crate) reply: Sender<Reply>,
    pub(crate) seq: usize,
}

/// What the pool's calls send the dispatcher.
pub(crate) enum Msg {
    Units(Vec<Unit>),
    Close,
}

struct InFlight {
    reply: Sender<Reply>,
    seq: usize,
    rank: usize,
}

pub(crate) fn spawn(world: SimpleCommunicator, rx: Receiver<Msg>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("mproc-mpi-dispatch".into())
        .spawn(move || Dispatcher::new(world, rx).run())
        .expect("cannot start the MPI pool's dispatcher thread")
}

struct Dispatcher {
    world: SimpleCommunicator,
    rx: Receiver<Msg>,
    pending: VecDeque<Unit>,
    in_flight: HashMap<u64, InFlight>,
    /// Tasks queued at each rank (index 0, rank 0 itself, stays unused).
    load: Vec<usize>,
    next_id: u64,
    closing: bool,
}

impl Dispatcher {
    fn new(world: SimpleCommunicator, rx: Receiver<Msg>) -> Dispatcher {
        let size = world.size() as usize;
        Dispatcher {
            world,
            rx,
            pending: VecDeque::new(),
            in_flight: HashMap::new(),
            load: vec![0; size],
            next_id: 0,
            closing: false,
        }
    }

    fn run(mut self) {
        let mut nap = Duration::ZERO;
        loop {
            let mut progressed = self.take_submissions();
            progressed |= self.hand_out();
            progressed |= self.collect();
            if self.closing && self.pending.is_empty() && self.in_flight.is_empty() {
                break;
            }
            if progressed {
                nap = Duration::ZERO;
                continue;
            }
            if self.in_flight.is_empty() {
                // Nothing outstanding: sleep until a call submits.
                match self.rx.recv() {
                    Ok(m) => self.accept(m),
                    Err(_) => self.closing = true,
                }
            } else if !self.pending.is_empty() {
                // Every worker is full: the next event that matters is a result.
                let (msg, status) = self.world.any_process().matched_probe_with_tag(TAG_RESULT);
                let buf = crate::wire::receive(msg, &status);
                self.deliver(buf, status.source_rank() as usize);
            } else {
                nap = if nap.is_zero() { Duration::from_micros(1) } else { (nap * 2).min(MAX_NAP) };
                match self.rx.recv_timeout(nap) {
                    Ok(m) => self.accept(m),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.closing = true,
                }
            }
        }
        for rank in 1..self.load.len() {
            self.world.process_at_rank(rank as i32).send_with_tag(&[0u8; 0][..], TAG_STOP);
        }
    }

    fn accept(&mut self, m: Msg) {
        match m {
            Msg::Units(units) => self.pending.extend(units),
            Msg::Close => self.closing = true,
        }
    }

    fn take_submissions(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.rx.try_recv() {
                Ok(m) => {
                    self.accept(m);
                    any = true;
                }
                Err(TryRecvError::Empty) => return any,
                Err(TryRecvError::Disconnected) => {
                    self.closing = true;
                    return any;
                }
            }
        }
    }

    /// Sends pending tasks to the least loaded workers with room.
    fn hand_out(&mut self) -> bool {
        let mut any = false;
        while !self.pending.is_empty() {
            let Some(rank) = (1..self.load.len()).filter(|&r| self.load[r] < DEPTH).min_by_key(|&r| self.load[r])
            else {
                break;
            };
            let unit = self.pending.pop_front().expect("checked non-empty");
            let id = self.next_id;
            self.next_id += 1;
            let msg = wire::encode_task(id, unit.task, &unit.input);
            self.world.process_at_rank(rank as i32).send_with_tag(&msg[..], wire::TAG_TASK);
            self.load[rank] += 1;
            self.in_flight.insert(id, InFlight { reply: unit.reply, seq: unit.seq, rank });
            any = true;
        }
        any
    }

    /// Receives every result already arrived.
    fn collect(&mut self) -> bool {
        let mut any = false;
        while let Some((msg, status)) = self.world.any_process().immediate_matched_probe_with_tag(TAG_RESULT) {
            let buf = crate::wire::receive(msg, &status);
            self.deliver(buf, status.source_rank() as usize);
            any = true;
        }
        any
    }

    fn deliver(&mut self, buf: Vec<u8>, from: usize) {
        // A rank running this executable never sends a malformed result. With the task
        // known, its call ends with `PoolError::Malformed` instead of waiting for ever;
        // without, say so.
        let (id, outcome) = match wire::outcome_of(buf, from) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("mproc-mpi: rank {from} sent a malformed result ({e}); ignored");
                return;
            }
        };
        let Some(f) = self.in_flight.remove(&id) else {
            eprintln!("mproc-mpi: rank {from} sent the result of unknown task {id}; ignored");
            return;
        };
        self.load[f.rank] -= 1;
        // The caller may have gone (a dropped result): nothing to do then.
        let _ = f.reply.send((f.seq, outcome));
    }
}
