//! What every rank does just before `MPI_Finalize`: on MPICH's UCX device before 4.2, a
//! barrier through the process manager, so that no rank is left alone in finalize.
//!
//! # Why
//! MPICH 4.0 and 4.1 (`ch4:ucx`, Debian's build) finalize by closing every UCX endpoint
//! with a flush, driving UCX's progress until its own closes complete, and then waiting
//! in a barrier of the process manager (PMI), which makes no UCX progress. Over UCX's
//! TCP transport a flush is not local: it sends the peer a zero-length put and waits for
//! the peer's acknowledgement, and the acknowledgement is itself a send that leaves the
//! peer's endpoint needing a flush of its own. So when rank A enters finalize while
//! rank B is still in any other MPI call (the last message of a barrier, a receive),
//! B acknowledges A's flush, A completes and sits in the PMI barrier, and B's own flush
//! toward A, sent when B reaches finalize, is never answered: B spins in `MPI_Finalize`
//! for ever and `mpiexec` never returns. A barrier made of MPI messages cannot help, as
//! its messages are what leave the endpoints to flush. MPICH 4.2 closes the window by
//! a PMI barrier before the closes; this module makes that same barrier, on the same
//! PMI connection, before `MPI_Finalize` is called: after it no rank is in another MPI
//! call, and each posts its flushes before it answers any.
//!
//! The barrier is the PMI-1 exchange `cmd=barrier_in` / `cmd=barrier_out` on the
//! descriptor the process manager passes in `PMI_FD` (MPICH's hydra `mpiexec`). It is
//! made only where the fault lives and the wire is known: MPICH older than 4.2 on a UCX
//! device, built for PMI-1, with `PMI_FD` set. Elsewhere it is not needed (MPICH 4.2
//! makes it itself; MPICH's OFI device synchronises in its own finalize; shared memory
//! and RDMA flush without the peer's CPU), or not made: an MPICH < 4.2 built for PMI-2 or
//! PMIx speaks another wire protocol, and keeps the hang over TCP.

use std::io::{self, Read, Write};

/// Whether the MPI library described by `library_version` (`MPI_Get_library_version`)
/// finalizes its UCX endpoints without first holding the ranks together, and speaks
/// PMI-1 to its process manager: MPICH older than 4.2 on a `ch4:ucx` device, not
/// configured for PMI-2 or PMIx (whose wire protocols differ).
pub fn needs_barrier(library_version: &str) -> bool {
    let field = |name: &str| {
        library_version.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim_start_matches([':', ' ', '\t']))
    };
    let (Some(version), Some(device)) = (field("MPICH Version"), field("MPICH Device")) else {
        return false;
    };
    // "4.0.2", "4.1", "4.2rc1", "4.0a2": the first two runs of digits.
    let mut parts = version.trim().split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>());
    let major_minor = match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        (Some(Ok(major)), None) => (major, 0),
        _ => return false,
    };
    let configure = field("MPICH configure").unwrap_or("").to_ascii_lowercase();
    let pmi_1 = !configure.contains("pmi2") && !configure.contains("pmix");
    major_minor < (4, 2) && device.trim().starts_with("ch4:ucx") && pmi_1
}

/// The PMI-1 barrier: `cmd=barrier_in` on `pmi`, then waits for `cmd=barrier_out`.
/// Reads one byte at a time, so nothing past the reply is taken from MPICH's connection.
pub fn pmi_barrier(mut pmi: impl Read + Write) -> io::Result<()> {
    pmi.write_all(b"cmd=barrier_in\n")?;
    let mut line = Vec::with_capacity(32);
    let mut byte = [0u8; 1];
    while line.len() < 1024 {
        if pmi.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the process manager closed PMI"));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    if line.starts_with(b"cmd=barrier_out") {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&line).into_owned();
        Err(io::Error::new(io::ErrorKind::InvalidData, format!("PMI answered barrier_in with {said:?}")))
    }
}

