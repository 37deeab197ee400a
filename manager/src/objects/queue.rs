//! `Queue` and `JoinableQueue`: a `VecDeque` of encoded items with condition variables.
//! A blocked `get`/`put`/`join` blocks only the calling client's server thread.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ManagerError, Result};
use crate::object::{deadline, decode_call, lock, CallCtx, Object};
use crate::wire::to_bytes;

/// The methods of a queue.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum QueueCall {
    /// → `QueueFull` if non-blocking or timed out
    Put { item: Vec<u8>, block: bool, timeout: Option<Duration> },
    /// → `T`, or `QueueEmpty` if non-blocking or timed out
    Get { block: bool, timeout: Option<Duration> },
    /// → `u64`
    Qsize,
    /// → `bool`
    Empty,
    /// → `bool`
    Full,
    /// → `TooManyTaskDone` if no task is unfinished
    TaskDone,
    /// → `bool` (false: timed out with tasks unfinished)
    Join { timeout: Option<Duration> },
}

struct QueueState {
    items: VecDeque<Vec<u8>>,
    /// Items put and not yet marked done (`JoinableQueue`).
    unfinished: u64,
}

/// A `Queue(maxsize)`; `maxsize == 0` is unbounded, as in Python.
pub(crate) struct QueueObject {
    typeid: String,
    maxsize: usize,
    state: Mutex<QueueState>,
    /// Signalled on every change of state; waiters recheck their own predicate.
    changed: Condvar,
}

impl QueueObject {
    pub fn new(typeid: &str, maxsize: usize) -> Self {
        QueueObject {
            typeid: typeid.to_string(),
            maxsize,
            state: Mutex::new(QueueState { items: VecDeque::new(), unfinished: 0 }),
            changed: Condvar::new(),
        }
    }

    fn is_full(&self, st: &QueueState) -> bool {
        self.maxsize > 0 && st.items.len() >= self.maxsize
    }
}

impl Object for QueueObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn call(&self, ctx: &CallCtx<'_>, call: &[u8]) -> Result<Vec<u8>> {
        let call: QueueCall = decode_call(&self.typeid, call)?;
        let mut st = lock(&self.state);
        match call {
            QueueCall::Put { item, block, timeout } => {
                let until = deadline(block, timeout);
                while self.is_full(&st) {
                    let (g, timed_out) = ctx.wait(&self.changed, st, until)?;
                    st = g;
                    if timed_out && self.is_full(&st) {
                        return Err(ManagerError::QueueFull);
                    }
                }
                st.items.push_back(item);
                st.unfinished += 1;
                self.changed.notify_all();
                Ok(Vec::new())
            }
            QueueCall::Get { block, timeout } => {
                let until = deadline(block, timeout);
                loop {
                    if let Some(item) = st.items.pop_front() {
                        self.changed.notify_all();
                        return Ok(item);
                    }
                    let (g, timed_out) = ctx.wait(&self.changed, st, until)?;
                    st = g;
                    if timed_out && st.items.is_empty() {
                        return Err(ManagerError::QueueEmpty);
                    }
                }
            }
            QueueCall::Qsize => to_bytes(&(st.items.len() as u64)),
            QueueCall::Empty => to_bytes(&st.items.is_empty()),
            QueueCall::Full => to_bytes(&self.is_full(&st)),
            QueueCall::TaskDone => {
                if st.unfinished == 0 {
                    return Err(ManagerError::TooManyTaskDone);
                }
                st.unfinished -= 1;
                if st.unfinished == 0 {
                    self.changed.notify_all();
                }
                Ok(Vec::new())
            }
            QueueCall::Join { timeout } => {
                let until = deadline(true, timeout);
                while st.unfinished > 0 {
                    let (g, timed_out) = ctx.wait(&self.changed, st, until)?;
                    st = g;
                    if timed_out && st.unfinished > 0 {
                        return to_bytes(&false);
                    }
                }
                to_bytes(&true)
            }
        }
    }
}
