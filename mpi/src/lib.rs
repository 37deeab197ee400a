//! mproc's `Pool` on the ranks of an MPI job: the step a `Pool` takes when it outgrows one
//! machine, on the cluster's own engine (MPI, launched by `mpiexec` or Slurm), not on a
//! cluster layer of mproc's.
//!
//! The same executable runs on every rank. Rank 0 runs the program; every other rank
//! serves tasks until the pool closes. [`main`] is the entry point:
//!
//! ```no_run
//! # #[cfg(feature = "mpi")]
//! # fn demo() {
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() {
//!     // Rank 0 runs the closure; the other ranks serve its tasks and get `None`.
//!     let out = mproc_mpi::main(|pool| pool.map(square, 0..10_000u64)).expect("MPI job");
//!     if let Some(squares) = out {
//!         assert_eq!(squares.unwrap()[3], 9);
//!     }
//! }
//! # }
//! ```
//!
//! Build, then run it on as many processes and hosts as the cluster gives:
//! `mpiexec -n 8 -hosts a,b target/release/your_program`, or under Slurm
//! `srun -n 8 target/release/your_program`.
//!
//! # The pool
//! [`MpiPool`] has the `Pool` calls Python users know: [`apply`](MpiPool::apply),
//! [`apply_async`](MpiPool::apply_async), [`map`](MpiPool::map) (chunked),
//! [`imap`](MpiPool::imap), [`imap_unordered`](MpiPool::imap_unordered),
//! [`starmap`](MpiPool::starmap), [`close`](MpiPool::close), [`join`](MpiPool::join).
//! Tasks are `fn` items (or closures without captures), resolved as the spawn pool
//! resolves them: as code offsets within the executable, never as raw addresses, so
//! ranks whose images ASLR placed at other bases agree. Before the first task, rank 0
//! compares a SHA-256 of every rank's executable file and aborts the job, naming the
//! rank, if one differs. Arguments and results travel as postcard bytes. One thread of
//! rank 0 (the dispatcher) makes every MPI call there; each worker keeps up to two tasks
//! queued so it never waits for the next.
//!
//! # Failures
//! | failure | what happens |
//! | --- | --- |
//! | a task panics | the call ends with [`PoolError::TaskPanicked`](mproc_pool::PoolError::TaskPanicked), naming the item for `map`-like calls; the rank lives on and serves the next task |
//! | an argument or result does not encode/decode | [`PoolError::Encode`](mproc_pool::PoolError::Encode) (naming the argument's type) / [`PoolError::Decode`](mproc_pool::PoolError::Decode) (naming the type asked for, the result's length in bytes and, for `map`-like calls, the first item of its chunk; a `PodVec` of another element type is [`PoolError::Payload`](mproc_pool::PoolError::Payload) naming both, as in the local pool) in rank 0 (a bad argument in the worker comes back as `TaskPanicked` naming the decode error) |
//! | a result message does not frame (never sent by this crate) | the call waiting for that task ends with [`PoolError::Malformed`](mproc_pool::PoolError::Malformed) naming the rank and what is wrong; a message too short to name its task is reported on stderr and dropped |
//! | a rank dies (killed, `exit` in a task, its host lost) | MPI ends the job: `mpiexec` kills the other ranks and exits non-zero within seconds (MPICH's default error handler; the test `mpi/tests/mpiexec.rs` measures it). No call returns: MPI has no way to go on without a rank. |
//! | rank 0's program panics | the pool is dropped while unwinding: the workers are told to stop, MPI is finalized, `mpiexec` exits non-zero |
//! | the ranks run different executables | rank 0 aborts the job before any task, naming the rank |
//! | started without `mpiexec`, or with one rank | [`MpiError::NoWorkers`]: there is no rank to run tasks |
//!
//! # Finalize
//! Every rank leaves [`main`] through `MPI_Finalize`. On MPICH older than 4.2 with its
//! UCX device (Debian's and Ubuntu's builds), that finalize can hang over TCP when one
//! rank reaches it while another is still inside an MPI call; [`main`] therefore holds
//! the ranks together in a barrier of the process manager (the one MPICH 4.2 makes
//! itself) just before `MPI_Finalize`. Other MPI libraries are left as they are.
//!
//! # Cores
//! MPICH's ranks poll while they wait for a message. Start at most one rank per core: a
//! rank more than the cores takes time from the working ranks (on 2 cores, `map` of small
//! items costs about 0.03 µs per item with `-n 2` and ten times that with `-n 3`).
//!
//! # Features
//! The MPI binding sits behind the `mpi` cargo feature, off by default: without it this
//! crate holds only the message framing, so a workspace build needs no MPI library. With
//! it, building needs an MPI library with its headers and libclang (Debian: `mpich`,
//! `libmpich-dev`, `libclang-dev`).

// The module doc links the pool's items, which exist only with the `mpi` feature.
#![cfg_attr(not(feature = "mpi"), allow(rustdoc::broken_intra_doc_links))]

// Without the binding the framing is only compiled for its tests.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
mod wire;

// The barrier before MPI_Finalize; its parts are tested without the binding too.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
mod finalize;

#[cfg(feature = "mpi")]
mod dispatch;
#[cfg(feature = "mpi")]
mod exe;
#[cfg(feature = "mpi")]
mod pool;
#[cfg(feature = "mpi")]
mod worker;

#[cfg(feature = "mpi")]
pub use pool::{main, MpiAsyncResult, MpiError, MpiImap, MpiPool};
