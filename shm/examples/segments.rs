//! A tour of `mproc-shm`: a shared value and array written by a forked child and
//! read back by the parent.

use mproc_shm::{Array, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counter = Value::new(0_u64)?;
    let squares = Array::<u64>::zeroed(10)?;
    // SAFETY: fork in a single-threaded program; the child only touches shared
    // memory and then calls _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        for i in 0..10 {
            squares.set(i, (i * i) as u64).expect("in range");
        }
        counter.set(10);
        // SAFETY: _exit is async-signal-safe and skips the parent's atexit handlers.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    println!("child {pid} wrote {} values: {:?}", counter.get(), squares.to_vec());
    Ok(())
}
