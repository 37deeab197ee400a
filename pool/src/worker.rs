//! The body of a worker process, forked or spawned: run the initializer, then
//! answer task messages until told to stop (or the pool is gone).

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use mproc_ipc::{Connection, PAIR_MAX_FRAME};
use mproc_process::Entry;

use crate::journal::Journal;
use crate::task::{self, Code};
use crate::wire::{self, ResultsWriter};
use crate::worker_args::{ForkArgs, InitArg, SpawnArgs, SpawnInit};

/// A worker sends the results it holds once it has spent this long on them,
/// even if more units of the message are waiting.
const FLUSH_AFTER: Duration = Duration::from_millis(2);

/// The pool's spawn entry: registered in every binary that links this crate, so
/// a program needs no registration of its own for spawn pools.
pub(crate) static SPAWNED_WORKER: Entry<SpawnArgs> = mproc_process::entry!(spawned_worker);

/// The body of a spawned worker (a fresh exec of the pool's binary).
fn spawned_worker(args: SpawnArgs) {
    // Kept for the worker's life: the journal's mapping.
    let segment = args.journal.into_inner();
    let journal = match Journal::attach(&segment) {
        Ok(j) => j,
        Err(e) => {
            // Never with a parent of this binary; the pool sees the worker lost.
            eprintln!("mproc pool worker: {e}");
            return;
        }
    };
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
    worker_main(rx, tx, journal, init, args.maxtasks);
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
pub(crate) fn forked_worker(args: ForkArgs) {
    for fd in &args.close {
        // SAFETY: these fds are the parent's ends of other channels, which no
        // object of this (forked) process will use or close again.
        unsafe { libc::close(*fd) };
    }
    // SAFETY: the two fds are this worker's ends, inherited open; the parent's
    // `Connection`s for them are never dropped here (that stack frame never
    // returns in the child), so these are their only owners.
    let (rx, tx) = unsafe { (connection_from_raw(args.rx), connection_from_raw(args.tx)) };
    // SAFETY: the address is the parent's mapping of a segment made by
    // `journal::create`, inherited at the same address; the parent's `Segment`
    // for it lives on in this process's copy of the collector's stack frame,
    // which never returns here.
    let journal = match unsafe { Journal::from_raw(args.journal as *mut u8) } {
        Ok(j) => j,
        Err(e) => {
            eprintln!("mproc pool worker: {e}");
            return;
        }
    };
    let init = args.initializer.map(|i| i as Box<dyn FnOnce() -> Result<(), String>>);
    worker_main(rx, tx, journal, init, args.maxtasks);
}

/// The body of a worker process, forked or spawned: run the initializer, then
/// answer task messages until told to stop (or the pool is gone).
fn worker_main(
    mut rx: Connection,
    mut tx: Connection,
    journal: Journal<'_>,
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
        journal.restart(started);
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
            journal.set_started(started);
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
