//! Lock-free rings in shared memory: one file per algorithm.
