//! `Lock`, `RLock`, `Semaphore`/`BoundedSemaphore`, `Condition`, `Event` and `Barrier`
//! as server-side objects: std `Mutex` + `Condvar`, one blocked server thread per waiting
//! client. Owners are named by `(client, thread)`: the client id from the connection's
//! `Hello` and a thread id the proxy sends with each call.
//!
//! Unlike CPython's manager, a lock held by a client that disconnects or dies is
//! released when the server notices (its connections close), so survivors do not hang.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::error::{ManagerError, Result};
use crate::object::{deadline, lock, no_method, CallCtx, Object};
use crate::value::{Args, Value};

/// `(client, thread)`
type Owner = (u64, u64);

struct LockState {
    owner: Option<Owner>,
    count: u64,
}

/// The state of a `Lock` or `RLock` and the condvar its waiters sleep on: owned by a
/// [`LockObject`] and shared with every `Condition` made over that lock.
pub(crate) struct LockCore {
    reentrant: bool,
    state: Mutex<LockState>,
    freed: Condvar,
}

impl LockCore {
    fn new(reentrant: bool) -> std::sync::Arc<Self> {
        std::sync::Arc::new(LockCore {
            reentrant,
            state: Mutex::new(LockState { owner: None, count: 0 }),
            freed: Condvar::new(),
        })
    }

    fn acquire(&self, ctx: &CallCtx<'_>, me: Owner, block: bool, timeout: Option<Duration>) -> Result<bool> {
        acquire(ctx, &self.state, &self.freed, self.reentrant, me, block, timeout)
    }

    fn release(&self, me: Owner, what: &str) -> Result<()> {
        release(&self.state, &self.freed, self.reentrant, me, what)
    }

    fn release_dead(&self, client: u64) {
        release_dead(&self.state, &self.freed, client)
    }
}

/// A `Lock` (`reentrant == false`: any client may release) or an `RLock`.
pub(crate) struct LockObject {
    typeid: String,
    core: std::sync::Arc<LockCore>,
}

impl LockObject {
    pub fn new(typeid: &str, reentrant: bool) -> Self {
        LockObject { typeid: typeid.to_string(), core: LockCore::new(reentrant) }
    }

    /// The lock state, which a `Condition` made over this lock shares.
    pub fn core(&self) -> std::sync::Arc<LockCore> {
        self.core.clone()
    }
}

/// Acquires `st` for `me`, waiting on `cv`; shared by `LockObject` and `ConditionObject`.
fn acquire(
    ctx: &CallCtx<'_>,
    state: &Mutex<LockState>,
    cv: &Condvar,
    reentrant: bool,
    me: Owner,
    block: bool,
    timeout: Option<Duration>,
) -> Result<bool> {
    let mut st = lock(state);
    if reentrant && st.owner == Some(me) {
        st.count += 1;
        return Ok(true);
    }
    let until = deadline(block, timeout);
    while st.owner.is_some() {
        let (g, timed_out) = ctx.wait(cv, st, until)?;
        st = g;
        if timed_out && st.owner.is_some() {
            return Ok(false);
        }
    }
    st.owner = Some(me);
    st.count = 1;
    Ok(true)
}

fn release(state: &Mutex<LockState>, cv: &Condvar, reentrant: bool, me: Owner, what: &str) -> Result<()> {
    let mut st = lock(state);
    match st.owner {
        None => Err(ManagerError::NotHeld { typeid: what.to_string(), op: "release (unlocked)".into() }),
        Some(o) if reentrant && o != me => {
            Err(ManagerError::NotHeld { typeid: what.to_string(), op: "release".into() })
        }
        Some(_) => {
            st.count -= 1;
            if st.count == 0 || !reentrant {
                st.owner = None;
                st.count = 0;
                cv.notify_all();
            }
            Ok(())
        }
    }
}

