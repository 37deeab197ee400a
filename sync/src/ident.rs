//! Who am I, and is that process still alive: the ids stored in lock words and
//! the liveness test behind owner-death recovery. All of them are the OS
//! layer's (`mproc_shm::sys`: one pid/tid cache with one fork handler, one
//! liveness check by pidfd); this module names them for the primitives.

pub(crate) use mproc_shm::sys::{alive, pid, tid, PID_BITS};
