//! The local transport across real processes: Rust clients on the server's machine move
//! their connections to shared-memory pipes (seen in the server's own counters), TCP
//! clients stay on TCP, large frames cross the pipe in chunks, a SIGKILLed client or
//! server ends the other side's calls with the same errors on both transports, and an
//! idle server sleeps without waking yet sees its clients die and its shutdown.

use std::sync::mpsc;
use std::time::Duration;

use mproc_ipc::Bytes;
use mproc_manager::{Address, ClientTransport, Manager, ManagerBuilder, ManagerError};
use mproc_testkit::{eventually, finish, fork_process};

const T: Duration = Duration::from_secs(20);

fn started(transport: ClientTransport) -> Manager {
    ManagerBuilder::new().client_transport(transport).start().unwrap()
}

#[test]
fn a_same_machine_rust_client_is_moved_to_shared_memory() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u32>().unwrap();
    list.append(1).unwrap();
    // The server counts it: every connection it holds (this process's pooled ones,
    // the stats call's own included) is on a pipe.
    let s = manager.stats().unwrap();
    assert!(s.connections >= 1 && s.shared_memory == s.connections, "{s:?}");
    // So are a forked child's, and a second handle's connected by address.
    let (addr, key) = (manager.address().unwrap().clone(), manager.authkey().to_vec());
    let l = list.clone();
    let mut child = fork_process(30, move || {
        let Ok(()) = l.append(2) else { return 2 };
        let Ok(m) = Manager::connect(addr, &key) else { return 3 };
        match m.stats() {
            Ok(s) if s.shared_memory == s.connections && s.connections >= 2 => 0,
            Ok(_) => 4,
            Err(_) => 5,
        }
    });
    assert_eq!(finish(&mut child, T), 0);
    assert_eq!(list.snapshot().unwrap(), [1, 2]);
}

#[test]
fn the_socket_transport_can_be_asked_for_and_serves_the_same() {
    let manager = started(ClientTransport::Socket);
    let list = manager.list::<u32>().unwrap();
    list.append(1).unwrap();
    let s = manager.stats().unwrap();
    assert!(s.connections >= 1 && s.shared_memory == 0, "{s:?}");
    // A second client of the same server, on the local transport, shares the list.
    let other = Manager::connect(manager.address().unwrap().clone(), manager.authkey()).unwrap();
    let s = other.stats().unwrap();
    assert!(s.shared_memory >= 1 && s.shared_memory < s.connections, "{s:?}");
    let proxy: mproc_manager::ListProxy<u32> = other.list_from([7]).unwrap();
    proxy.append(8).unwrap();
    assert_eq!(proxy.snapshot().unwrap(), [7, 8]);
    assert_eq!(list.len().unwrap(), 1);
}

#[test]
fn a_tcp_client_stays_on_tcp_across_processes() {
    let manager = ManagerBuilder::new().address(Address::loopback(0)).start().unwrap();
    let Some(Address::Tcp(_)) = manager.address() else { panic!("a TCP manager: {manager:?}") };
    let queue = manager.queue::<u64>().unwrap();
    let q = queue.clone();
    let mut child = fork_process(30, move || {
        for i in 0..100 {
            if q.put(i).is_err() {
                return 2;
            }
        }
        0
    });
    let got: Vec<u64> = (0..100).map(|_| queue.get_timeout(T).unwrap()).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(finish(&mut child, T), 0);
    let s = manager.stats().unwrap();
    assert!(s.connections >= 1 && s.shared_memory == 0, "{s:?}");
}

#[test]
fn frames_larger_than_a_ring_record_cross_the_pipe_in_chunks() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<Bytes>().unwrap();
    let sizes = [0, 1, 64 << 10, (64 << 10) + 1, 1 << 20, 5 << 20];
    for &n in &sizes {
        list.append(Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>())).unwrap();
    }
    let l = list.clone();
    let mut child = fork_process(30, move || {
        let Ok(items) = l.snapshot() else { return 2 };
        let right = items
            .iter()
            .zip(sizes)
            .all(|(b, n)| b.len() == n && b.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
        if right {
            0
        } else {
            3
        }
    });
    assert_eq!(finish(&mut child, T), 0);
    // One snapshot: between two, the server may see the child's connection close.
    let s = manager.stats().unwrap();
    assert_eq!(s.shared_memory, s.connections, "every open connection is a shared-memory one: {s:?}");
    // Over the cap: refused before sending, and the connection pool still works.
    let huge = Bytes::from(vec![0u8; mproc_manager::MAX_FRAME + 1]);
    assert!(matches!(list.append(huge), Err(ManagerError::FrameTooLarge { .. })));
    assert_eq!(list.len().unwrap(), sizes.len());
}

