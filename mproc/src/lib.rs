//! Python's multiprocessing, in Rust: the facade over the mproc crates.
//!
//! Not built yet: see the open issues.
