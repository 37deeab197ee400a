//! The cross-process copy limit: what any shared-memory queue between two
//! processes must at least do per item. A forked producer copies the item into
//! the next slot of a single-producer single-consumer ring in shared memory
//! (64 slots, the queue benches' bound), the consumer copies it out into its
//! own buffer; head and tail are the only shared words. Waiting spins, then
//! yields (no futex: nothing here sleeps).

use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Slots in the ring: the `maxsize` of the queue benches it bounds.
pub const XCOPY_SLOTS: usize = 64;

/// Head and tail on their own cache lines, then the slots.
const HEADER: usize = 256;

/// Time for `iters` items of `item` bytes from a forked producer process to
/// this one through an SPSC ring in shared memory: one `memcpy` in, one out.
/// Starting and reaping the producer are not timed.
pub fn xcopy_limit_bytes_per_iter(item: usize, iters: u64) -> Duration {
    let item = item.max(1);
    let len = HEADER + XCOPY_SLOTS * item;
    // SAFETY: a fresh anonymous shared mapping; checked for failure below.
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
    let base = base.cast::<u8>();
    // Touch every page now, so that page faults are not timed (both processes
    // share these pages).
    // SAFETY: the mapping is `len` bytes, writable, and not yet shared.
    unsafe { std::ptr::write_bytes(base, 0, len) };
    // SAFETY: [1] the mapping is page-aligned and zeroed, so these are valid
    // AtomicU64 words at 0, 128 and 192, each on its own cache line; [2] it stays mapped until the munmap at
    // the end, after the producer has been reaped.
    let (head, tail, go) = unsafe {
        (&*base.cast::<AtomicU64>(), &*base.add(128).cast::<AtomicU64>(), &*base.add(192).cast::<AtomicU64>())
    };
    // SAFETY: the slots lie inside the mapping, after the header.
    let slot = |i: u64| unsafe { base.add(HEADER + (i as usize % XCOPY_SLOTS) * item) };
    let wait = |spins: &mut u32| {
        *spins += 1;
        if *spins < 1000 {
            spin_loop()
        } else {
            std::thread::yield_now()
        }
    };

    let pid = super::fork_child(None, || {
        let src = vec![7u8; item];
        while go.load(Ordering::Acquire) == 0 {
            wait(&mut 0);
        }
        let mut cached_tail = 0;
        for h in 0..iters {
            let mut spins = 0;
            while h - cached_tail == XCOPY_SLOTS as u64 {
                cached_tail = tail.load(Ordering::Acquire);
                if h - cached_tail == XCOPY_SLOTS as u64 {
                    wait(&mut spins);
                }
            }
            // SAFETY: slot `h` is free (the consumer's tail passed it) and
            // only this process writes it until it publishes `h + 1`.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), slot(h), item) };
            head.store(h + 1, Ordering::Release);
        }
    });

    // Filled, not just allocated: a large zeroed allocation is mapped lazily.
    let mut dst = vec![1u8; item];
    let start = Instant::now();
    go.store(1, Ordering::Release);
    let mut cached_head = 0;
    for t in 0..iters {
        let mut spins = 0;
        while cached_head == t {
            cached_head = head.load(Ordering::Acquire);
            if cached_head == t {
                wait(&mut spins);
            }
        }
        // SAFETY: slot `t` was published by the producer (head > t) and is
        // not rewritten until this process moves the tail past it.
        unsafe { std::ptr::copy_nonoverlapping(slot(t), dst.as_mut_ptr(), item) };
        black_box(&mut dst);
        tail.store(t + 1, Ordering::Release);
    }
    let elapsed = start.elapsed();
    super::reap(pid);
    // SAFETY: our mapping of `len` bytes; the producer is gone and no
    // reference into it outlives this call.
    unsafe { libc::munmap(base.cast(), len) };
    elapsed
}
