//! [`FutexWait`]: a runtime-agnostic `Future` over a futex word in shared
//! memory. One waiter thread per process turns futex wake-ups into `Waker`
//! calls; every async wait of every mproc crate (these primitives, ipc's
//! queues) goes through it.
//!
//! A caller follows its word's arm-then-look protocol as a blocking waiter
//! does: it announces the wait in the word (a waiters bit), looks at its
//! condition again, and only then awaits [`FutexWait`] with the value the word
//! held. The waking side is unchanged: whoever finds the waiters bit issues a
//! `FUTEX_WAKE`.
//!
//! The waiter thread (started on first use, never stopped) sleeps in
//! `futex_waitv` (Linux ≥ 5.16) on up to 127 distinct (word, value) pairs at
//! once — tasks awaiting the same word with the same value share one — plus a
//! private *kick* word that a new registration bumps and wakes, so the thread
//! takes the new word into its next wait. When it wakes it looks at every
//! registered word, wakes the tasks whose word moved or whose
//! [`until`](FutexWait::until) instant passed, and forgets them. It sleeps at
//! most [`LOOK_EVERY`] at a time, so a peer killed between its change of a
//! word and its `FUTEX_WAKE` costs a task at most that long (more than 127
//! words: the rest are looked at every millisecond).
//!
//! # Wake-ups are never swallowed
//! In the kernel the waiter thread is one more sleeper on each word, so a
//! `FUTEX_WAKE(1)` meant for "one waiter" may pick it instead of a blocking
//! waiter in another process. Whoever it picks must then either take what was
//! released or pass the wake-up on, or a blocking semaphore waiter with no
//! timeout would sleep forever:
//! - the thread passes it on (`FUTEX_WAKE(1)` of the same word) when
//!   `futex_waitv` names a word on which it woke no task (the task that
//!   registered it was dropped meanwhile, or re-registered with a new value);
//! - a task it woke takes over the duty: a wait made with
//!   [`pass_on_drop`](FutexWait::pass_on_drop) (the lock's and semaphore's)
//!   passes the wake-up on if the future is dropped before it looked again.
//!
//! # Memory
//! An entry holds a [`KeepAlive`] of its word's mapping, and the thread holds
//! those of the words it sleeps on, so it never reads or waits on unmapped
//! memory — even if a future is leaked with `mem::forget`.
//!
//! # Cost
//! A wake-up is the waker's usual `FUTEX_WAKE`, the waiter thread's return
//! from `futex_waitv`, a lock of the registry and a `Waker::wake`: one thread
//! hop more than a blocking waiter (a few microseconds, plus the runtime's own
//! wake-up of its worker). A registration costs a lock, a map insert and a
//! `FUTEX_WAKE` of the kick word. All tasks on one word are woken together when
//! it moves; those that lose the race register again. Nothing is added to the
//! blocking paths.
//!
//! Fork: a child inherits the registry pointer but not the thread, so the
//! registry records the pid that started it and a child starts its own.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicPtr, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mproc_shm::sys::{Deadline, IgnorePoison};
use rustix::thread::futex as rfutex;
use rustix::time::{ClockId, Timespec};

use crate::futex::{self, WaitOutcome};
use crate::primitive::{AtomicU32, Ordering};

/// The longest the waiter thread sleeps before it looks at every word again
/// (the blocking queue waits' cap; more than a lock's owner poll needs).
pub const LOOK_EVERY: Duration = Duration::from_millis(25);

/// Most words in one `futex_waitv` (the kernel's limit is 128; one is the kick).
const MAX_WORDS: usize = 127;

/// Something that keeps a word's memory mapped (a segment handle, a queue's
/// mapping), held by the registry while the word is awaited.
pub type KeepAlive = Arc<dyn Any + Send + Sync>;

struct Entry {
    word: usize,
    seen: u32,
    until: Option<Instant>,
    waker: Waker,
    keep: KeepAlive,
}

struct Waiter {
    entries: Mutex<HashMap<u64, Entry>>,
    /// Bumped (and woken) by every registration.
    kick: AtomicU32,
    /// The process whose thread runs this waiter.
    pid: u32,
}

