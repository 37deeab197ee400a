//! Twin of seed 000 §2.3 示例代码2 "在多进程环境下应用logging" (a log file
//! shared by many processes): 200 processes, half succeeding and half dividing
//! by zero, each log one line to the same file. The tutorial uses a
//! third-party `ConcurrentRotatingFileHandler`, which serialises writers with a
//! file lock; here an mproc [`Lock`](mproc::Lock) does that, and the file is
//! opened in append mode.
//!
//! The 2 s naps are 20 ms, and the file lives in the temporary directory and
//! is removed at the end after a summary is printed.
//! Run: `cargo run -p mproc --example logging_file`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use mproc::prelude::*;

fn log(lock: &Lock, file: &Path, level: &str, message: &str) {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let line = format!("{now:.3} {} {} {level} {message}\n", std::process::id(), current_process().name());
    let _held = lock.lock().expect("log lock");
    let mut f = OpenOptions::new().create(true).append(true).open(file).expect("open log");
    f.write_all(line.as_bytes()).expect("write log");
}

fn divide(lock: &Lock, file: &Path, by: i32) -> &'static str {
    std::thread::sleep(Duration::from_millis(20));
    match 1_i32.checked_div(by) {
        Some(_) => {
            log(lock, file, "INFO", "hello");
            "hello"
        }
        None => {
            log(lock, file, "ERROR", "division by zero");
            "error"
        }
    }
}

fn main() -> mproc::Result<()> {
    let beg = Instant::now();
    let lock = Lock::new()?;
    let file: PathBuf = std::env::temp_dir().join(format!("mproc-example-mylogfile-{}.log", std::process::id()));
    let mut task = Vec::new();
    for _ in 0..100 {
        for by in [2, 0] {
            let (lock, file) = (lock.clone(), file.clone());
            task.push(Process::new(move || divide(&lock, &file, by)));
        }
    }
    for j in &mut task {
        j.start()?;
    }
    println!("{} processes started", task.len());
    for j in &mut task {
        j.join()?;
    }
    let text = std::fs::read_to_string(&file)?;
    std::fs::remove_file(&file)?;
    let info = text.lines().filter(|l| l.ends_with(" INFO hello")).count();
    let error = text.lines().filter(|l| l.ends_with(" ERROR division by zero")).count();
    println!("log lines: {} (INFO hello: {info}, ERROR division by zero: {error})", text.lines().count());
    println!("{:.3}", beg.elapsed().as_secs_f64());
    Ok(())
}
