//! Futex-based cross-process Lock, RLock, Semaphore, Condition, Event, Barrier.
//!
//! Not built yet: see the open issues.
