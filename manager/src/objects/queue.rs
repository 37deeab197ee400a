//! `Queue` and `JoinableQueue`: a `VecDeque` of values with a condition variable.
//! A blocked `get`/`put`/`join` blocks only the calling client's server thread.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use crate::error::{ManagerError, Result};
use crate::object::{deadline, lock, no_method, CallCtx, Object};
use crate::value::{Args, Value};

/// The methods of `queue.Queue` (CPython's `AutoProxy` calls these).
const QUEUE_METHODS: &[&str] =
    &["empty", "full", "get", "get_nowait", "join", "put", "put_nowait", "qsize", "task_done"];

struct QueueState {
    items: VecDeque<Value>,
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

    fn exposed(&self) -> &'static [&'static str] {
        QUEUE_METHODS
    }

    fn call(&self, ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut st = lock(&self.state);
        match method {
            "put" | "put_nowait" => {
                let item = args.req(0, "item")?.clone();
                let until = if method == "put" {
                    deadline(args.flag(1, "block", true)?, args.timeout(2, "timeout", false)?)
                } else {
                    deadline(false, None)
                };
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
                Ok(Value::None)
            }
            "get" | "get_nowait" => {
                let until = if method == "get" {
                    deadline(args.flag(0, "block", true)?, args.timeout(1, "timeout", false)?)
                } else {
                    deadline(false, None)
                };
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
            "qsize" => Ok(Value::Int(st.items.len() as i64)),
            "empty" => Ok(Value::Bool(st.items.is_empty())),
            "full" => Ok(Value::Bool(self.is_full(&st))),
            "task_done" => {
                if st.unfinished == 0 {
                    return Err(ManagerError::TooManyTaskDone);
                }
                st.unfinished -= 1;
                if st.unfinished == 0 {
                    self.changed.notify_all();
                }
                Ok(Value::None)
            }
            // `join(timeout)` is this crate's addition (Python's takes none): → bool.
            "join" => {
                let until = deadline(true, args.timeout(0, "timeout", false)?);
                while st.unfinished > 0 {
                    let (g, timed_out) = ctx.wait(&self.changed, st, until)?;
                    st = g;
                    if timed_out && st.unfinished > 0 {
                        return Ok(Value::Bool(false));
                    }
                }
                Ok(if args.args.is_empty() { Value::None } else { Value::Bool(true) })
            }
            _ => Err(no_method(&self.typeid, method)),
        }
    }
}
