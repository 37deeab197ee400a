//! Twin of seed 003 "分布式进程" `task_worker.py`: connects to the
//! `task_master` manager over TCP with authkey `abc`, takes tasks from its task
//! queue, squares them and puts the results in its result queue.
//!
//! `cargo run -p mproc --example task_worker -- 127.0.0.1:5000` (the master's
//! address; default `127.0.0.1:5000`). The worker retries the connection for a
//! few seconds, so it may start before the master. Each task's nap is 10 ms
//! instead of 1 s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mproc::{Manager, ManagerAddress, ManagerError, QueueProxy};

fn main() -> mproc::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(a) => {
            a.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{a:?}: {e}")))?
        }
        None => "127.0.0.1:5000".parse().expect("a valid address"),
    };
    // The authkey: `abc` as in the tutorial, or the second argument.
    let authkey = std::env::args().nth(2).unwrap_or_else(|| "abc".into());
    println!("Connect to server {addr}...");
    // The port and the authkey must match task_master's.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        match Manager::connect(ManagerAddress::Tcp(addr), authkey.as_bytes()) {
            Ok(m) => break m,
            Err(ManagerError::Disconnected { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50)); // the master is not up yet
            }
            Err(e) => return Err(e.into()),
        }
    };
    let task: QueueProxy<u64> = m.proxy("get_task_queue")?;
    let result: QueueProxy<String> = m.proxy("get_result_queue")?;
    for _ in 0..10 {
        match task.get_timeout(Duration::from_secs(1)) {
            Ok(n) => {
                println!("run task {n} * {n}...");
                let r = format!("{n} * {n} = {}", n * n);
                std::thread::sleep(Duration::from_millis(10));
                result.put(r)?;
            }
            Err(ManagerError::Timeout { .. }) => println!("task queue is empty"),
            Err(e) => return Err(e.into()),
        }
    }
    println!("worker exit");
    Ok(())
}
