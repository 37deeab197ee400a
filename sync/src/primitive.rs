//! The loom facade of this crate: atomics, spin and yield (from `mproc-shm`'s
//! facade: loom's under `cfg(loom)`, std's otherwise) and the futex calls (the
//! kernel's, or loom's model of them). Lock code uses only these, so the same
//! code is model-checked by `cargo xtask loom`.

pub use crate::futex::{wait, wake, wake_all, WaitOutcome};
pub use mproc_shm::primitive::{fence, spin_loop, yield_now, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
