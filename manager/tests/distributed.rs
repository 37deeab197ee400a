//! The seed's distributed example (`task_master.py` / `task_worker.py`): the master
//! serves a task queue and a result queue on TCP with authkey `abc`; the worker connects,
//! squares ten numbers and sends the results back; the master reads them.
//!
//! When this test may create network namespaces (root, `ip` present), master and worker
//! run in two private namespaces joined by a veth pair (10.213.7.1 ↔ 10.213.7.2), so the
//! worker really reaches the master over a network link; otherwise both run on loopback,
//! and the test prints that it did. Alone in its own test binary because it forks
//! processes that start threads.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use mproc_manager::{Address, Manager, ManagerBuilder, ManagerError, QueueProxy, Registry};
use mproc_testkit::{finish, fork_process};

/// Two network namespaces joined by a veth pair; deleted on drop.
struct Netns {
    master: String,
    worker: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip").args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

impl Netns {
    const MASTER_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 7, 1);

    fn create() -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let tag = std::process::id() % 1_000_000;
        let ns = Netns { master: format!("mproc-test-m{tag}"), worker: format!("mproc-test-w{tag}") };
        let (vm, vw) = (format!("vm{tag}"), format!("vw{tag}"));
        let (m, w) = (ns.master.as_str(), ns.worker.as_str());
        let steps: [&[&str]; 10] = [
            &["netns", "add", m],
            &["netns", "add", w],
            &["link", "add", &vm, "type", "veth", "peer", "name", &vw],
            &["link", "set", &vm, "netns", m],
            &["link", "set", &vw, "netns", w],
            &["-n", m, "addr", "add", "10.213.7.1/24", "dev", &vm],
            &["-n", w, "addr", "add", "10.213.7.2/24", "dev", &vw],
            &["-n", m, "link", "set", &vm, "up"],
            &["-n", w, "link", "set", &vw, "up"],
            &["-n", m, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if !ip(step) {
                eprintln!("netns setup failed at `ip {}`", step.join(" "));
                return None; // drop deletes what was made
            }
        }
        Some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and so the pair.
        ip(&["netns", "del", &self.master]);
        ip(&["netns", "del", &self.worker]);
    }
}

/// Moves this (child) process into network namespace `name`.
fn enter_netns(name: &str) -> bool {
    let Ok(f) = std::fs::File::open(format!("/run/netns/{name}")) else { return false };
    use std::os::fd::AsRawFd;
    // SAFETY: setns takes an fd we own and a namespace type; it touches no memory.
    unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) == 0 }
}

const TASKS: [u64; 10] = [3141, 5926, 5358, 9793, 2384, 6264, 3383, 2795, 288, 4197];

/// `task_master`: serve the two queues, put ten tasks, read ten results.
fn task_master(addr: SocketAddr) -> i32 {
    let mut reg = Registry::new();
    reg.register_shared_queue("get_task_queue", 0);
    reg.register_shared_queue("get_result_queue", 0);
    let Ok(mut manager) = ManagerBuilder::new().registry(reg).address(Address::Tcp(addr)).authkey(b"abc").start()
    else {
        return 10;
    };
    let run = || -> Result<Vec<String>, ManagerError> {
        let task: QueueProxy<u64> = manager.proxy("get_task_queue")?;
        let result: QueueProxy<String> = manager.proxy("get_result_queue")?;
        for n in TASKS {
            task.put(n)?;
        }
        (0..TASKS.len()).map(|_| result.get_timeout(Duration::from_secs(15))).collect()
    };
    let got = run();
    let _ = manager.shutdown();
    let Ok(mut got) = got else { return 11 };
    let mut want: Vec<String> = TASKS.iter().map(|n| format!("{n} * {n} = {}", n * n)).collect();
    got.sort();
    want.sort();
    if got == want {
        0
    } else {
        12
    }
}

/// `task_worker`: connect (retrying until the master is up), square ten numbers.
fn task_worker(addr: SocketAddr) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(15);
    let manager = loop {
        match Manager::connect(Address::Tcp(addr), b"abc") {
            Ok(m) => break m,
            Err(ManagerError::Disconnected { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20)); // the master is still starting
            }
            Err(_) => return 20,
        }
    };
    let work = || -> Result<(), ManagerError> {
        let task: QueueProxy<u64> = manager.proxy("get_task_queue")?;
        let result: QueueProxy<String> = manager.proxy("get_result_queue")?;
        for _ in 0..10 {
            let n = task.get_timeout(Duration::from_secs(15))?;
            result.put(format!("{n} * {n} = {}", n * n))?;
        }
        Ok(())
    };
    match work() {
        Ok(()) => 0,
        Err(_) => 21,
    }
}

#[test]
fn seed_task_master_and_task_worker() {
    let netns = Netns::create();
    let (addr, namespaces) = match &netns {
        Some(ns) => {
            println!("distributed example: master in netns {}, worker in netns {}, over veth", ns.master, ns.worker);
            (SocketAddr::from((Netns::MASTER_IP, 5000)), Some((ns.master.clone(), ns.worker.clone())))
        }
        None => {
            // A free loopback port (released just before the master binds it).
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            println!("distributed example: cannot create network namespaces; running on loopback 127.0.0.1:{port}");
            (SocketAddr::from((Ipv4Addr::LOCALHOST, port)), None)
        }
    };
    let (ns_m, ns_w) = namespaces.clone().unzip();
    let mut master = fork_process(30, move || {
        if let Some(ns) = ns_m {
            if !enter_netns(&ns) {
                return 30;
            }
        }
        task_master(addr)
    });
    let mut worker = fork_process(30, move || {
        if let Some(ns) = ns_w {
            if !enter_netns(&ns) {
                return 31;
            }
        }
        task_worker(addr)
    });
    let w = finish(&mut worker, Duration::from_secs(40));
    let m = finish(&mut master, Duration::from_secs(40));
    drop(netns);
    assert_eq!((m, w), (0, 0), "master and worker exit codes");
}
