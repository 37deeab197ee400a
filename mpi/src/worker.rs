//! A worker rank: receives tasks from rank 0, runs them, sends back their outcomes,
//! until rank 0 says stop.

use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Destination, Source};

use crate::wire::{self, TAG_RESULT, TAG_STOP, TAG_TASK};

pub(crate) fn serve(world: &SimpleCommunicator) {
    mproc_pool::remote::install_worker_panic_hook();
    let master = world.process_at_rank(0);
    loop {
        let (msg, status) = master.matched_probe();
        let buf = crate::wire::receive(msg, &status);
        match status.tag() {
            TAG_STOP => return,
            TAG_TASK => {
                let out = match wire::decode_task(&buf) {
                    Some((id, task, input)) => {
                        let mut out = wire::result_header(id);
                        // SAFETY: the task came from rank 0, which runs this very
                        // executable: `main` compared every rank's executable before
                        // the pool started.
                        match unsafe { task.run(input, &mut out) } {
                            Ok(()) => out,
                            Err(mproc_pool::PoolError::TaskPanicked { message, item }) => {
                                wire::encode_failure(id, item, &message)
                            }
                            Err(e) => wire::encode_failure(id, None, &e.to_string()),
                        }
                    }
                    None => {
                        eprintln!(
                            "mproc-mpi: rank {} got a malformed task of {} bytes; ignored",
                            world.rank(),
                            buf.len()
                        );
                        continue;
                    }
                };
                master.send_with_tag(&out[..], TAG_RESULT);
            }
            other => eprintln!("mproc-mpi: rank {} got a message with unknown tag {other}; ignored", world.rank()),
        }
    }
}
