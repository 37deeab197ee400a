//! `Share`: how a handle crosses into a child process.
//!
//! On **fork** a handle is simply moved into the child's closure: the child
//! inherits every mapping and fd, so nothing needs doing.
//!
//! On **spawn** (a fresh exec of the current binary) the parent calls
//! [`Share::export`], which returns a serialisable token and records in
//! [`Exports`] the fds the child must inherit; the spawner keeps those fds open
//! across `exec` at the same numbers; the child calls [`Share::import`] on the
//! token. Anonymous segments travel as an inherited fd checked by inode, named
//! segments by name. Everything shareable reduces to segments and fds, so every
//! mproc crate implements this trait without depending on `mproc-process`.
//!
//! To **an unrelated process** (or a running child) a handle travels over a
//! Unix socket instead: the sender exports it, sends the token and passes the
//! recorded fds with `SCM_RIGHTS` (`mproc_ipc::Connection::send_handle`); the
//! receiver gets the fds under new numbers and calls [`import_with_fds`], which
//! makes the received fds stand for the numbers the token names while the
//! handle is imported. `import` implementations look fds up with
//! [`received_fd`] and [`take_received_fd`].

use std::cell::RefCell;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Result;

/// A handle that can be sent to a spawned child process.
pub trait Share: Sized {
    /// The serialisable form of the handle.
    type Token: Serialize + DeserializeOwned;

    /// Describes this handle for a child, recording the fds it must inherit.
    fn export(&self, exports: &mut Exports) -> Result<Self::Token>;

    /// Rebuilds the handle in the child from its token. A token that does not
    /// match what the child inherited is a [`ShmError::BadToken`](crate::ShmError::BadToken).
    fn import(token: Self::Token) -> Result<Self>;
}

/// The fds a spawned child must inherit, at the same numbers.
#[derive(Debug, Default, Clone)]
pub struct Exports {
    fds: Vec<RawFd>,
}

impl Exports {
    /// An empty set.
    pub fn new() -> Exports {
        Exports::default()
    }

    /// Asks that `fd` be kept open, at the same number, in the child.
    pub fn inherit(&mut self, fd: BorrowedFd<'_>) {
        let raw = fd.as_raw_fd();
        if !self.fds.contains(&raw) {
            self.fds.push(raw);
        }
    }

    /// The fds to keep open across `exec`.
    pub fn fds(&self) -> &[RawFd] {
        &self.fds
    }
}

thread_local! {
    /// While [`import_with_fds`] runs: token fd numbers and the fds received for them.
    static RECEIVED: RefCell<Vec<(RawFd, OwnedFd)>> = const { RefCell::new(Vec::new()) };
}

/// Imports a handle whose fds arrived under new numbers (by `SCM_RIGHTS`):
/// each pair is (the fd number the token names, as the sender knew it; the fd
/// received for it). Received fds the import does not take over are closed
/// when it returns.
pub fn import_with_fds<H: Share>(token: H::Token, fds: Vec<(RawFd, OwnedFd)>) -> crate::Result<H> {
    struct Restore(Vec<(RawFd, OwnedFd)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            // Closes what the import left, and restores an outer import's fds.
            let outer = std::mem::take(&mut self.0);
            let _ = RECEIVED.try_with(|r| drop(r.replace(outer)));
        }
    }
    let _restore = Restore(RECEIVED.with(|r| r.replace(fds)));
    H::import(token)
}

/// For [`Share::import`] implementations: the fd that stands for the token's
/// fd number `fd` — the received one inside [`import_with_fds`], else `fd`
/// itself (inherited at that number across `exec`).
pub fn received_fd(fd: RawFd) -> RawFd {
    RECEIVED.with(|r| r.borrow().iter().find(|(n, _)| *n == fd).map_or(fd, |(_, f)| f.as_raw_fd()))
}

/// For [`Share::import`] implementations that take an fd over rather than
/// duplicate it: the received fd standing for `fd`, if there is one (see
/// [`import_with_fds`]); it is then no longer closed when the import returns.
pub fn take_received_fd(fd: RawFd) -> Option<OwnedFd> {
    RECEIVED.with(|r| {
        let mut r = r.borrow_mut();
        let i = r.iter().position(|(n, _)| *n == fd)?;
        Some(r.swap_remove(i).1)
    })
}
