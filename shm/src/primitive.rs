//! The loom facade: atomics, `UnsafeCell`, spin and yield from loom under
//! `cfg(loom)` and from std otherwise. Lock-free code in this crate uses these,
//! never `std::sync::atomic` directly, so that `cargo xtask loom` can model it.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Yields to the model scheduler under loom, or hints a spin loop otherwise.
#[inline]
pub fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Yields the thread (loom's yield under loom).
#[inline]
pub fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}