fn release_dead(state: &Mutex<LockState>, cv: &Condvar, client: u64) {
    let mut st = lock(state);
    if st.owner.is_some_and(|o| o.0 == client) {
        st.owner = None;
        st.count = 0;
        cv.notify_all();
    }
}

impl Object for LockObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["acquire", "release"]
    }

    fn call(&self, ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let me = (ctx.client, ctx.thread);
        match method {
            "acquire" | "__enter__" => {
                let block = args.flag(0, "blocking", true)?;
                let timeout = args.timeout(1, "timeout", true)?;
                Ok(Value::Bool(self.core.acquire(ctx, me, block, timeout)?))
            }
            "release" | "__exit__" => {
                self.core.release(me, &self.typeid)?;
                Ok(Value::None)
            }
            "locked" => Ok(Value::Bool(lock(&self.core.state).owner.is_some())),
            _ => Err(no_method(&self.typeid, method)),
        }
    }

    fn client_gone(&self, client: u64) {
        self.core.release_dead(client);
    }
}

/// A counting semaphore; `bound` is `Some(initial)` for a `BoundedSemaphore`.
pub(crate) struct SemaphoreObject {
    typeid: String,
    bound: Option<u64>,
    value: Mutex<u64>,
    changed: Condvar,
}

impl SemaphoreObject {
    pub fn new(typeid: &str, value: u64, bounded: bool) -> Self {
        SemaphoreObject {
            typeid: typeid.to_string(),
            bound: bounded.then_some(value),
            value: Mutex::new(value),
            changed: Condvar::new(),
        }
    }
}

impl Object for SemaphoreObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["acquire", "release"]
    }

    fn call(&self, ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut v = lock(&self.value);
        match method {
            "acquire" | "__enter__" => {
                let until = deadline(args.flag(0, "blocking", true)?, args.timeout(1, "timeout", false)?);
                while *v == 0 {
                    let (g, timed_out) = ctx.wait(&self.changed, v, until)?;
                    v = g;
                    if timed_out && *v == 0 {
                        return Ok(Value::Bool(false));
                    }
                }
                *v -= 1;
                Ok(Value::Bool(true))
            }
            "release" | "__exit__" => {
                let n = if method == "release" { args.int(0, "n", 1)? } else { 1 };
                if n < 1 {
                    return Err(ManagerError::InvalidArgument {
                        argument: format!("n = {n}"),
                        reason: "n must be one or more".into(),
                    });
                }
                let n = n as u64;
                if let Some(bound) = self.bound {
                    if v.saturating_add(n) > bound {
                        return Err(ManagerError::SemaphoreOverRelease { initial: bound });
                    }
                }
                *v = v.checked_add(n).ok_or_else(|| ManagerError::InvalidArgument {
                    argument: format!("value = {}", *v),
                    reason: "the semaphore cannot grow further".into(),
                })?;
                self.changed.notify_all();
                Ok(Value::None)
            }
            "get_value" => Ok(Value::Int(*v as i64)),
            _ => Err(no_method(&self.typeid, method)),
        }
    }
}

#[derive(Default)]
struct Waiters {
    next_ticket: u64,
    /// Tickets of waiters not yet notified, oldest first.
    waiting: std::collections::VecDeque<u64>,
    /// Tickets notified but not yet collected by their waiter.
    notified: std::collections::HashSet<u64>,
}

/// A `Condition` over its own re-entrant lock or over a `Lock`/`RLock` object's.
pub(crate) struct ConditionObject {
    typeid: String,
    /// The lock: shared with the `Lock`/`RLock` object it was made with, if any.
    lock: std::sync::Arc<LockCore>,
    waiters: Mutex<Waiters>,
    /// Signalled on notify (paired with `waiters`).
    wake: Condvar,
}

