//! Twin of seed 003 "分布式进程" `task_master.py`: a manager server shares a
//! task queue and a result queue over TCP, guarded by the authkey `abc`; the
//! master puts ten tasks and reads ten results, which `task_worker` — on this
//! machine or another — computes.
//!
//! Start the master, then the worker (in another terminal, or on another
//! machine with the master's address):
//!
//! ```text
//! cargo run -p mproc --example task_master -- 127.0.0.1:5000
//! cargo run -p mproc --example task_worker -- 127.0.0.1:5000
//! ```
//!
//! The address defaults to `127.0.0.1:5000`; bind `0.0.0.0:5000` to accept
//! workers from other machines (the tutorial binds every interface). The
//! tutorial registers `get_task_queue` twice by mistake; the twin registers
//! `get_result_queue` as it meant to.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use mproc::{BaseManager, ManagerAddress, QueueProxy, Registry};

/// Ten random numbers below 10 000 (`random.randint(0, 10000)`), from the clock.
fn random_tasks() -> Vec<u64> {
    let mut x = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
    (0..10)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 10_001
        })
        .collect()
}

fn main() -> mproc::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(a) => {
            a.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{a:?}: {e}")))?
        }
        None => "127.0.0.1:5000".parse().expect("a valid address"),
    };
    // The authkey: `abc` as in the tutorial, or the second argument.
    let authkey = std::env::args().nth(2).unwrap_or_else(|| "abc".into());
    // Register both queues on the network; every client gets the same two.
    let mut registry = Registry::new();
    registry.register_shared_queue("get_task_queue", 0);
    registry.register_shared_queue("get_result_queue", 0);
    // Bind the port, set the authkey, start the server process.
    let mut manager =
        BaseManager::new().registry(registry).address(ManagerAddress::Tcp(addr)).authkey(authkey.as_bytes()).start()?;
    println!("Master listening on {addr}");

    // Reach the queues through the manager, never directly.
    let task: QueueProxy<u64> = manager.proxy("get_task_queue")?;
    let result: QueueProxy<String> = manager.proxy("get_result_queue")?;
    for n in random_tasks() {
        println!("Put task {n}...");
        task.put(n)?;
    }
    println!("Try get results...");
    for _ in 0..10 {
        let r = result.get_timeout(Duration::from_secs(10))?;
        println!("Result: {r}");
    }
    // Python shuts the server down at once; a worker whose last `put` is
    // still being answered then sees its connection drop. Give connected
    // workers up to 5 s to finish and hang up first (this master is a client
    // too, hence the 1).
    let deadline = Instant::now() + Duration::from_secs(5);
    while manager.stats()?.clients > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    manager.shutdown()?;
    println!("master exit.");
    Ok(())
}
