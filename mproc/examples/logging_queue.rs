//! Twin of seed 000 §2.3 示例代码1 "在多进程环境下应用logging" (logging through a
//! queue): 200 worker processes — half succeed, half divide by zero — put a
//! record on a [`Queue`](mproc::Queue) instead of logging themselves; one
//! daemon process, `multiprocess-log`, takes the records and writes each to the
//! console and to `myapp.log`.
//!
//! The workers' 2 s naps are 20 ms; `join(1)` on the logger, which never ends,
//! is a 50 ms `join_timeout`. The log file is made in the temporary directory
//! and removed at the end. The parent waits until the logger has written all
//! 200 records before it ends (and the daemon with it).
//! Run: `cargo run -p mproc --example logging_queue`.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use mproc::prelude::*;
use mproc::serde::{Deserialize, Serialize};

/// The tutorial's `{"type": ..., "message": ...}`.
#[derive(Serialize, Deserialize)]
#[serde(crate = "mproc::serde")]
struct Record {
    kind: String,
    message: String,
}

fn f1(log_q: &Queue<Record>) -> &'static str {
    std::thread::sleep(Duration::from_millis(20));
    match 1_i32.checked_div(2) {
        Some(_) => {
            let _ = log_q.put(Record { kind: "success".into(), message: "ok".into() });
            "hello"
        }
        None => {
            let _ = log_q.put(Record { kind: "error".into(), message: "found error!".into() });
            "error"
        }
    }
}

fn f2(log_q: &Queue<Record>) -> &'static str {
    std::thread::sleep(Duration::from_millis(20));
    match 1_i32.checked_div(0) {
        Some(_) => {
            let _ = log_q.put(Record { kind: "success".into(), message: "ok".into() });
            "hello"
        }
        None => {
            let _ = log_q.put(Record { kind: "error".into(), message: "division by zero".into() });
            "error"
        }
    }
}

/// The logger: console and file, `%(asctime)s %(filename)s[line:%(lineno)d]
/// %(process)d %(processName)s %(levelname)s %(message)s`.
fn f3(log_q: &Queue<Record>, file: &PathBuf, written: &RawValue<u32>) {
    let mut f = File::create(file).expect("create the log file"); // filemode='w'
    loop {
        let Ok(s) = log_q.get() else { continue };
        let level = if s.kind == "success" { "INFO" } else { "ERROR" };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let line = format!(
            "{now:.3} {}[line:{}] {} {} {level} {}",
            file!(),
            line!(),
            std::process::id(),
            current_process().name(),
            s.message
        );
        println!("{line}");
        let _ = writeln!(f, "{line}");
        written.set(written.get() + 1); // only this process writes it
    }
}

fn main() -> mproc::Result<()> {
    let beg = Instant::now();
    let log_q = Queue::<Record>::new()?;
    let file = std::env::temp_dir().join(format!("mproc-example-myapp-{}.log", std::process::id()));
    let written = RawValue::new(0_u32)?;

    let mut task = Vec::new();
    for _ in 0..100 {
        let q = log_q.clone();
        task.push(Process::new(move || f1(&q)));
        let q = log_q.clone();
        task.push(Process::new(move || f2(&q)));
    }
    let m3 = Process::builder()
        .name("multiprocess-log")
        .daemon(true)
        .target({
            let (q, file, written) = (log_q.clone(), file.clone(), written.clone());
            move || f3(&q, &file, &written)
        })
        .build();
    task.insert(0, m3);
    println!("{} processes, the first {:?}", task.len(), task[0]);

    for j in &mut task {
        j.start()?;
    }
    for j in &mut task {
        // Python's `j.join(0.05)`: a child still running after 50 ms is fine.
        match j.join_timeout(Duration::from_millis(50)) {
            Ok(()) | Err(mproc::ProcessError::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while written.get() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let logged = std::fs::read_to_string(&file)?;
    std::fs::remove_file(&file)?;
    println!("{} has {} lines", file.display(), logged.lines().count());
    println!("{:.3}", beg.elapsed().as_secs_f64());
    Ok(())
}