/// This process's waiter. A forked child inherits the pointer but not the
/// thread, so the waiter records the pid that started it and a child starts
/// its own (the parent's is leaked, as the thread it names never existed here).
fn waiter() -> &'static Waiter {
    static WAITER: AtomicPtr<Waiter> = AtomicPtr::new(std::ptr::null_mut());
    let pid = mproc_shm::sys::pid();
    let p = WAITER.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is a leaked `Box<Waiter>`, never freed.
    if let Some(w) = unsafe { p.as_ref() } {
        if w.pid == pid {
            return w;
        }
    }
    let w: &'static Waiter =
        Box::leak(Box::new(Waiter { entries: Mutex::new(HashMap::new()), kick: AtomicU32::new(0), pid }));
    match WAITER.compare_exchange(p, w as *const Waiter as *mut Waiter, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            std::thread::Builder::new()
                .name("mproc-futex-waiter".into())
                .spawn(move || w.run())
                .expect("spawn the futex waiter thread");
            w
        }
        // Another thread of this process started one first: use it (ours,
        // never started, stays leaked: a few bytes, once).
        // SAFETY: as above.
        Err(other) => unsafe { &*other },
    }
}

/// The monotonic clock `after` from now, as `futex_waitv` takes it.
fn monotonic_after(after: Duration) -> Timespec {
    let now = rustix::time::clock_gettime(ClockId::Monotonic);
    let d = mproc_shm::sys::timespec(after);
    let nsec = now.tv_nsec + d.tv_nsec;
    Timespec { tv_sec: now.tv_sec + d.tv_sec + nsec / 1_000_000_000, tv_nsec: nsec % 1_000_000_000 }
}

fn wait_on(addr: *const AtomicU32, val: u32) -> rfutex::Wait {
    let mut w = rfutex::Wait::new();
    w.val = val.into();
    w.uaddr = rfutex::WaitPtr::new(addr as *mut std::ffi::c_void);
    // Not FUTEX2_PRIVATE: the words are shared between processes.
    w.flags = rfutex::WaitFlags::SIZE_U32;
    w
}

impl Waiter {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().ignore_poison()
    }

    fn run(&self) {
        loop {
            let kick = self.kick.load(Ordering::Acquire);
            // The words to sleep on, each with a keep-alive held across the sleep.
            let (mut pairs, first_until) = {
                let entries = self.lock();
                let pairs: Vec<(usize, u32, KeepAlive)> =
                    entries.values().map(|e| (e.word, e.seen, e.keep.clone())).collect();
                (pairs, entries.values().filter_map(|e| e.until).min())
            };
            if pairs.is_empty() {
                futex::wait(&self.kick, kick, None);
                continue;
            }
            pairs.sort_unstable_by_key(|p| (p.0, p.1));
            pairs.dedup_by_key(|p| (p.0, p.1));
            let mut waits = Vec::with_capacity(pairs.len().min(MAX_WORDS) + 1);
            waits.push(wait_on(&self.kick, kick));
            waits.extend(pairs.iter().take(MAX_WORDS).map(|&(addr, val, _)| wait_on(addr as *const AtomicU32, val)));
            // More words than one wait takes: look at the rest often.
            let mut nap = if pairs.len() > MAX_WORDS { Duration::from_millis(1) } else { LOOK_EVERY };
            if let Some(u) = first_until {
                nap = nap.min(u.saturating_duration_since(Instant::now()));
            }
            // Any outcome (woken, a value already different, the time cap, an
            // interrupt) ends in the same look at every word below.
            let woke =
                rfutex::waitv(&waits, rfutex::WaitvFlags::empty(), Some(&monotonic_after(nap)), ClockId::Monotonic);
            let moved = self.wake_moved();
            if let Ok(i @ 1..) = woke {
                let addr = pairs[i - 1].0;
                if !moved.contains(&addr) {
                    // A FUTEX_WAKE picked this thread, and no task of ours
                    // takes it: hand it to the next sleeper (module doc).
                    // SAFETY: `pairs` holds the word's keep-alive.
                    futex::wake(unsafe { &*(addr as *const AtomicU32) }, 1);
                }
            }
            drop(pairs);
        }
    }

    /// Wakes (and forgets) the tasks whose word no longer holds their value or
    /// whose `until` has passed; returns the words on which it woke a task.
    fn wake_moved(&self) -> HashSet<usize> {
        let now = Instant::now();
        let mut woken = Vec::new();
        let mut words = HashSet::new();
        self.lock().retain(|_, e| {
            // SAFETY: the entry's keep-alive holds the word's memory mapped.
            let value = unsafe { &*(e.word as *const AtomicU32) }.load(Ordering::Acquire);
            if value != e.seen || e.until.is_some_and(|u| u <= now) {
                woken.push(e.waker.clone());
                words.insert(e.word);
                false
            } else {
                true
            }
        });
        for w in woken {
            w.wake();
        }
        words
    }
}

