//! The fork start method across real processes: the tutorials' Process examples,
//! the exit-code table, naming, daemon flag, errors, and reaping.

mod common;

use std::time::Duration;

use common::{eventually, finish, now_ns, proc_exists, watchdog};
use mproc_process::{active_children, cpu_count, current_process, parent_process, Process, ProcessError, Run};
use mproc_shm::{Array, Value};

#[test]
fn smoke() {
    let mut p = Process::new(watchdog);
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert_eq!(p.pid(), None);
    p.start().unwrap();
    assert!(p.pid().is_some());
    assert_eq!(finish(&mut p), 0);
    assert!(!p.is_alive());
}

/// The tutorial's `func_one`/`func_two`: two functions that each sleep, run in two
/// processes, overlap in time (checked by the start and end times they record).
#[test]
fn two_processes_run_concurrently() {
    let times = Array::<u64>::zeroed(4).unwrap();
    let make = |slot: usize| {
        let times = times.clone();
        Process::new(move || {
            watchdog();
            times.set(2 * slot, now_ns()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            times.set(2 * slot + 1, now_ns()).unwrap();
        })
    };
    let (mut one, mut two) = (make(0), make(1));
    one.start().unwrap();
    two.start().unwrap();
    assert_eq!(finish(&mut one), 0);
    assert_eq!(finish(&mut two), 0);
    let t = times.to_vec();
    assert!(t.iter().all(|&x| x > 0), "both recorded their times: {t:?}");
    assert!(t[0] < t[3] && t[2] < t[1], "the two runs overlap: {t:?}");
}

/// The tutorial's `run_proc('test')`: a target with arguments, run and joined.
#[test]
fn target_with_arguments() {
    let out = Value::<u64>::new(0).unwrap();
    let o = out.clone();
    let name = String::from("test");
    let mut p = Process::new(move || {
        watchdog();
        o.set(name.len() as u64);
    });
    p.start().unwrap();
    assert_eq!(finish(&mut p), 0);
    assert_eq!(out.get(), 4);
}

struct Counter {
    out: Value<u64>,
    n: u64,
}

impl Run for Counter {
    fn run(&mut self) {
        watchdog();
        for _ in 0..self.n {
            self.out.set(self.out.get() + 1);
        }
    }
}

/// A custom process type, the Rust form of subclassing `Process` with `run`.
#[test]
fn custom_process_type() {
    let out = Value::<u64>::new(0).unwrap();
    let mut p = Process::from_run(Counter { out: out.clone(), n: 5 });
    p.start().unwrap();
    assert_eq!(finish(&mut p), 0);
    assert_eq!(out.get(), 5);
}

fn exitcode_of(p: &mut Process) -> i32 {
    p.start().unwrap();
    finish(p)
}

#[test]
fn exitcode_exit_1() {
    assert_eq!(exitcode_of(&mut Process::new(|| mproc_process::exit(1))), 1);
}

/// `std::process::exit` works too (its clean-up lock makes `mproc_process::exit`
/// the safer choice under a threaded parent; the watchdog bounds the test).
#[test]
fn exitcode_std_exit() {
    let mut p = Process::new(|| {
        watchdog();
        std::process::exit(9)
    });
    assert_eq!(exitcode_of(&mut p), 9);
}

#[test]
fn exitcode_normal_return() {
    assert_eq!(exitcode_of(&mut Process::new(watchdog)), 0);
}

#[test]
fn exitcode_returned_value() {
    assert_eq!(exitcode_of(&mut Process::new(|| 42u32)), 0);
}

#[test]
fn exitcode_panic_is_1_with_message_on_stderr() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let mut p = Process::builder()
        .name("panicker")
        .target(move || {
            watchdog();
            // SAFETY: dup2 onto fd 2 of this child only.
            unsafe { libc::dup2(wfd, 2) };
            panic!("boom in the child");
        })
        .build();
    assert_eq!(exitcode_of(&mut p), 1);
    drop(w);
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.contains("boom in the child"), "stderr was {text:?}");
    assert!(text.contains("panicker"), "stderr names the process: {text:?}");
}

fn sleeper() -> Process {
    Process::new(|| {
        watchdog();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

#[test]
fn exitcode_terminated_is_minus_15() {
    let mut p = sleeper();
    p.start().unwrap();
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.terminate().unwrap();
    assert_eq!(finish(&mut p), -15);
    assert!(!p.is_alive());
}

#[test]
fn exitcode_killed_is_minus_9() {
    let mut p = sleeper();
    p.start().unwrap();
    p.kill().unwrap();
    assert_eq!(finish(&mut p), -9);
    // Signalling a reaped child is a no-op, never a signal to a reused pid.
    p.terminate().unwrap();
    p.kill().unwrap();
}

#[test]
fn join_timeout_times_out_while_running() {
    let mut p = sleeper();
    p.start().unwrap();
    match p.join_timeout(Duration::from_millis(20)) {
        Err(ProcessError::Timeout { name, pid, after }) => {
            assert_eq!((name.as_str(), Some(pid), after), (p.name(), p.pid(), Duration::from_millis(20)));
        }
        other => panic!("expected ProcessError::Timeout, got {other:?}"),
    }
    assert!(p.is_alive());
    p.kill().unwrap();
    p.join_timeout(common::DEADLINE).unwrap();
    assert_eq!(p.exitcode(), Some(-9));
}

/// A timeout too long for an `Instant` is no limit, not a panic.
#[test]
fn join_timeout_of_duration_max_waits_without_a_limit() {
    let mut p = sleeper();
    p.start().unwrap();
    p.kill().unwrap();
    p.join_timeout(Duration::MAX).unwrap();
    assert_eq!(p.exitcode(), Some(-9));
}

#[test]
fn typed_errors() {
    let mut p = Process::new(watchdog);
    assert!(matches!(p.join(), Err(ProcessError::NotStarted { .. })));
    assert!(matches!(p.terminate(), Err(ProcessError::NotStarted { .. })));
    p.start().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted { .. })));
    finish(&mut p);
    p.close().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::Closed { .. })));
    assert!(matches!(p.join(), Err(ProcessError::Closed { .. })));

    let mut running = sleeper();
    running.start().unwrap();
    assert!(matches!(running.close(), Err(ProcessError::StillRunning { .. })));
    running.kill().unwrap();
    finish(&mut running);
    running.close().unwrap();

    let mut empty = Process::builder().build();
    assert!(matches!(empty.start(), Err(ProcessError::NoTarget { .. })));
}