/// Holds the ranks together before `MPI_Finalize` where the library needs it (see the
/// module doc). Collective: every rank of the job calls it, once, just before finalize,
/// with no MPI call of its own still running.
#[cfg(feature = "mpi")]
pub fn before_finalize() {
    use std::mem::ManuallyDrop;
    use std::os::fd::FromRawFd;

    let Ok(version) = mpi::environment::library_version() else { return };
    if !needs_barrier(&version) {
        return;
    }
    let Some(fd) = std::env::var("PMI_FD").ok().and_then(|v| v.trim().parse::<i32>().ok()) else { return };
    // SAFETY: `PMI_FD` names MPICH's open connection to the process manager, which stays
    // open until `MPI_Finalize`; ManuallyDrop keeps this borrowed handle from closing it.
    let pmi = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    if let Err(e) = pmi_barrier(&*pmi) {
        eprintln!("mproc-mpi: the barrier before MPI_Finalize on PMI_FD={fd} failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    const DEBIAN: &str = "MPICH Version:\t4.0.2\nMPICH Release date:\tThu Apr  7 12:34:45 CDT 2022\n\
                          MPICH ABI:\t14:2:2\nMPICH Device:\tch4:ucx\nMPICH configure:\t--with-slurm=/usr --with-ucx=/usr --with-device=ch4:ucx --with-pm=hydra\n";

    #[test]
    fn mpich_before_4_2_on_ucx_needs_the_barrier() {
        assert!(needs_barrier(DEBIAN));
        assert!(needs_barrier("MPICH Version:\t4.1.2\nMPICH Device:\tch4:ucx\n"));
        assert!(needs_barrier("MPICH Version:\t3.4.3\nMPICH Device:\tch4:ucx\n"));
    }

    #[test]
    fn other_libraries_devices_and_versions_do_not() {
        assert!(!needs_barrier("MPICH Version:\t4.2.0\nMPICH Device:\tch4:ucx\n"));
        assert!(!needs_barrier("MPICH Version:\t4.0.2\nMPICH Device:\tch4:ofi\n"));
        assert!(!needs_barrier("MPICH Version:\t3.3\nMPICH Device:\tch3:nemesis\n"));
        assert!(!needs_barrier("Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4"));
        assert!(!needs_barrier("MPICH Version:\tnot-a-number\nMPICH Device:\tch4:ucx\n"));
        let pmix = "MPICH Version:\t4.0.2\nMPICH Device:\tch4:ucx\nMPICH configure:\t--with-pmix=/usr\n";
        assert!(!needs_barrier(pmix));
        let pmi2 = "MPICH Version:\t4.1.1\nMPICH Device:\tch4:ucx\nMPICH configure:\t--with-pmi=pmi2\n";
        assert!(!needs_barrier(pmi2));
        assert!(!needs_barrier(""));
    }

    /// `pmi_barrier` against a peer that plays the process manager over a socket pair.
    fn against(answer: &'static [u8]) -> (io::Result<()>, Vec<u8>) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        for s in [&ours, &theirs] {
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        }
        let manager = std::thread::spawn(move || {
            let mut theirs = theirs;
            let mut got = vec![0u8; b"cmd=barrier_in\n".len()];
            theirs.read_exact(&mut got).expect("barrier_in");
            theirs.write_all(answer).expect("answer");
            got
        });
        let r = pmi_barrier(&ours);
        (r, manager.join().expect("manager thread"))
    }

    #[test]
    fn the_barrier_speaks_pmi_1_and_takes_only_its_reply() {
        let (ours, mut manager) = UnixStream::pair().expect("socketpair");
        for s in [&ours, &manager] {
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        }
        // The reply is already there, with a line after it that is not the barrier's.
        manager.write_all(b"cmd=barrier_out\ncmd=next\n").expect("answer ahead");
        pmi_barrier(&ours).expect("barrier");
        let mut sent = vec![0u8; b"cmd=barrier_in\n".len()];
        manager.read_exact(&mut sent).expect("read barrier_in");
        assert_eq!(sent, b"cmd=barrier_in\n");
        // The next line stays on the connection for its owner.
        let mut rest = [0u8; 9];
        (&ours).read_exact(&mut rest).expect("rest");
        assert_eq!(&rest, b"cmd=next\n");
    }

    #[test]
    fn barrier_out_completes_the_barrier() {
        let (r, sent) = against(b"cmd=barrier_out\n");
        r.expect("barrier");
        assert_eq!(sent, b"cmd=barrier_in\n");
    }

    #[test]
    fn another_reply_or_a_closed_manager_is_an_error_naming_it() {
        let (r, _) = against(b"cmd=abort exitcode=1\n");
        let e = r.expect_err("a wrong reply");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("cmd=abort exitcode=1"), "{e}");
        let (r, _) = against(b"");
        assert_eq!(r.expect_err("EOF").kind(), io::ErrorKind::UnexpectedEof);
    }
}