impl ConditionObject {
    /// A condition over `lock` (a `Lock`/`RLock` object's core), or its own RLock.
    pub fn new(typeid: &str, lock: Option<std::sync::Arc<LockCore>>) -> Self {
        ConditionObject {
            typeid: typeid.to_string(),
            lock: lock.unwrap_or_else(|| LockCore::new(true)),
            waiters: Mutex::new(Waiters::default()),
            wake: Condvar::new(),
        }
    }

    fn check_owner(&self, me: Owner, what: &str) -> Result<()> {
        if lock(&self.lock.state).owner != Some(me) {
            return Err(ManagerError::NotHeld { typeid: "Condition".into(), op: what.to_string() });
        }
        Ok(())
    }

    fn wait(&self, ctx: &CallCtx<'_>, me: Owner, timeout: Option<Duration>) -> Result<bool> {
        self.check_owner(me, "wait")?;
        // Register before releasing the lock, so a notify right after the release sees us.
        let ticket = {
            let mut w = lock(&self.waiters);
            let t = w.next_ticket;
            w.next_ticket += 1;
            w.waiting.push_back(t);
            t
        };
        let saved = {
            let mut st = lock(&self.lock.state);
            let saved = st.count;
            st.owner = None;
            st.count = 0;
            self.lock.freed.notify_all();
            saved
        };
        let until = deadline(true, timeout);
        let mut w = lock(&self.waiters);
        let notified = loop {
            if w.notified.remove(&ticket) {
                break true;
            }
            match ctx.wait(&self.wake, w, until) {
                Ok((g, timed_out)) => {
                    w = g;
                    if timed_out && !w.notified.contains(&ticket) {
                        w.waiting.retain(|t| *t != ticket);
                        break false;
                    }
                }
                Err(e) => {
                    let mut w = lock(&self.waiters);
                    w.waiting.retain(|t| *t != ticket);
                    w.notified.remove(&ticket);
                    return Err(e);
                }
            }
        };
        drop(w);
        self.lock.acquire(ctx, me, true, None)?;
        lock(&self.lock.state).count = saved;
        Ok(notified)
    }

    fn notify(&self, me: Owner, n: u64) -> Result<()> {
        self.check_owner(me, "notify")?;
        let mut w = lock(&self.waiters);
        for _ in 0..n {
            match w.waiting.pop_front() {
                Some(t) => {
                    w.notified.insert(t);
                }
                None => break,
            }
        }
        self.wake.notify_all();
        Ok(())
    }
}

impl Object for ConditionObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["acquire", "release", "wait", "notify", "notify_all"]
    }

    fn call(&self, ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let me = (ctx.client, ctx.thread);
        match method {
            "acquire" | "__enter__" => {
                let block = args.flag(0, "blocking", true)?;
                let timeout = args.timeout(1, "timeout", true)?;
                Ok(Value::Bool(self.lock.acquire(ctx, me, block, timeout)?))
            }
            "release" | "__exit__" => {
                self.lock.release(me, "Condition lock")?;
                Ok(Value::None)
            }
            "wait" => Ok(Value::Bool(self.wait(ctx, me, args.timeout(0, "timeout", false)?)?)),
            "notify" => {
                let n = args.int(0, "n", 1)?;
                self.notify(me, n.max(0) as u64)?;
                Ok(Value::None)
            }
            "notify_all" => {
                self.notify(me, u64::MAX)?;
                Ok(Value::None)
            }
            _ => Err(no_method(&self.typeid, method)),
        }
    }

    fn client_gone(&self, client: u64) {
        self.lock.release_dead(client);
    }
}

/// An `Event`: a flag with waiters.
pub(crate) struct EventObject {
    typeid: String,
    flag: Mutex<bool>,
    changed: Condvar,
}

impl EventObject {
    pub fn new(typeid: &str) -> Self {
        EventObject { typeid: typeid.to_string(), flag: Mutex::new(false), changed: Condvar::new() }
    }
}

