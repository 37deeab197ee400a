//! Twin of seed 004 "Lock": two processes append to one file, one taking the
//! lock as a guard (`with lock:`), the other with `acquire()`/`release()`.
//! Each writes its nine lines as one block, never interleaved with the other's.
//!
//! The file is made in the temporary directory and removed at the end; the
//! twin prints it after joining both writers (the tutorial only prints "end").
//! Run: `cargo run -p mproc --example lock_file`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use mproc::prelude::*;

fn append_lines(path: &Path, line: &str) {
    let mut fs = OpenOptions::new().create(true).append(true).open(path).expect("open the shared file");
    let mut n = 10;
    while n > 1 {
        // One write per line, so the other process could slip in between
        // lines if it did not wait for the lock.
        fs.write_all(format!("{line}\n").as_bytes()).expect("write");
        std::thread::yield_now();
        n -= 1;
    }
}

fn worker_with(lock: Lock, f: PathBuf) {
    let _held = lock.lock().expect("lock");
    append_lines(&f, "Lock acquired via with");
}

fn worker_no_with(lock: Lock, f: PathBuf) {
    lock.acquire().expect("acquire");
    append_lines(&f, "Lock acquired directly");
    lock.release().expect("release");
}

fn main() -> mproc::Result<()> {
    let lock = Lock::new()?;
    let f = std::env::temp_dir().join(format!("mproc-example-lock-file-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&f);
    let mut w = Process::new({
        let (lock, f) = (lock.clone(), f.clone());
        move || worker_with(lock, f)
    });
    let mut nw = Process::new({
        let (lock, f) = (lock.clone(), f.clone());
        move || worker_no_with(lock, f)
    });
    w.start()?;
    nw.start()?;
    println!("end");
    w.join()?;
    nw.join()?;
    let text = std::fs::read_to_string(&f)?;
    std::fs::remove_file(&f)?;
    println!("{}:", f.display());
    print!("{text}");
    Ok(())
}
