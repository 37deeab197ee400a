//! A spawn pool whose binary changes on disk while it runs: replacement
//! workers cannot start (the child refuses a stale binary), and once no worker
//! is left the pool fails its work with `PoolError::Spawn` instead of waiting
//! forever. Alone in its test binary, since it changes that binary's mtime.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use common::T;
use mproc_pool::{Pool, PoolError, StartMethod};
use mproc_testkit::watchdog;

fn pid_of(_: ()) -> u32 {
    std::process::id()
}

/// Sets the mtime of `path` (without opening it: a running binary cannot be
/// opened for writing).
fn set_mtime(path: &CString, sec: i64, nsec: i64) {
    let times = [
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        libc::timespec { tv_sec: sec as libc::time_t, tv_nsec: nsec as _ },
    ];
    // SAFETY: `path` is a NUL-terminated string and `times` two timespecs, as
    // utimensat expects; both outlive the call.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat: {}", std::io::Error::last_os_error());
}

/// Moves this test binary's mtime forward by a second, and back when dropped.
struct Touched {
    path: CString,
    mtime: (i64, i64),
}

fn touch_own_binary() -> Touched {
    let exe: PathBuf = std::env::current_exe().unwrap();
    let path = CString::new(exe.as_os_str().as_bytes()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(&exe).unwrap();
    let mtime = (md.mtime(), md.mtime_nsec());
    set_mtime(&path, mtime.0 + 1, mtime.1);
    Touched { path, mtime }
}

impl Drop for Touched {
    fn drop(&mut self) {
        set_mtime(&self.path, self.mtime.0, self.mtime.1);
    }
}

#[test]
fn a_spawn_pool_that_cannot_replace_its_workers_fails_its_work() {
    let _w = watchdog(60);
    let pool = Pool::builder().processes(1).maxtasksperchild(1).start_method(StartMethod::Spawn).build().unwrap();
    let _touched = touch_own_binary();
    // The running worker was started before the change: it runs one task, then
    // exits (maxtasksperchild), and no replacement can start.
    let first = pool.apply(pid_of, ()).unwrap();
    assert_ne!(first, std::process::id());
    let err = match pool.apply_async(pid_of, ()) {
        Ok(r) => r.get_timeout(T).unwrap_err(),
        Err(e) => e,
    };
    let PoolError::Spawn(message) = &err else { panic!("{err}") };
    assert!(message.contains("stale or foreign binary"), "{message}");
    // Later calls fail at once with the same cause; the pool can be joined.
    assert!(matches!(pool.apply_async(pid_of, ()), Err(PoolError::Spawn(_))));
    pool.join().unwrap();
}
