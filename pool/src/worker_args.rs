//! What a worker is started with: plain values for a forked worker, shared
//! handles and encoded bytes for a spawned one.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use mproc_ipc::{Connection, ConnectionToken};
use mproc_process::Shared as Handle;
use mproc_shm::{Exports, Segment, Share};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::task::ForkInit;

/// What a forked worker needs, as plain values that survive `fork`.
pub(crate) struct ForkArgs {
    pub(crate) rx: RawFd,
    pub(crate) tx: RawFd,
    /// Address of the worker's journal (mapped at the same address in the child).
    pub(crate) journal: usize,
    /// Inherited fds the worker must close.
    pub(crate) close: Vec<RawFd>,
    pub(crate) initializer: Option<ForkInit>,
    pub(crate) maxtasks: Option<u64>,
}

/// What a spawned worker is started with: its channel ends and journal travel
/// as shared handles (inherited fds), the initializer as code offsets and the
/// encoded argument.
#[derive(Serialize, Deserialize)]
pub(crate) struct SpawnArgs {
    pub(crate) rx: Handle<ChildEnd>,
    pub(crate) tx: Handle<ChildEnd>,
    pub(crate) journal: Handle<Segment>,
    pub(crate) init: Option<SpawnInit>,
    pub(crate) maxtasks: Option<u64>,
}

/// A spawned worker's initializer: `(trampoline, function)` offsets and the
/// argument.
#[derive(Serialize, Deserialize)]
pub(crate) struct SpawnInit {
    pub(crate) code: (i64, i64),
    pub(crate) arg: InitArg,
}

/// An initializer's argument: encoded on the parent's side while the spawn
/// request is encoded (so `Shared` handles in it are exported with the rest),
/// bytes on the worker's side, decoded by the initializer's trampoline.
pub(crate) enum InitArg {
    Encode {
        encode: Arc<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>,
        /// Where a failure's message goes (the spawn's encoder keeps only that
        /// serde failed).
        error: Arc<Mutex<Option<String>>>,
    },
    Bytes(Vec<u8>),
}

impl Serialize for InitArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InitArg::Encode { encode, error } => match encode() {
                Ok(bytes) => bytes.serialize(s),
                Err(e) => {
                    *mproc_shm::sys::lock(error) = Some(e.clone());
                    Err(serde::ser::Error::custom(e))
                }
            },
            InitArg::Bytes(b) => b.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for InitArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<u8>::deserialize(d).map(InitArg::Bytes)
    }
}

/// A worker's end of a channel, as a spawned worker's argument. The parent
/// keeps a reference of its own until the worker has started: the process crate
/// drops the arguments once they are encoded, before the exec, and the exported
/// fd must still be open then.
pub(crate) struct ChildEnd(pub(crate) Arc<Connection>);

impl Share for ChildEnd {
    type Token = ConnectionToken;

    fn export(&self, exports: &mut Exports) -> mproc_shm::Result<ConnectionToken> {
        self.0.export(exports)
    }

    fn import(token: ConnectionToken) -> mproc_shm::Result<ChildEnd> {
        Connection::import(token).map(|c| ChildEnd(Arc::new(c)))
    }
}

impl ChildEnd {
    /// The connection; `None` if something else still holds it (never in a
    /// worker, where the import made the only reference).
    pub(crate) fn into_connection(self) -> Option<Connection> {
        Arc::into_inner(self.0)
    }
}
