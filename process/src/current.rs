//! Who this process is, its parent, its live children, and the CPU count.
//!
//! This process's identity lives in one leaked [`Registry`] behind an atomic
//! pointer; its children in the child registry (`registry.rs`). A forked child
//! does not use its copy of the parent's state — whose locks another parent
//! thread may have held at the fork — but installs a fresh one before it runs
//! its target, so nothing a child of a multi-threaded parent calls here can
//! deadlock on an inherited lock.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread::ThreadId;

use mproc_shm::sys;

use crate::child::Status;
use crate::registry;

/// A description of a process: its name, pid and daemon flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
    daemon: bool,
}

impl ProcessInfo {
    pub(crate) fn new(name: String, pid: u32, daemon: bool) -> ProcessInfo {
        ProcessInfo { name, pid, daemon }
    }

    /// The name: `"MainProcess"` for a process not started by mproc, else the
    /// name given to its [`Process`](crate::Process) (default `Process-N`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it was started as a daemon.
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

/// This process's state: who it is, and the thread that starts its daemons.
pub(crate) struct Registry {
    me: ProcessInfo,
    parent: Option<ProcessInfo>,
    /// The thread that starts daemon children (see [`on_daemon_starter`]).
    starter: OnceLock<Option<(mpsc::Sender<Task>, ThreadId)>>,
}

/// Work for the daemon-starter thread.
type Task = Box<dyn FnOnce() + Send>;

static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(ptr::null_mut());

/// This process's authkey (a leaked, never-freed box), or null until first use.
/// An atomic pointer, not a lock: a forked child must never wait on a lock a
/// parent thread held at the fork.
static AUTHKEY: AtomicPtr<Vec<u8>> = AtomicPtr::new(ptr::null_mut());

/// This process's authentication key, Python's `current_process().authkey`:
/// 32 random bytes made on first use in a process not started by mproc,
/// inherited by every child (forked: the memory; spawned: in the spawn
/// request). Managers started without an explicit authkey use it, so any
/// process of the tree can talk to them and decode their proxies.
pub fn authkey() -> &'static [u8] {
    let p = AUTHKEY.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null pointer in AUTHKEY came from `Box::into_raw` and is
        // never freed.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::new(random_key()));
    match AUTHKEY.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: as above; `fresh` is now installed and never freed.
        Ok(_) => unsafe { &*fresh },
        Err(winner) => {
            // SAFETY: `fresh` was never shared; freed once here.
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: `winner` is installed and never freed.
            unsafe { &*winner }
        }
    }
}

/// Sets this process's authkey (Python's `current_process().authkey = key`);
/// children started afterwards inherit it. The previous key is leaked (it may
/// still be borrowed).
pub fn set_authkey(key: &[u8]) {
    AUTHKEY.store(Box::into_raw(Box::new(key.to_vec())), Ordering::Release);
}

fn random_key() -> Vec<u8> {
    let mut k = vec![0u8; 32];
    if sys::random_bytes(&mut k).is_err() {
        // No getrandom (a very old kernel or a seccomp filter): /dev/urandom.
        use std::io::Read;
        let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut k)).is_ok();
        if !ok {
            // Last resort, never a panic: std's per-process random hash keys.
            use std::hash::{BuildHasher, Hasher};
            for chunk in k.chunks_mut(8) {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u32(sys::pid());
                chunk.copy_from_slice(&h.finish().to_ne_bytes()[..chunk.len()]);
            }
        }
    }
    k
}

/// This process's registry, made on first use for a process not started by mproc.
pub(crate) fn registry() -> &'static Registry {
    let p = REGISTRY.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null pointer in REGISTRY came from `Box::into_raw` and is
        // never freed, so it is valid for 'static.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::new(Registry {
        me: ProcessInfo::new("MainProcess".to_owned(), sys::pid(), false),
        parent: None,
        starter: OnceLock::new(),
    }));
    match REGISTRY.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: as above; `fresh` is now the installed, never-freed registry.
        Ok(_) => unsafe { &*fresh },
        Err(winner) => {
            // SAFETY: `fresh` was made above and never shared; we free it once.
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: `winner` is the installed, never-freed registry.
            unsafe { &*winner }
        }
    }
}