/// A client SIGKILLed while blocked in a call over `transport`: the server releases
/// its references, connections and the lock it held, and serves on.
fn killed_client(transport: ClientTransport) {
    let manager = started(transport);
    let lock = manager.lock().unwrap();
    let queue = manager.queue::<u64>().unwrap();
    let before = manager.stats().unwrap();
    let (l, q) = (lock.clone(), queue.clone());
    let (addr, key) = (manager.address().unwrap().clone(), manager.authkey().to_vec());
    let child = fork_process(30, move || {
        let Ok(held) = l.try_lock() else { return 1 };
        std::mem::forget(held);
        let Ok(m) = Manager::connect_with(addr, &key, transport) else { return 2 };
        let Ok(mine) = m.list_from([1u8]) else { return 3 };
        let _ = q.get(); // blocks until killed
        drop(mine);
        4
    });
    // The child holds the lock once its own list exists; then it blocks in `get`.
    assert!(
        eventually(T, || manager.stats().is_ok_and(|s| s.objects == before.objects + 1)),
        "the child never got to its get: {:?}",
        manager.stats()
    );
    child.kill().unwrap();
    child.join().unwrap();
    assert_eq!(child.exitcode(), Some(-9));
    assert!(eventually(T, || manager.stats().unwrap() == before), "{:?} vs {before:?}", manager.stats());
    lock.acquire_timeout(T).expect("the dead child's lock was released");
    queue.put(5).unwrap();
    assert_eq!(queue.get_timeout(T).unwrap(), 5);
}

#[test]
fn a_killed_client_is_cleaned_up_on_both_transports() {
    killed_client(ClientTransport::Auto);
    killed_client(ClientTransport::Socket);
}

/// The server SIGKILLed while a thread is blocked in a call over `transport`: the call
/// ends with `Disconnected`, and so does the next one on a pooled connection.
fn killed_server(transport: ClientTransport) -> ManagerError {
    let manager = started(transport);
    let barrier = manager.barrier(2).unwrap();
    let b = barrier.clone();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(b.wait()).unwrap());
    assert!(eventually(T, || barrier.n_waiting().unwrap() == 1), "the waiter never reached the barrier");
    let pid = manager.server_pid().unwrap();
    // SAFETY: kill(2) on the manager's server, this process's child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    let blocked = rx.recv_timeout(T).expect("the blocked call did not end when the server died");
    waiter.join().unwrap();
    let next = barrier.n_waiting();
    assert!(matches!(next, Err(ManagerError::Disconnected { .. })), "{next:?}");
    blocked.expect_err("the barrier cannot have been passed")
}

#[test]
fn a_killed_server_ends_blocked_calls_with_the_same_error_on_both_transports() {
    let local = killed_server(ClientTransport::Auto);
    let socket = killed_server(ClientTransport::Socket);
    assert!(matches!(local, ManagerError::Disconnected { .. }), "{local:?}");
    assert!(matches!(socket, ManagerError::Disconnected { .. }), "{socket:?}");
}

/// Context switches of every thread of process `pid` so far (a thread that wakes, on a
/// timer or otherwise, adds at least one).
fn switches(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Whether no thread of process `pid` is switched in over a 200 ms window (the sleep
/// is the window measured, not a synchronisation).
fn quiet_for_a_while(pid: u32) -> bool {
    let before = switches(pid);
    std::thread::sleep(Duration::from_millis(200));
    switches(pid) == before
}

#[test]
fn an_idle_local_server_sleeps_without_ticking_and_still_sees_a_client_die_and_shutdown() {
    let mut manager = Manager::start().unwrap();
    let pid = manager.server_pid().unwrap();
    let list = manager.list::<u32>().unwrap();
    list.append(1).unwrap();
    let before = manager.stats().unwrap();
    // A second client, in a child, with a reference of its own; it then idles.
    let (addr, key) = (manager.address().unwrap().clone(), manager.authkey().to_vec());
    let child = fork_process(60, move || {
        let Ok(m) = Manager::connect(addr, &key) else { return 2 };
        let Ok(_mine) = m.list_from([1u8]) else { return 3 };
        loop {
            std::thread::park();
        }
    });
    assert!(
        eventually(T, || manager.stats().is_ok_and(|s| s.objects == before.objects + 1)),
        "the child never made its list: {:?}",
        manager.stats()
    );
    // With no calls, the server's threads (connection threads on pipes included, once
    // they have gone to sleep) are not switched in at all over a window; one that
    // woke on a timer tick (every 20 ms) would be, in every window.
    assert!(eventually(T, || quiet_for_a_while(pid)), "the idle server's threads kept waking");
    // Asleep, it still answers at once, and sees the idle child die.
    list.append(2).unwrap();
    assert_eq!(list.len().unwrap(), 2);
    child.kill().unwrap();
    child.join().unwrap();
    assert!(eventually(T, || manager.stats().is_ok_and(|s| s.objects == before.objects)), "{:?}", manager.stats());
    assert!(eventually(T, || manager.stats().is_ok_and(|s| s.clients == before.clients)), "{:?}", manager.stats());
    // Asleep again beside this process's idle connections, it hears a shutdown and
    // exits by itself: `shutdown` kills a server that has not exited after 5 s.
    assert!(eventually(T, || quiet_for_a_while(pid)), "the idle server's threads kept waking");
    let asked = std::time::Instant::now();
    manager.shutdown().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(4), "the server took {:?} to stop", asked.elapsed());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the server was not reaped");
}
