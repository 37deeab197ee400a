//! The child registry: this process's started and not yet reaped children, and
//! the reaper thread that collects the detached ones.
//!
//! It lives in one leaked [`Children`] behind an atomic pointer. A forked or
//! spawned child does not use its copy of the parent's list — whose mutex another
//! parent thread may have held at the fork — but [`reset`]s to a fresh one before
//! it runs its target, so nothing a child of a multi-threaded parent calls here
//! can deadlock on an inherited lock.
//!
//! A [`Child`] record knows nothing of this list: the registry makes every record
//! ([`adopt`]) and hands it a plain function that takes it off the list once reaped.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::child::{Child, Reaper};

/// This process's children and its reaper thread.
struct Children {
    list: Mutex<Vec<Arc<Child>>>,
    /// The thread that reaps detached children, started on first use; `None` if
    /// no thread could be made.
    reaper: OnceLock<Option<Reaper>>,
}

impl Children {
    fn new() -> Children {
        Children { list: Mutex::new(Vec::new()), reaper: OnceLock::new() }
    }

    fn list(&self) -> MutexGuard<'_, Vec<Arc<Child>>> {
        // A panic while holding this lock cannot leave the list inconsistent.
        mproc_shm::sys::lock(&self.list)
    }
}

static CHILDREN: AtomicPtr<Children> = AtomicPtr::new(ptr::null_mut());

/// This process's registry, made on first use.
fn children() -> &'static Children {
    let p = CHILDREN.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null pointer in CHILDREN came from `Box::into_raw` and is
        // never freed, so it is valid for 'static.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::new(Children::new()));
    match CHILDREN.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
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

/// Starts an empty registry in a newly started child (after fork, or before
/// `main` in a spawned child). The old one, if any, is leaked on purpose: it is
/// the parent's copy and its mutex may be held by a thread that does not exist here.
pub(crate) fn reset() {
    CHILDREN.store(Box::into_raw(Box::new(Children::new())), Ordering::Release);
}

/// Records a child just started by this process.
pub(crate) fn adopt(pid: u32, name: String, daemon: bool) -> Arc<Child> {
    let child = Child::new(pid, name, daemon, forget);
    children().list().push(child.clone());
    child
}

/// Takes a reaped child off the list (the hook [`adopt`] gives every record).
fn forget(child: &Child) {
    children().list().retain(|c| !ptr::eq(&**c, child));
}

/// The children not reaped yet, as last seen.
pub(crate) fn unreaped() -> Vec<Arc<Child>> {
    children().list().clone()
}

/// Hands a child whose handle is dropped to this process's reaper thread (see
/// [`Child::detach`]).
pub(crate) fn detach(child: Arc<Child>) {
    child.detach(children().reaper.get_or_init(Reaper::start).as_ref());
}