/// Installs the identity of a newly started child (after fork, or before `main`
/// in a spawned child), with no children. The old registry, if any, is leaked on
/// purpose: it is the parent's copy and its starter may be a thread that does
/// not exist here.
pub(crate) fn install(me: ProcessInfo, parent: ProcessInfo) {
    let fresh = Box::into_raw(Box::new(Registry { me, parent: Some(parent), starter: OnceLock::new() }));
    REGISTRY.store(fresh, Ordering::Release);
    registry::reset();
}

/// Runs `f` on this process's daemon-starter thread and returns its result.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends. So that
/// a daemon child lives exactly as long as the parent *process* (Python's
/// semantics), daemon children are forked by one thread that never ends: made on
/// first use, parked on a channel. If that thread cannot be made, `f` runs on the
/// calling thread (the daemon then dies with the calling thread).
pub(crate) fn on_daemon_starter<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let starter = registry().starter.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Task>();
        let thread = std::thread::Builder::new()
            .name("mproc-daemon-starter".into())
            .spawn(move || {
                while let Ok(task) = rx.recv() {
                    task();
                }
            })
            .ok()?;
        Some((tx, thread.thread().id()))
    });
    let Some((tx, id)) = starter else { return f() };
    if std::thread::current().id() == *id {
        return f();
    }
    let (rtx, rrx) = mpsc::sync_channel(1);
    // A panic in `f` (a user `Serialize`, say) is caught on the starter thread,
    // which must outlive it, and resumed on the caller's.
    let task: Task = Box::new(move || {
        let _ = rtx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match tx.send(task).map(|()| rrx.recv()) {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(panic))) => std::panic::resume_unwind(panic),
        Ok(Err(mpsc::RecvError)) | Err(mpsc::SendError(_)) => unreachable!("the daemon-starter thread never ends"),
    }
}

/// The process this code runs in.
///
/// `MainProcess` with the real pid for a program not started by mproc; in a child
/// started by [`Process`](crate::Process) (fork or spawn), that process's name and
/// daemon flag.
pub fn current_process() -> ProcessInfo {
    let me = &registry().me;
    // After a plain `libc::fork` outside mproc the recorded pid is the parent's:
    // report the real one.
    ProcessInfo { pid: sys::pid(), ..me.clone() }
}

/// The process that started this one through mproc, or `None` in a process not
/// started by mproc (Python's `parent_process()` returns `None` in the main
/// process too).
pub fn parent_process() -> Option<ProcessInfo> {
    registry().parent.clone()
}

/// The live children of this process that mproc started and nobody has joined.
///
/// Like Python's `active_children()`, it reaps the children that have ended
/// (their handles then report the exit code) and lists the rest.
pub fn active_children() -> Vec<ProcessInfo> {
    registry::unreaped()
        .into_iter()
        .filter(|c| c.try_reap() == Status::Running)
        .map(|c| ProcessInfo::new(c.name.clone(), c.pid, c.daemon))
        .collect()
}

/// The number of CPUs this process may run on: the size of its affinity mask
/// (`sched_getaffinity(2)`), like Python 3.13's `process_cpu_count()`; never 0.
pub fn cpu_count() -> usize {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) if set.count() > 0 => set.count() as usize,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::on_daemon_starter;

    #[test]
    fn a_panic_on_the_daemon_starter_reaches_the_caller_and_spares_the_thread() {
        let caught = std::panic::catch_unwind(|| on_daemon_starter(|| -> u32 { panic!("in the job") }));
        let msg = caught.unwrap_err().downcast::<&str>().map(|m| *m);
        assert_eq!(msg.ok(), Some("in the job"));
        // The starter thread still runs jobs.
        assert_eq!(on_daemon_starter(|| 5), 5);
        assert_eq!(
            on_daemon_starter(|| std::thread::current().name().map(str::to_owned)).as_deref(),
            Some("mproc-daemon-starter")
        );
    }
}
