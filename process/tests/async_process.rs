//! `Process::join_async` and `wait_any_async` (feature `tokio`) on
//! current-thread and multi-thread runtimes; every await has a timeout.

use std::time::{Duration, Instant};

use mproc_process::{wait_any_async, Process, ProcessError};

const LIMIT: Duration = Duration::from_secs(20);

fn runtimes() -> Vec<tokio::runtime::Runtime> {
    vec![
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
    ]
}

#[test]
fn join_async_reaps_and_reports_the_exit_code() {
    for rt in runtimes() {
        rt.block_on(async {
            let mut ps: Vec<Process> = (0..20).map(|i| Process::new(move || mproc_process::exit(i))).collect();
            for p in &mut ps {
                p.start().unwrap();
            }
            // All awaited at once on one runtime.
            let tasks: Vec<_> = ps
                .into_iter()
                .map(|mut p| {
                    tokio::spawn(async move {
                        tokio::time::timeout(LIMIT, p.join_async()).await.unwrap().unwrap();
                        p.exitcode()
                    })
                })
                .collect();
            for (i, t) in tasks.into_iter().enumerate() {
                assert_eq!(t.await.unwrap(), Some(i as i32));
            }
        });
    }
}

#[test]
fn join_async_sees_a_sigkill() {
    for rt in runtimes() {
        rt.block_on(async {
            let mut p = Process::new(|| {
                std::thread::sleep(Duration::from_secs(60));
                0
            });
            p.start().unwrap();
            p.kill().unwrap();
            tokio::time::timeout(LIMIT, p.join_async()).await.unwrap().unwrap();
            assert_eq!(p.exitcode(), Some(-9));
        });
    }
}

#[test]
fn join_async_before_start_is_not_started() {
    for rt in runtimes() {
        rt.block_on(async {
            let mut p = Process::new(|| 0);
            assert!(matches!(p.join_async().await, Err(ProcessError::NotStarted { .. })));
        });
    }
}

#[test]
fn wait_any_async_returns_the_first_to_end() {
    for rt in runtimes() {
        rt.block_on(async {
            let mut slow = Process::new(|| {
                std::thread::sleep(Duration::from_secs(60));
                0
            });
            let mut fast = Process::new(|| mproc_process::exit(7));
            slow.start().unwrap();
            fast.start().unwrap();
            let t = Instant::now();
            let i = tokio::time::timeout(LIMIT, wait_any_async(&mut [&mut slow, &mut fast])).await.unwrap().unwrap();
            assert_eq!(i, 1);
            assert_eq!(fast.exitcode(), Some(7));
            assert!(t.elapsed() < Duration::from_secs(30));
            slow.kill().unwrap();
            slow.join().unwrap();
            assert!(wait_any_async(&mut []).await.is_err());
        });
    }
}

#[test]
fn a_two_second_join_async_does_not_spin() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut p = Process::new(|| {
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    p.start().unwrap();
    let before = mproc_testkit::thread_cpu_time();
    rt.block_on(async {
        assert!(tokio::time::timeout(Duration::from_secs(2), p.join_async()).await.is_err());
    });
    let used = mproc_testkit::thread_cpu_time() - before;
    assert!(used < Duration::from_millis(20), "a 2 s join_async used {used:?} of CPU (over 1 %)");
    p.kill().unwrap();
    p.join().unwrap();
}