#[test]
fn names_and_identity() {
    let p = Process::new(|| {});
    let n: usize = p.name().strip_prefix("Process-").expect("default name Process-N").parse().unwrap();
    assert!(n >= 1);
    assert!(!p.daemon());
    assert_eq!(current_process().pid(), std::process::id());
    // Checked by the child: its own name and pid, and the parent's pid.
    let parent_pid = std::process::id();
    let mut p = Process::builder()
        .name("worker-7")
        .daemon(true)
        .target(move || {
            watchdog();
            let me = current_process();
            let parent = parent_process().expect("a child has a parent");
            let ok = me.name() == "worker-7"
                && me.daemon()
                && me.pid() == std::process::id()
                && parent.pid() == parent_pid
                && parent_process().is_some();
            mproc_process::exit(if ok { 0 } else { 2 });
        })
        .build();
    assert_eq!(p.name(), "worker-7");
    assert!(p.daemon());
    assert_eq!(exitcode_of(&mut p), 0);
}

#[test]
fn active_children_lists_and_reaps() {
    let mut p = sleeper();
    p.start().unwrap();
    let pid = p.pid().unwrap();
    assert!(active_children().iter().any(|c| c.pid() == pid && c.name() == p.name()));
    p.kill().unwrap();
    // active_children reaps the ended child: it leaves the list and the handle
    // then knows its exit code without waiting.
    assert!(eventually(|| active_children().iter().all(|c| c.pid() != pid)));
    assert!(!proc_exists(pid) || common::proc_state(pid) != Some('Z'));
    assert_eq!(p.exitcode(), Some(-9));
}

#[test]
fn drop_of_running_handle_leaves_no_zombie() {
    let stop = Value::<u32>::new(0).unwrap();
    let s = stop.clone();
    let mut p = Process::new(move || {
        watchdog();
        while s.get() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    p.start().unwrap();
    let pid = p.pid().unwrap();
    drop(p); // must not block
    assert!(proc_exists(pid));
    stop.set(1);
    // The reaper thread collects it: the /proc entry (zombie included) goes away.
    assert!(eventually(|| !proc_exists(pid)), "pid {pid} left as {:?}", common::proc_state(pid));
}

#[test]
fn cpu_count_is_positive_and_bounded() {
    let n = cpu_count();
    assert!(n >= 1);
    assert!(n <= std::thread::available_parallelism().map_or(usize::MAX, |x| x.get().max(n)));
}

#[test]
fn sentinel_polls_readable_at_exit() {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut p = sleeper();
    assert!(matches!(p.sentinel(), Err(ProcessError::NotStarted { .. })));
    p.start().unwrap();
    let ready = |p: &Process, ms: i64| {
        let ts = Timespec { tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000 };
        let fd = p.sentinel().unwrap();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        poll(&mut fds, Some(&ts)).unwrap() == 1
    };
    assert!(!ready(&p, 0));
    p.kill().unwrap();
    assert!(ready(&p, common::DEADLINE.as_millis() as i64));
    assert_eq!(finish(&mut p), -9);
}

#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    send::<Process>();
    send::<ProcessError>();
    send::<mproc_process::ProcessInfo>();
}

/// `is_alive`, `exitcode`, `join`, `join_timeout`, `terminate` and `kill` take
/// `&self`: a filter over borrowed handles compiles and sees real children.
#[test]
fn status_queries_work_through_shared_references() {
    use std::io::Read;
    let (held, mut release) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut procs: Vec<Process> = (0..3)
        .map(|i| {
            let held = held.try_clone().unwrap();
            Process::new(move || {
                watchdog();
                if i == 2 {
                    held.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let _ = (&held).read(&mut [0u8; 1]);
                }
                mproc_process::exit(10 + i);
            })
        })
        .collect();
    for p in &mut procs {
        p.start().unwrap();
    }
    let by_ref: &[Process] = &procs;
    for p in &by_ref[..2] {
        p.join_timeout(common::DEADLINE).unwrap();
    }
    assert_eq!(by_ref.iter().filter(|p| p.is_alive()).count(), 1);
    let codes: Vec<Option<i32>> = by_ref.iter().map(|p| p.exitcode()).collect();
    assert_eq!(codes, [Some(10), Some(11), None]);
    std::io::Write::write_all(&mut release, b"x").unwrap();
    by_ref[2].join().unwrap();
    assert_eq!(by_ref[2].exitcode(), Some(12));
    assert!(!by_ref.iter().any(|p| p.is_alive()));
    drop(held);
}

#[test]
fn signals_through_a_shared_reference() {
    let mut p = Process::new(|| {
        watchdog();
        std::thread::sleep(Duration::from_secs(30));
    });
    p.start().unwrap();
    let shared: &Process = &p;
    shared.terminate().unwrap();
    shared.join_timeout(common::DEADLINE).unwrap();
    assert_eq!(shared.exitcode(), Some(-15));
}
