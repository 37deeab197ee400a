//! A forked child that does a batch of work each time the parent asks: the
//! parent sends a count over a command queue, the child runs its batch for
//! that count, and a count of 0 (sent on drop) ends it. The throughput benches
//! fork their producers (and, for N → N, their consumers) this way, so that
//! the clock of one criterion sample runs from the command to the last item.

use std::time::{Duration, Instant};

use mproc_ipc::Queue;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A forked child serving batches; dropping it ends and reaps the child.
pub struct Worker {
    cmd: Queue<u64>,
    pid: libc::pid_t,
}

impl Worker {
    /// Forks a child that calls `batch(n)` for every count `n` the parent
    /// asks for, until `batch` returns false, the parent sends 0 or the
    /// command queue fails.
    pub fn fork(mut batch: impl FnMut(u64) -> bool) -> Worker {
        let cmd = Queue::<u64>::with_maxsize(4).unwrap();
        let pid = {
            let cmd = cmd.clone();
            super::fork_child(None, move || {
                while let Ok(n) = cmd.get() {
                    if n == 0 || !batch(n) {
                        return;
                    }
                }
            })
        };
        Worker { cmd, pid }
    }

    /// A producer: forks a child that calls `put(i)` for `i` in `0..n` for
    /// every count `n` asked for, stopping at the first `false`.
    pub fn producer(mut put: impl FnMut(u64) -> bool) -> Worker {
        Worker::fork(move |n| (0..n).all(&mut put))
    }

    /// A producer that `put_ref`s `item` into `data` once per item asked for.
    pub fn putting<T: Serialize + DeserializeOwned>(data: &Queue<T>, item: T) -> Worker {
        let data = data.clone();
        Worker::producer(move |_| data.put_ref(&item).is_ok())
    }

    /// Asks the child for a batch of `n` (not 0, which ends it).
    pub fn ask(&self, n: u64) {
        self.cmd.put(n).unwrap();
    }

    /// The time to ask for `iters` items and take each with `get`.
    pub fn time(&self, iters: u64, mut get: impl FnMut()) -> Duration {
        let t = Instant::now();
        self.ask(iters);
        for _ in 0..iters {
            get();
        }
        t.elapsed()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A child that has stopped early may leave the queue full: it is reaped anyway.
        let _ = self.cmd.put_timeout(0, Duration::from_secs(1));
        super::reap(self.pid);
    }
}