impl Object for EventObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["is_set", "set", "clear", "wait"]
    }

    fn call(&self, ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut flag = lock(&self.flag);
        match method {
            "set" => {
                *flag = true;
                self.changed.notify_all();
                Ok(Value::None)
            }
            "clear" => {
                *flag = false;
                Ok(Value::None)
            }
            "is_set" => Ok(Value::Bool(*flag)),
            "wait" => {
                let until = deadline(true, args.timeout(0, "timeout", false)?);
                while !*flag {
                    let (g, timed_out) = ctx.wait(&self.changed, flag, until)?;
                    flag = g;
                    if timed_out {
                        break;
                    }
                }
                Ok(Value::Bool(*flag))
            }
            _ => Err(no_method(&self.typeid, method)),
        }
    }
}

struct BarrierState {
    /// Waiters arrived in the current generation.
    count: u64,
    /// Bumped when a generation completes.
    generation: u64,
    /// Bumped by `reset`, which breaks the waiters of the generation it interrupts.
    epoch: u64,
    broken: bool,
}

/// A `Barrier(parties, timeout=...)`.
pub(crate) struct BarrierObject {
    typeid: String,
    parties: u64,
    /// The timeout of a `wait` that names none (Python's `Barrier(timeout=...)`).
    timeout: Option<Duration>,
    state: Mutex<BarrierState>,
    changed: Condvar,
}

impl BarrierObject {
    pub fn new(typeid: &str, parties: u64, timeout: Option<Duration>) -> Self {
        BarrierObject {
            typeid: typeid.to_string(),
            parties,
            timeout,
            state: Mutex::new(BarrierState { count: 0, generation: 0, epoch: 0, broken: false }),
            changed: Condvar::new(),
        }
    }
}

impl Object for BarrierObject {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn exposed(&self) -> &'static [&'static str] {
        &["__getattribute__", "wait", "abort", "reset"]
    }

    fn call(&self, ctx: &CallCtx<'_>, method: &str, args: Args) -> Result<Value> {
        let mut st = lock(&self.state);
        match method {
            "wait" => {
                let timeout = args.timeout(0, "timeout", false)?;
                if st.broken {
                    return Err(ManagerError::BrokenBarrier);
                }
                let (generation, epoch, index) = (st.generation, st.epoch, st.count);
                st.count += 1;
                if st.count == self.parties {
                    st.count = 0;
                    st.generation += 1;
                    self.changed.notify_all();
                    return Ok(Value::Int(index as i64));
                }
                let until = deadline(true, timeout.or(self.timeout));
                loop {
                    let (g, timed_out) = match ctx.wait(&self.changed, st, until) {
                        Ok(r) => r,
                        Err(e) => {
                            let mut st = lock(&self.state);
                            st.broken = true;
                            self.changed.notify_all();
                            return Err(e);
                        }
                    };
                    st = g;
                    if st.generation != generation {
                        return Ok(Value::Int(index as i64));
                    }
                    if st.broken || st.epoch != epoch {
                        return Err(ManagerError::BrokenBarrier);
                    }
                    if timed_out {
                        st.broken = true;
                        self.changed.notify_all();
                        return Err(ManagerError::BrokenBarrier);
                    }
                }
            }
            "abort" => {
                st.broken = true;
                self.changed.notify_all();
                Ok(Value::None)
            }
            "reset" => {
                st.epoch += 1;
                st.count = 0;
                st.broken = false;
                self.changed.notify_all();
                Ok(Value::None)
            }
            "__getattribute__" => match args.req(0, "name")? {
                Value::Str(s) if s == "n_waiting" => Ok(Value::Int(st.count as i64)),
                Value::Str(s) if s == "broken" => Ok(Value::Bool(st.broken)),
                Value::Str(s) if s == "parties" => Ok(Value::Int(self.parties as i64)),
                other => Err(ManagerError::UnknownMethod { typeid: self.typeid.clone(), method: other.to_string() }),
            },
            _ => Err(no_method(&self.typeid, method)),
        }
    }
}
