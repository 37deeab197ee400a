//! A runtime-agnostic `Future` over a futex word in shared memory: one waiter
//! thread per process turns futex wake-ups into `Waker` calls.
//!
//! The queue's words follow the arm-then-look protocol of `queue/raw.rs`: a
//! task sets the word's `WAITERS` bit (a `fetch_or` that returns the value it
//! now holds), looks at the queue again, and only then awaits
//! [`FutexWait`] with that value. The waker side is the queue's, unchanged: a
//! put or get that finds `WAITERS` clears it and `FUTEX_WAKE`s the word.
//!
//! The waiter thread (started on first use, never stopped) sleeps in
//! `futex_waitv` (Linux ≥ 5.16) on up to 127 distinct (word, value) pairs at
//! once — tasks awaiting the same word with the same value share one — plus a
//! private *kick* word that a new registration bumps and wakes, so the thread
//! takes the new word into its next wait. When it wakes it looks at every
//! registered word and wakes the tasks whose word moved. Its sleeps are capped
//! at [`WAIT_CAP`](crate::queue::WAIT_CAP), as the blocking waits are, so a
//! peer killed between its change of a word and its wake costs a task at most
//! that long. Each registration holds the queue's memory alive, so the thread
//! only reads mapped words.
//!
//! Cost: a wake-up is the queue's usual `FUTEX_WAKE`, the waiter thread's
//! return from `futex_waitv`, a lock of the registry and a `Waker::wake` — one
//! thread hop more than a blocking waiter. A registration costs a lock and a
//! `FUTEX_WAKE` of the kick word. Nothing is added to the blocking path.

use mproc_shm::sys::IgnorePoison;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use mproc_sync::futex;
use mproc_sync::primitive::{AtomicU32, Ordering};
use rustix::thread::futex as rfutex;

use crate::queue::WAIT_CAP;

/// Most words in one `futex_waitv` (the kernel's limit is 128; one is the kick).
const MAX_WORDS: usize = 127;

/// Something that keeps a word's memory mapped.
pub(crate) type KeepAlive = Arc<dyn Any + Send + Sync>;

struct Entry {
    word: usize,
    seen: u32,
    waker: Waker,
    _keep: KeepAlive,
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
    let pid = std::process::id();
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

impl Waiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().ignore_poison()
    }

    fn run(&self) {
        loop {
            let kick = self.kick.load(Ordering::Acquire);
            let mut pairs: Vec<(usize, u32)> = self.lock().values().map(|e| (e.word, e.seen)).collect();
            pairs.sort_unstable();
            pairs.dedup();
            if pairs.is_empty() {
                futex::wait(&self.kick, kick, None);
                continue;
            }
            let mut waits = Vec::with_capacity(pairs.len().min(MAX_WORDS) + 1);
            let wait = |addr: *const AtomicU32, val: u32, flags| {
                let mut w = rfutex::Wait::new();
                w.val = val.into();
                w.uaddr = rfutex::WaitPtr::new(addr as *mut std::ffi::c_void);
                w.flags = flags;
                w
            };
            waits.push(wait(&self.kick, kick, rfutex::WaitFlags::SIZE_U32));
            for &(addr, val) in pairs.iter().take(MAX_WORDS) {
                waits.push(wait(addr as *const AtomicU32, val, rfutex::WaitFlags::SIZE_U32));
            }
            // More words than one wait takes: look at the rest often.
            let cap = if pairs.len() > MAX_WORDS { std::time::Duration::from_millis(1) } else { WAIT_CAP };
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let mut deadline =
                rustix::time::Timespec { tv_sec: now.tv_sec, tv_nsec: now.tv_nsec + cap.as_nanos() as i64 };
            if deadline.tv_nsec >= 1_000_000_000 {
                deadline.tv_sec += 1;
                deadline.tv_nsec -= 1_000_000_000;
            }
            // Any outcome (woken, a value already different, the time cap, an
            // interrupt) ends in the same look at every word below.
            let _ =
                rfutex::waitv(&waits, rfutex::WaitvFlags::empty(), Some(&deadline), rustix::time::ClockId::Monotonic);
            self.wake_moved();
        }
    }

    /// Wakes (and forgets) the tasks whose word no longer holds their value.
    fn wake_moved(&self) {
        let mut woken = Vec::new();
        self.lock().retain(|_, e| {
            // SAFETY: the entry's keep-alive holds the word's memory mapped.
            let now = unsafe { &*(e.word as *const AtomicU32) }.load(Ordering::Acquire);
            if now != e.seen {
                woken.push(e.waker.clone());
                false
            } else {
                true
            }
        });
        for w in woken {
            w.wake();
        }
    }
}

/// Resolves once `word` no longer holds `seen` (or at a spurious wake-up:
/// the caller looks at its condition again either way).
pub(crate) struct FutexWait<'a> {
    word: &'a AtomicU32,
    seen: u32,
    keep: KeepAlive,
    key: Option<u64>,
}

impl<'a> FutexWait<'a> {
    /// `word` must live in memory that `keep` keeps mapped.
    pub(crate) fn new(word: &'a AtomicU32, seen: u32, keep: KeepAlive) -> FutexWait<'a> {
        FutexWait { word, seen, keep, key: None }
    }
}

impl Future for FutexWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        static KEYS: AtomicU64 = AtomicU64::new(0);
        let w = waiter();
        if let Some(key) = self.key {
            if !w.lock().contains_key(&key) {
                self.key = None;
                return Poll::Ready(()); // the waiter thread woke us
            }
        }
        if self.word.load(Ordering::Acquire) != self.seen {
            self.forget();
            return Poll::Ready(());
        }
        let key = *self.key.get_or_insert_with(|| KEYS.fetch_add(1, Ordering::Relaxed));
        let entry = Entry {
            word: self.word as *const AtomicU32 as usize,
            seen: self.seen,
            waker: cx.waker().clone(),
            _keep: self.keep.clone(),
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
    fn forget(&mut self) {
        if let Some(key) = self.key.take() {
            waiter().lock().remove(&key);
        }
    }
}

impl Drop for FutexWait<'_> {
    fn drop(&mut self) {
        self.forget();
    }
}
