//! Manager benches: `manager_call` (one `list.append` proxy call to a started manager
//! over its Unix socket, against a raw 64 B socketpair round trip between two processes
//! as the limit) and `manager_queue` (one `put` + `get` through the manager).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mproc_manager::Manager;

fn manager_call(c: &mut Criterion) {
    let manager = Manager::start().expect("start manager");
    let list = manager.list::<u64>().expect("list");
    let mut g = c.benchmark_group("manager_call");
    g.bench_function("mproc", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                list.append(i).expect("append");
            }
            let t = start.elapsed();
            list.clear().expect("clear");
            t
        })
    });
    g.bench_function("socketpair", |b| {
        let (mut parent, mut child) = UnixStream::pair().expect("socketpair");
        // SAFETY: the child only echoes on its socket and leaves through _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            drop(parent);
            let mut buf = [0u8; 64];
            while child.read_exact(&mut buf).is_ok() {
                if child.write_all(&buf).is_err() {
                    break;
                }
            }
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        drop(child);
        let mut buf = [7u8; 64];
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                parent.write_all(&buf).expect("write");
                parent.read_exact(&mut buf).expect("read");
            }
            start.elapsed()
        });
        drop(parent);
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    });
    g.finish();
}

fn manager_queue(c: &mut Criterion) {
    let manager = Manager::start().expect("start manager");
    let q = manager.queue::<u64>().expect("queue");
    let mut g = c.benchmark_group("manager_queue");
    g.bench_function("mproc", |b| {
        b.iter(|| {
            q.put(1).expect("put");
            q.get_timeout(Duration::from_secs(5)).expect("get")
        })
    });
    g.finish();
}

criterion_group!(benches, manager_call, manager_queue);
criterion_main!(benches);
