//! Twin of seed 000 §1 (示例代码1) "fork() returns twice", and of seed 003 "多进程"
//! (`os.fork()`): the parent learns the child's pid, the child asks for its
//! parent's.
//!
//! `os.fork()` is `libc::fork()`; mproc's [`Process`](mproc::Process) wraps it
//! (see the other examples). Run: `cargo run -p mproc --example fork_pids`.

fn main() {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    println!("My process is {me}");
    // SAFETY: this program has a single thread here, so the child may run any
    // code; it leaves with `_exit` below and never returns into `main`.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => {
            eprintln!("fork failed: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
        0 => {
            // SAFETY: getpid and getppid have no preconditions.
            let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
            println!("pid is {pid} My father is {ppid}");
            // SAFETY: ends the child at once; the line above is already written
            // (stdout is line-buffered).
            unsafe { libc::_exit(0) };
        }
        child => {
            println!("I have a son process, pid is {child}");
            let mut status = 0;
            // SAFETY: waits for our own child with a valid status pointer, so
            // no zombie is left behind (Python leaves that to the OS).
            unsafe { libc::waitpid(child, &mut status, 0) };
        }
    }
}
