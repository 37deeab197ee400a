//! A worker rank: receives tasks from rank 0, runs them, sends back their outcomes,
//! until rank 0 says stop.
//!
//! A result goes out as a non-blocking send, and the worker receives its next message
//! before waiting for that send to finish. A blocking send would deadlock on any result
//! past MPI's eager limit: rank 0 may at that moment be blocked sending this worker its
//! next queued task, which only completes once the worker receives it.

use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Destination, Source};

use crate::wire::{self, TAG_RESULT, TAG_STOP, TAG_TASK};

pub(crate) fn serve(world: &SimpleCommunicator) {
    mproc_pool::remote::install_worker_panic_hook();
    let master = world.process_at_rank(0);
    let mut result: Option<Vec<u8>> = None;
    loop {
        let (buf, tag) = mpi::request::scope(|scope| {
            let sending = result.as_deref().map(|r| master.immediate_send_with_tag(scope, r, TAG_RESULT));
            let (msg, status) = master.matched_probe();
            let buf = wire::receive(msg, &status);
            if let Some(req) = sending {
                req.wait();
            }
            (buf, status.tag())
        });
        result = None;
        match tag {
            TAG_STOP => return,
            TAG_TASK => result = run(world, &buf),
            other => eprintln!("mproc-mpi: rank {} got a message with unknown tag {other}; ignored", world.rank()),
        }
    }
}

/// The result message of one task message.
fn run(world: &SimpleCommunicator, msg: &[u8]) -> Option<Vec<u8>> {
    let (id, task, input) = match wire::decode_task(msg) {
        Ok(t) => t,
        Err(e) => {
            // No task id to answer: rank 0, which runs this executable, never sends this.
            eprintln!("mproc-mpi: rank {} got a malformed task ({e}); ignored", world.rank());
            return None;
        }
    };
    let mut out = wire::result_header(id);
    // SAFETY: the task came from rank 0, which runs this very executable: `main`
    // compared every rank's executable before the pool started.
    Some(match unsafe { task.run(input, &mut out) } {
        Ok(()) => out,
        Err(mproc_pool::PoolError::TaskPanicked { message, item }) => wire::encode_failure(id, item, &message),
        Err(e) => wire::encode_failure(id, None, &e.to_string()),
    })
}
