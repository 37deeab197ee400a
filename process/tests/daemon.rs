//! Daemon children die with their parent, even when the parent is SIGKILLed;
//! non-daemon children outlive it. Tested on real grandchildren through pidfds.

mod common;

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::{eventually, finish, watchdog, DEADLINE};
use mproc_process::{entry, Entry, Process};
use mproc_shm::{Array, Value};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

fn sleep_forever() {
    watchdog();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn spawned_sleeper(_: ()) {
    sleep_forever();
}
static SPAWNED_SLEEPER: Entry<()> = entry!(spawned_sleeper);

/// True if the process behind `pidfd` ends within `timeout`.
fn ends_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let ts = Timespec { tv_sec: timeout.as_secs() as _, tv_nsec: timeout.subsec_nanos() as _ };
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    poll(&mut fds, Some(&ts)).unwrap() == 1
}

fn pidfd(pid: u32) -> OwnedFd {
    pidfd_open(Pid::from_raw(pid as i32).unwrap(), PidfdFlags::empty()).unwrap()
}

#[test]
fn daemon_children_die_when_parent_is_sigkilled() {
    // [fork daemon, spawn daemon, fork non-daemon] pids, published by the parent.
    let pids = Array::<u32>::zeroed(3).unwrap();
    let ready = Value::<u32>::new(0).unwrap();
    let (p2, r2) = (pids.clone(), ready.clone());
    let mut parent = Process::new(move || {
        watchdog();
        let mut d = Process::builder().name("d-fork").daemon(true).target(sleep_forever).build();
        let mut s = Process::builder().name("d-spawn").daemon(true).spawn_entry(&SPAWNED_SLEEPER, ()).build();
        let mut n = Process::builder().name("non-daemon").target(sleep_forever).build();
        for (i, p) in [&mut d, &mut s, &mut n].into_iter().enumerate() {
            p.start().unwrap();
            p2.set(i, p.pid().unwrap()).unwrap();
        }
        r2.set(1);
        sleep_forever();
    });
    parent.start().unwrap();
    assert!(eventually(|| ready.get() == 1), "the parent did not start its children");
    // Grandchildren are alive and not reaped (their parent sleeps): pidfds are exact.
    let fds: Vec<OwnedFd> = pids.to_vec().into_iter().map(pidfd).collect();
    assert!(!ends_within(&fds[0], Duration::ZERO) && !ends_within(&fds[1], Duration::ZERO));

    parent.kill().unwrap();
    assert_eq!(finish(&mut parent), -9);
    assert!(ends_within(&fds[0], DEADLINE), "the fork daemon outlived its SIGKILLed parent");
    assert!(ends_within(&fds[1], DEADLINE), "the spawn daemon outlived its SIGKILLed parent");
    // The non-daemon child lives on (re-parented); end it ourselves.
    assert!(!ends_within(&fds[2], Duration::from_millis(100)), "a non-daemon child died with its parent");
    pidfd_send_signal(&fds[2], Signal::KILL).unwrap();
    assert!(ends_within(&fds[2], DEADLINE));
}

#[test]
fn daemon_flag_is_reported() {
    let mut d = Process::builder()
        .daemon(true)
        .target(|| mproc_process::exit(if mproc_process::current_process().daemon() { 0 } else { 2 }))
        .build();
    assert!(d.daemon());
    d.start().unwrap();
    assert_eq!(finish(&mut d), 0);
}

/// `PR_SET_PDEATHSIG` follows the forking *thread*; mproc forks daemons from a
/// long-lived thread, so a daemon started by a thread that then ends lives on.
#[test]
fn daemon_outlives_the_thread_that_started_it() {
    for spawn in [false, true] {
        let mut p = std::thread::spawn(move || {
            let b = Process::builder().daemon(true);
            let mut p =
                if spawn { b.spawn_entry(&SPAWNED_SLEEPER, ()).build() } else { b.target(sleep_forever).build() };
            p.start().unwrap();
            p
        })
        .join()
        .unwrap();
        assert!(
            matches!(p.join_timeout(Duration::from_millis(300)), Err(mproc_process::ProcessError::Timeout { .. })),
            "daemon (spawn {spawn}) died with its thread"
        );
        p.kill().unwrap();
        assert_eq!(finish(&mut p), -9);
    }
}
