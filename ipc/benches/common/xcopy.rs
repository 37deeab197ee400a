//! The cross-process copy limits, one implementation for every bench group
//! that shows them.
//!
//! [`XcopyStream`] (`limit-xcopy` of the throughput cases): what a queue that
//! hands its consumer an owned copy of each item costs at least. A producer
//! process `memcpy`s a buffer it keeps into the next slot of an SPSC ring in a
//! shared mapping and publishes it; the consumer process allocates a buffer
//! for the item (not zeroed, as a queue's `get` must), `memcpy`s the slot out
//! into it, frees the slot and drops the buffer. No encoding, no sleeping
//! (waits spin, then yield). The ring's geometry depends on the item size
//! only ([`slots`]), so every group that moves items of one size measures the
//! same limit.
//!
//! [`xcopy_rtt`] (`limit-xcopy` of the round-trip curve): a message copied in
//! and out each way by two processes taking turns.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The ring's slots for `item`-byte items: a ring of about 256 KiB (it stays in
/// cache, as a queue's ring of small items does), between 4 slots (the producer
/// runs ahead by a few big items) and 64 (the bound of the payload benches' queues).
pub fn slots(item: usize) -> usize {
    ((256 << 10) / item).clamp(4, 64)
}

/// Round trips before the clock starts, so that every page is mapped and warm.
const WARM_RTT: u64 = 2;

/// Waits until `ready()`: spins, then yields the CPU (on a machine with fewer
/// free cores than spinners, pure spinning would burn the other side's time).
#[inline]
fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        if spins < 256 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// The ring's control words, each on its own cache line, at the start of the mapping.
#[repr(C, align(128))]
struct Line(AtomicU64);

#[repr(C)]
struct Control {
    /// Items published by the producer.
    tail: Line,
    /// Items consumed by the consumer.
    head: Line,
    /// Set by the consumer once it runs; the parent's clock starts after it.
    ready: Line,
}

/// A fresh zeroed `MAP_SHARED | MAP_ANONYMOUS` mapping of `len` bytes, which a
/// forked child shares; the caller unmaps it.
fn shared_mapping(len: usize) -> *mut u8 {
    // SAFETY: a fresh anonymous mapping: it aliases nothing.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(base != libc::MAP_FAILED, "mmap of {len} bytes failed");
    base.cast()
}

/// Reaps `pid`, a child that has finished its loop, then unmaps the `len` bytes at
/// `base` that `shared_mapping` gave.
fn reap_and_unmap(pid: libc::pid_t, base: *mut u8, len: usize) {
    let mut status = 0;
    // SAFETY: our own child; then our own mapping, which nothing uses any more.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::munmap(base.cast(), len);
    }
}

/// The time of `iters` round trips of `item` bytes between this process and a
/// consumer process (forked for the call) through shared memory: this side
/// `memcpy`s the message in and raises a turn counter; the peer, spinning on
/// it, `memcpy`s it out, back into a second buffer, and hands the turn back;
/// this side `memcpy`s the answer out. Four copies and two hand-offs per round
/// trip, as a pipe pays at least; warm-up round trips excluded.
pub fn xcopy_rtt(item: usize, iters: u64) -> Duration {
    let item = item.max(1);
    let data_off = std::mem::size_of::<Control>();
    let len = data_off + 2 * item;
    let base = shared_mapping(len);
    // SAFETY: the mapping starts with a zeroed Control (zero atomics), aligned to a page.
    let ctl = unsafe { &*base.cast::<Control>() };
    // `tail` is the turn: odd while the message is the peer's, even once answered.
    let turn = &ctl.tail.0;
    // SAFETY: both buffers lie inside the mapping, one after the other.
    let (there, back) = unsafe { (base.add(data_off), base.add(data_off + item)) };
    let total = iters + WARM_RTT;
    // SAFETY: the child only copies and spins, then leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut tmp = vec![0u8; item];
        for i in 0..total {
            wait_until(|| turn.load(Ordering::Acquire) == 2 * i + 1);
            // SAFETY: the turn is ours (odd) until we raise it; `tmp` holds `item` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(there, tmp.as_mut_ptr(), item);
                std::ptr::copy_nonoverlapping(black_box(tmp.as_ptr()), back, item);
            }
            turn.store(2 * i + 2, Ordering::Release);
        }
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let src = vec![0x5au8; item];
    let mut dst = vec![0u8; item];
    let mut start = Instant::now();
    for i in 0..total {
        if i == WARM_RTT {
            start = Instant::now();
        }
        // SAFETY: the turn is ours (even) until we raise it; both vectors hold `item` bytes.
        unsafe { std::ptr::copy_nonoverlapping(black_box(src.as_ptr()), there, item) };
        turn.store(2 * i + 1, Ordering::Release);
        wait_until(|| turn.load(Ordering::Acquire) == 2 * i + 2);
        // SAFETY: as above: the peer has answered and waits for the next turn.
        unsafe { std::ptr::copy_nonoverlapping(back, dst.as_mut_ptr(), item) };
        black_box(&dst);
    }
    let elapsed = start.elapsed();
    reap_and_unmap(pid, base, len);
    elapsed
}

