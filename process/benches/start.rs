//! Process start + join: mproc's fork and spawn beside the C-level limits
//! (`fork` + `waitpid`, `posix_spawn` of /bin/true + `waitpid`). One iteration is
//! one start + join.

use std::ffi::CString;

use criterion::Criterion;
use mproc_process::{entry, Entry, Process};

fn nothing(_: ()) {}
static NOTHING: Entry<()> = entry!(nothing);

fn raw_fork_waitpid() {
    // SAFETY: the child only calls _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(0) };
    }
    assert!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: waits for our own child, writing into a valid int.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
}

fn raw_posix_spawn(path: &CString) {
    let argv = [path.as_ptr() as *mut libc::c_char, std::ptr::null_mut()];
    let envp = [std::ptr::null_mut::<libc::c_char>()];
    let mut pid = 0;
    // SAFETY: path, argv and envp are valid NUL-terminated C arrays for the call.
    let r = unsafe {
        libc::posix_spawn(&mut pid, path.as_ptr(), std::ptr::null(), std::ptr::null(), argv.as_ptr(), envp.as_ptr())
    };
    assert_eq!(r, 0, "posix_spawn failed");
    let mut status = 0;
    // SAFETY: waits for our own child, writing into a valid int.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
}

fn proc_fork(c: &mut Criterion) {
    let mut g = c.benchmark_group("proc_fork");
    g.bench_function("mproc", |b| {
        b.iter(|| {
            let mut p = Process::new(|| {});
            p.start().unwrap();
            p.join().unwrap();
        })
    });
    g.bench_function("limit-fork-waitpid", |b| b.iter(raw_fork_waitpid));
    g.finish();
}

fn proc_spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("proc_spawn");
    g.sample_size(20);
    g.bench_function("mproc", |b| {
        b.iter(|| {
            let mut p = Process::builder().spawn_entry(&NOTHING, ()).build();
            p.start().unwrap();
            p.join().unwrap();
        })
    });
    let truth = CString::new("/bin/true").unwrap();
    g.bench_function("limit-posix-spawn", |b| b.iter(|| raw_posix_spawn(&truth)));
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    proc_fork(&mut c);
    proc_spawn(&mut c);
    c.final_summary();
}
