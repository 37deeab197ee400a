//! The cross-process copy limit: what moving items from one process to another
//! through shared memory costs at least. A producer process `memcpy`s each item
//! into a slot of an SPSC ring in a shared mapping and publishes it; a consumer
//! process `memcpy`s it out into a buffer of its own and frees the slot. No
//! encoding, no allocation, no sleeping (waits spin, then yield): any queue
//! that copies an item in and out of shared memory pays at least this.
//! `xcopy_rtt` is the same for a round trip: a message copied in and out each
//! way by two processes taking turns.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The ring's slots for `item`-byte items: a ring of about 256 KiB (it stays in
/// cache, as a queue's ring of small items does), between 4 slots (the producer
/// runs ahead by a few big items) and 64 (the bound of the payload benches' queues).
fn slots(item: usize) -> usize {
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

/// The time to move `iters` items of `item` bytes from a producer process
/// (this one) to a consumer process (forked for the call) through an SPSC ring
/// in shared memory, `memcpy` in and `memcpy` out; warm-up items excluded.
pub fn xcopy_limit_bytes_per_iter(item: usize, iters: u64) -> Duration {
    let item = item.max(1);
    let data_off = std::mem::size_of::<Control>();
    let slots = slots(item);
    // Items moved before the clock starts: each slot used twice, every page mapped and warm.
    let warm = 2 * slots as u64;
    let len = data_off + slots * item;
    let base = shared_mapping(len);
    // SAFETY: the mapping starts with a zeroed Control (zero atomics), aligned to a page.
    let ctl = unsafe { &*base.cast::<Control>() };
    // SAFETY: slot `i` lies inside the mapping.
    let slot = |i: u64| unsafe { base.add(data_off + (i as usize % slots) * item) };
    let total = iters + warm;
    // SAFETY: the child only copies and spins, then leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut out = vec![0u8; item];
        ctl.ready.0.store(1, Ordering::Release);
        for i in 0..total {
            wait_until(|| ctl.tail.0.load(Ordering::Acquire) > i);
            // SAFETY: the slot of item `i` is published (tail > i) and not reused
            // until head passes i; `out` holds `item` bytes.
            unsafe { std::ptr::copy_nonoverlapping(slot(i), out.as_mut_ptr(), item) };
            black_box(&out);
            ctl.head.0.store(i + 1, Ordering::Release);
        }
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let src = vec![0x5au8; item];
    wait_until(|| ctl.ready.0.load(Ordering::Acquire) != 0);
    let mut start = Instant::now();
    for i in 0..total {
        if i == warm {
            wait_until(|| ctl.head.0.load(Ordering::Acquire) >= warm);
            start = Instant::now();
        }
        wait_until(|| i - ctl.head.0.load(Ordering::Acquire) < slots as u64);
        // SAFETY: the slot is free (head > i - slots) and ours until published.
        unsafe { std::ptr::copy_nonoverlapping(black_box(src.as_ptr()), slot(i), item) };
        ctl.tail.0.store(i + 1, Ordering::Release);
    }
    wait_until(|| ctl.head.0.load(Ordering::Acquire) >= total);
    let elapsed = start.elapsed();
    reap_and_unmap(pid, base, len);
    elapsed
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
