//! Async waits (cargo feature `tokio`, off by default): [`Lock::lock_async`],
//! [`Event::wait_async`], [`Semaphore::acquire_async`] and
//! [`permit_async`](Semaphore::permit_async) (also on [`BoundedSemaphore`]).
//!
//! # Design: one futex waiter thread per process
//! The primitives' words are futex words with no descriptor a reactor could
//! poll, so an async wait goes through [`FutexWait`] (`waiter.rs`): the task
//! runs the primitive's own arm-then-look protocol — the same waiters bit, the
//! same compare-exchanges as the blocking slow path — and, where the blocking
//! call would `FUTEX_WAIT`, awaits the word instead. One thread per process
//! sleeps in `futex_waitv` on every awaited word and calls the tasks' `Waker`s.
//! ipc's async queues await their words through the same thread.
//!
//! Nothing here names a runtime: the futures resolve through whatever `Waker`
//! polls them, so they run on tokio, on another executor, or under a plain
//! `block_on`. The feature is called `tokio` like every other crate's, so one
//! switch turns all the async code on; it brings tokio in only as its tests'
//! runtime.
//!
//! # Wake-up cost
//! A blocking waiter is woken by the kernel; an async one by the waiter
//! thread, which the kernel wakes: one thread hop more (a few microseconds on
//! an idle machine, plus the runtime's wake-up of its worker thread). An
//! uncontended `lock_async`, or an `acquire_async` that finds a unit, costs
//! what the blocking call costs: one compare-exchange, no system call. The
//! blocking paths are unchanged: the wakers already `FUTEX_WAKE` when the
//! waiters bit is set, whoever set it.
//!
//! While it waits a task costs nothing but its registration: the waiter
//! thread sleeps until the word moves or, for a lock, until the next owner
//! poll ([`OWNER_POLL`](crate::lock::OWNER_POLL), 50 ms), when the task checks
//! that the holder is alive — as the blocking lock does.
//!
//! # Owner death
//! `lock_async` recovers a lock whose holder died as [`Lock::lock`] does: at
//! its next owner poll after the death one waiter (blocking or async) takes it
//! over and its guard says so ([`LockGuard::owner_died`](crate::LockGuard::owner_died)).
//!
//! # Cancellation
//! Each method states its cancel safety. The common ground: a unit or the
//! lock is taken only in the poll that returns it, so a dropped future never
//! holds one, and a dropped future that had been woken passes the wake-up on
//! to the next waiter, so it never strands a blocking waiter either.
//!
//! Not here: `RLock` (its owner is a thread, and a task moves between a
//! runtime's threads: use [`Lock::lock_async`]), `Condition` and `Barrier`
//! (await an [`Event`], or use the blocking calls in `spawn_blocking`).

mod waiter;

pub use waiter::{FutexWait, KeepAlive, LOOK_EVERY};

#[cfg(doc)]
use crate::{BoundedSemaphore, Event, Lock, Semaphore};
