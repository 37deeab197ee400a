//! The presence word of a pipe end, seen from the peer's process: an end that
//! waits publishes the CPU it waits on (read afresh, so an end the scheduler
//! moved is seen where it now runs) and that it sleeps once it stops
//! spinning — blocking waits, async receives parked in the reactor, and async
//! sends waiting for room alike.
//!
//! The end under test runs on the test's own thread, pinned in turn to each
//! CPU the test may use; a forked child watches its presence word and sends
//! only once the word says what it must.

use std::time::{Duration, Instant};

use mproc_ipc::__testing::{pipe_peer_asleep, pipe_peer_cpu};
use mproc_ipc::{pipe, Connection};
use mproc_testkit::{fork, reap};

mod common;

use common::close_fd;

const LIMIT: Duration = Duration::from_secs(20);

/// The CPUs this thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
    // SAFETY: CPU_ISSET reads the set for indices below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Restricts this thread to `cpus`; once this returns, the thread runs on one of them.
fn pin(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: c < CPU_SETSIZE (it came from `allowed_cpus`).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity({cpus:?}): {}", std::io::Error::last_os_error());
}

/// Gives this thread back the CPUs it had, even when the test fails.
struct Unpin(Vec<usize>);

impl Drop for Unpin {
    fn drop(&mut self) {
        pin(&self.0);
    }
}

/// Runs `receive` on this thread `2 × CPUs` times, pinned before each to the
/// next CPU in turn, while a forked child waits to see this end asleep on
/// that CPU before it sends the message `receive` waits for. The child
/// fails (and the receive then sees end of file) if the word never says so.
fn asleep_on_each_cpu(receive: impl FnMut(&mut Connection, usize) -> Vec<u8>) {
    let cpus = allowed_cpus();
    let _unpin = Unpin(cpus.clone());
    let rounds = 2 * cpus.len();
    let (mut here, there) = pipe(true).unwrap();
    let here_fd = std::os::fd::AsRawFd::as_raw_fd(&here);
    let watched = cpus.clone();
    let child = fork(30, move || {
        close_fd(here_fd);
        let mut there = there;
        for round in 0..rounds {
            let want = watched[round % watched.len()] as u32;
            let t = Instant::now();
            while !(pipe_peer_asleep(&there) == Some(true) && pipe_peer_cpu(&there) == Some(Some(want))) {
                if t.elapsed() > LIMIT {
                    eprintln!(
                        "round {round}: the parent never said it sleeps on CPU {want} (asleep {:?}, CPU {:?})",
                        pipe_peer_asleep(&there),
                        pipe_peer_cpu(&there)
                    );
                    return 1;
                }
                std::thread::yield_now();
            }
            there.send_bytes(&[round as u8]).unwrap();
        }
        0
    });
    let mut receive = receive;
    for round in 0..rounds {
        pin(&[cpus[round % cpus.len()]]);
        assert_eq!(receive(&mut here, round), [round as u8], "round {round}");
    }
    drop(here);
    assert_eq!(reap(child, LIMIT), 0);
}

/// A blocking receive publishes the CPU it waits on at every wait: after a
/// move to another CPU the peer sees the new one, not a cached old one.
#[test]
fn a_blocking_reader_moved_to_another_cpu_is_seen_asleep_there() {
    asleep_on_each_cpu(|here, round| {
        assert!(here.poll(Some(LIMIT)).unwrap(), "round {round}: the watcher gave up");
        here.recv_bytes().unwrap()
    });
}

#[cfg(feature = "tokio")]
#[path = "../../testkit/src/runtime.rs"]
mod runtime;

/// An async receive spins as this end on its CPU, then parks in the reactor
/// marked asleep; moved to another CPU, it is seen there.
#[cfg(feature = "tokio")]
#[test]
fn an_async_reader_parked_in_the_reactor_is_seen_asleep_on_its_cpu() {
    let rt = runtime::current();
    asleep_on_each_cpu(|here, round| {
        rt.block_on(runtime::within(here.recv_bytes_async()))
            .unwrap_or_else(|e| panic!("round {round}: the watcher gave up: {e}"))
    });
}

/// An async send that waits for room in a full ring is parked in the reactor,
/// and its peer sees it asleep (so a reader there does not spin for it).
#[cfg(feature = "tokio")]
#[test]
fn an_async_writer_waiting_for_room_is_seen_asleep() {
    const LEN: usize = 100_000;
    let (mut here, there) = mproc_ipc::pipe_with_capacity(true, 4096).unwrap();
    let here_fd = std::os::fd::AsRawFd::as_raw_fd(&here);
    let child = fork(30, move || {
        close_fd(here_fd);
        let mut there = there;
        let t = Instant::now();
        while pipe_peer_asleep(&there) != Some(true) {
            if t.elapsed() > LIMIT {
                eprintln!("the writer never said it sleeps");
                return 1;
            }
            std::thread::yield_now();
        }
        if !there.poll(Some(LIMIT)).unwrap() {
            return 2;
        }
        let got = there.recv_bytes().unwrap();
        i32::from(got.len() != LEN || got.iter().enumerate().any(|(i, &b)| b != i as u8)) * 3
    });
    let msg: Vec<u8> = (0..LEN).map(|i| i as u8).collect();
    runtime::current().block_on(runtime::within(here.send_bytes_async(&msg))).unwrap();
    assert_eq!(reap(child, LIMIT), 0);
}
