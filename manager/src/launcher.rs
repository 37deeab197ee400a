//! The launcher: runs a bound [`Server`] in a forked daemon child, on a private Unix
//! socket directory when no address is given, and stops and reaps it later
//! ([`ServerProcess`]).

use mproc_shm::sys::IgnorePoison;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use mproc_ipc::Connection;
use mproc_process::Process;

use crate::client::{current_pid, random_bytes};
use crate::error::{ManagerError, Result};
use crate::net::{Address, WireAddress};
use crate::server::Server;

/// How long `launch` waits for the server process to bind.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a launched server listens: the given address, or a socket in a fresh private
/// directory (made here, removed by the returned [`ServerProcess`]).
pub(crate) fn plan_address(address: Option<Address>) -> Result<(Address, Option<PathBuf>)> {
    match address {
        Some(a) => Ok((a, None)),
        None => {
            let dir = private_dir()?;
            Ok((Address::Unix(dir.join("manager.sock")), Some(dir)))
        }
    }
}

/// Forks a daemon child that runs `bind` and serves; returns the bound address the
/// child reported and the process handle. On failure the private `dir` is removed.
pub(crate) fn launch(
    bind: impl FnOnce() -> Result<Server> + Send + 'static,
    dir: Option<PathBuf>,
) -> Result<(Address, ServerProcess)> {
    let cleanup = |e: ManagerError| {
        if let Some(d) = &dir {
            remove_private_dir(d);
        }
        e
    };
    // The child binds (so the listener, and its unlink-on-drop, live only there) and
    // reports the bound address, or why it could not bind, on this pair.
    let (mut ready, mut report) =
        Connection::pair().map_err(|e| cleanup(ManagerError::Start { reason: e.to_string() }))?;
    let mut process = Process::builder()
        .name("mproc-manager")
        .daemon(true)
        .target(move || match bind() {
            Ok(server) => {
                let _ = report.send(&Ok::<_, String>(WireAddress::from(server.address())));
                drop(report);
                let _ = server.serve_forever();
            }
            Err(e) => {
                let _ = report.send(&Err::<WireAddress, _>(e.to_string()));
            }
        })
        .build();
    process.start().map_err(|e| cleanup(ManagerError::Start { reason: e.to_string() }))?;
    let reported = match ready.poll(Some(START_TIMEOUT)) {
        Ok(true) => ready.recv::<std::result::Result<WireAddress, String>>().map_err(|e| e.to_string()),
        _ => Err(format!("the server did not report within {START_TIMEOUT:?}")),
    };
    match reported {
        Ok(Ok(a)) => Ok((a.into(), ServerProcess { process: Mutex::new(process), dir, owner: current_pid() })),
        Ok(Err(e)) | Err(e) => {
            let _ = process.kill();
            let _ = process.join();
            Err(cleanup(ManagerError::Start { reason: e }))
        }
    }
}

/// Makes `$TMPDIR/mproc-manager-<random>` with mode 0700, tracked by shm's
/// resource tracker.
fn private_dir() -> Result<PathBuf> {
    let mut r = [0u8; 8];
    random_bytes(&mut r, "the manager's socket directory name")?;
    let name = format!("mproc-manager-{:016x}", u64::from_ne_bytes(r));
    let dir = std::env::temp_dir().join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| ManagerError::Io { op: format!("mkdir {}", dir.display()), reason: e.to_string() })?;
    // Removed by shm's resource tracker if this process dies without removing
    // it (SIGKILL; the daemon server dies with it).
    mproc_shm::tracker::track_dir(&dir);
    Ok(dir)
}

/// A server process a [`Manager`](crate::Manager) handle started.
pub(crate) struct ServerProcess {
    process: Mutex<Process>,
    dir: Option<PathBuf>,
    /// The process that started the server: only it may join the server and remove
    /// its directory (a forked child holding a copy of the handle must not).
    owner: u32,
}

impl ServerProcess {
    /// Waits for the process to exit (it was asked to), kills it after `grace`, reaps
    /// it, and removes its private directory.
    pub fn stop(self, grace: Duration) -> Result<()> {
        let p = self.process.lock().ignore_poison();
        let result = match p.join_timeout(grace) {
            Ok(()) => Ok(()),
            _ => {
                let _ = p.kill();
                p.join()
                    .map_err(|e| ManagerError::Io { op: "reaping the manager process".into(), reason: e.to_string() })
            }
        };
        if let Some(d) = &self.dir {
            remove_private_dir(d);
        }
        result
    }

    /// True in the process that started the server.
    pub fn is_owner(&self) -> bool {
        self.owner == current_pid()
    }

    /// The server's pid.
    pub fn pid(&self) -> Option<u32> {
        self.process.lock().ignore_poison().pid()
    }
}

fn remove_private_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    mproc_shm::tracker::untrack_dir(dir);
}
