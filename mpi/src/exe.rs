//! The check that every rank runs one executable: task code travels as offsets within
//! it, which mean nothing in another file.

use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, Root};
use sha2::{Digest, Sha256};

use crate::MpiError;

/// Gathers a SHA-256 of each rank's executable at rank 0 and aborts the job, naming the
/// first rank that differs, when they are not all the same. Collective: every rank calls it.
pub(crate) fn check_same_executable(world: &SimpleCommunicator) -> Result<(), MpiError> {
    let bytes = std::fs::read("/proc/self/exe").map_err(|e| MpiError::Executable(e.to_string()))?;
    let mine: [u8; 32] = Sha256::digest(&bytes).into();
    let root = world.process_at_rank(0);
    if world.rank() == 0 {
        let mut all = vec![0u8; 32 * world.size() as usize];
        root.gather_into_root(&mine[..], &mut all[..]);
        if let Some((rank, _)) = all.chunks(32).enumerate().find(|(_, h)| *h != mine) {
            eprintln!(
                "mproc-mpi: rank {rank} runs another executable than rank 0; tasks cannot cross; aborting the job"
            );
            world.abort(3);
        }
    } else {
        root.gather_into(&mine[..]);
    }
    Ok(())
}