/// Copies `len` bytes from `src` to `dst` as a careful queue does: one
/// `memcpy`, or pieces of 2 KiB when the destination lies 1 to 64 bytes after
/// the source modulo a page (4K aliasing: such a copy of 4 KiB runs 20–80×
/// slower in one piece). The same rule as the `ipc` crate's own copy, so that
/// the limit does not hang on where the allocator put a buffer.
///
/// # Safety
/// As for [`std::ptr::copy_nonoverlapping`].
unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    const PIECE: usize = 2048;
    let distance = (dst as usize).wrapping_sub(src as usize) % 4096;
    let step = if len > PIECE && (1..=64).contains(&distance) { PIECE } else { len.max(1) };
    let mut done = 0;
    while done < len {
        let n = step.min(len - done);
        // SAFETY: `done + n <= len`: within the ranges the caller vouched for.
        unsafe { std::ptr::copy_nonoverlapping(src.add(done), dst.add(done), n) };
        done += n;
    }
}

/// The control words of an [`XcopyStream`], each on its own cache line.
#[repr(C)]
struct StreamControl {
    /// Items published by the producer.
    tail: Line,
    /// Items consumed by the consumer.
    head: Line,
    /// Items the consumer has asked for so far; `u64::MAX` ends the producer.
    asked: Line,
}

/// The cross-process copy limit for a stream of items, measured the way the
/// throughput benches measure a queue (`worker.rs`): a producer process,
/// forked once and kept for every sample, `memcpy`s a buffer it keeps into
/// the slots of an SPSC ring in shared memory as the consumer (this process,
/// which holds the clock) asks for items; the consumer allocates a buffer for
/// each item, `memcpy`s it out, frees the slot and drops the buffer. The ring
/// has [`slots`]`(item)` slots, each starting on a cache line.
pub struct XcopyStream {
    base: *mut u8,
    len: usize,
    item: usize,
    depth: usize,
    pid: libc::pid_t,
    /// Items taken so far.
    taken: u64,
}

/// The bytes before the first slot: the control block, rounded up to a cache line.
const DATA_OFF: usize = std::mem::size_of::<StreamControl>().next_multiple_of(64);

impl XcopyStream {
    /// Forks the producer of a ring for `item`-byte items and moves `2 × slots`
    /// items through it, so that every page is mapped and warm.
    pub fn new(item: usize) -> XcopyStream {
        let item = item.max(1);
        let depth = slots(item);
        let len = DATA_OFF + depth * item.next_multiple_of(64);
        let base = shared_mapping(len) as usize;
        let pid = super::fork_child(None, move || produce(base as *mut u8, item, depth));
        let mut s = XcopyStream { base: base as *mut u8, len, item, depth, pid, taken: 0 };
        s.take(2 * depth as u64);
        s
    }

    fn ctl(&self) -> &StreamControl {
        // SAFETY: the mapping starts with a StreamControl and lives as long as `self`.
        unsafe { &*self.base.cast::<StreamControl>() }
    }

    /// Asks for `n` more items and takes each as it comes, into a buffer of its own.
    fn take(&mut self, n: u64) {
        let stride = self.item.next_multiple_of(64);
        let end = self.taken + n;
        self.ctl().asked.0.store(end, Ordering::Release);
        for i in self.taken..end {
            let ctl = self.ctl();
            wait_until(|| ctl.tail.0.load(Ordering::Acquire) > i);
            let mut out = Vec::<u8>::with_capacity(self.item);
            // SAFETY: [1] slot `i % depth` lies inside the mapping; [2] item `i` is
            // published (tail > i) and its slot not reused until head passes i;
            // [3] `out` has room for `item` bytes, all written before its length is set.
            unsafe {
                let slot = self.base.add(DATA_OFF + (i as usize % self.depth) * stride);
                copy(out.as_mut_ptr(), slot, self.item);
                out.set_len(self.item);
            }
            ctl.head.0.store(i + 1, Ordering::Release);
            black_box(out);
        }
        self.taken = end;
    }

    /// The time to ask for `iters` items and take each: the clock of
    /// `Worker::time`, around the same work minus the queue.
    pub fn time(&mut self, iters: u64) -> Duration {
        let t = Instant::now();
        self.take(iters);
        t.elapsed()
    }
}

/// The producer's loop (in the forked child): copies its kept buffer into the
/// next free slot for every item asked for, until asked for `u64::MAX`.
fn produce(base: *mut u8, item: usize, depth: usize) {
    // SAFETY: the mapping starts with a zeroed StreamControl, page-aligned, and
    // outlives this child.
    let ctl = unsafe { &*base.cast::<StreamControl>() };
    let stride = item.next_multiple_of(64);
    let src = vec![0x5au8; item];
    let mut i = 0u64;
    loop {
        wait_until(|| ctl.asked.0.load(Ordering::Acquire) > i);
        if ctl.asked.0.load(Ordering::Acquire) == u64::MAX {
            return;
        }
        wait_until(|| i - ctl.head.0.load(Ordering::Acquire) < depth as u64);
        // SAFETY: [1] slot `i % depth` lies inside the mapping; [2] it is free
        // (head > i - depth) and ours until published; [3] `src` holds `item` bytes.
        unsafe { copy(base.add(DATA_OFF + (i as usize % depth) * stride), black_box(src.as_ptr()), item) };
        ctl.tail.0.store(i + 1, Ordering::Release);
        i += 1;
    }
}

impl Drop for XcopyStream {
    fn drop(&mut self) {
        self.ctl().asked.0.store(u64::MAX, Ordering::Release);
        reap_and_unmap(self.pid, self.base, self.len);
    }
}