/// Resolves once `word` no longer holds `seen` ([`WaitOutcome::Woken`]), once
/// the [`until`](FutexWait::until) instant has passed
/// ([`WaitOutcome::TimedOut`]), or at a spurious wake-up (`Woken`): the caller
/// looks at its condition again either way.
#[must_use = "futures do nothing unless awaited"]
pub struct FutexWait<'a> {
    word: &'a AtomicU32,
    seen: u32,
    keep: KeepAlive,
    until: Option<Instant>,
    pass_on: bool,
    key: Option<u64>,
}

impl<'a> FutexWait<'a> {
    /// Awaits a change of `word` from `seen`.
    ///
    /// # Safety
    /// `word` must lie in memory that `keep` keeps mapped for as long as
    /// `keep` lives: the waiter thread reads and waits on the word through
    /// its address after this future is gone, if it is leaked.
    pub unsafe fn new(word: &'a AtomicU32, seen: u32, keep: KeepAlive) -> FutexWait<'a> {
        FutexWait { word, seen, keep, until: None, pass_on: false, key: None }
    }

    /// Resolves with [`WaitOutcome::TimedOut`] at `at` if the word has not
    /// moved by then (the lock's owner poll).
    pub fn until(mut self, at: Deadline) -> FutexWait<'a> {
        self.until = at.instant();
        self
    }

    /// If the future is dropped after the waiter thread woke it and before it
    /// was polled again, it passes the wake-up on with a `FUTEX_WAKE(1)`: for
    /// words whose wakers wake one sleeper per unit released (locks,
    /// semaphores), so that a dropped task never swallows a unit's wake-up.
    pub fn pass_on_drop(mut self) -> FutexWait<'a> {
        self.pass_on = true;
        self
    }

    fn outcome(&self) -> WaitOutcome {
        if self.word.load(Ordering::Acquire) == self.seen && self.until.is_some_and(|u| u <= Instant::now()) {
            WaitOutcome::TimedOut
        } else {
            WaitOutcome::Woken
        }
    }
}

impl Future for FutexWait<'_> {
    type Output = WaitOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WaitOutcome> {
        static KEYS: AtomicU64 = AtomicU64::new(0);
        let w = waiter();
        if let Some(key) = self.key {
            if !w.lock().contains_key(&key) {
                self.key = None;
                return Poll::Ready(self.outcome()); // the waiter thread woke us
            }
        }
        if self.word.load(Ordering::Acquire) != self.seen || self.until.is_some_and(|u| u <= Instant::now()) {
            self.forget();
            return Poll::Ready(self.outcome());
        }
        let key = *self.key.get_or_insert_with(|| KEYS.fetch_add(1, Ordering::Relaxed));
        let entry = Entry {
            word: self.word as *const AtomicU32 as usize,
            seen: self.seen,
            until: self.until,
            waker: cx.waker().clone(),
            keep: self.keep.clone(),
        };
        let new = w.lock().insert(key, entry).is_none();
        if new {
            w.kick.fetch_add(1, Ordering::Release);
            futex::wake(&w.kick, 1);
        }
        Poll::Pending
    }
}

impl FutexWait<'_> {
    /// Forgets the registration; true if the waiter thread had woken it.
    fn forget(&mut self) -> bool {
        match self.key.take() {
            Some(key) => waiter().lock().remove(&key).is_none(),
            None => false,
        }
    }
}

impl Drop for FutexWait<'_> {
    fn drop(&mut self) {
        if self.forget() && self.pass_on {
            futex::wake(self.word, 1);
        }
    }
}
