//! Manager benches: `manager_call` (one `list.append` proxy call to a started manager
//! over its Unix socket, against a raw 64 B socketpair round trip between two processes
//! as the limit) and `manager_queue` (one `put` + `get` through the manager).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
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
                list.append(&i).expect("append");
            }
            let t = start.elapsed();
            list.clear().expect("clear");
            t
        })
    });
    g.bench_function("socketpair", |b| {
        let (mut parent, mut child) = UnixStream::pair().expect("socketpair");
        let parent_fd = parent.as_raw_fd();
        // The child only echoes on its socket until end of file.
        let pid = mproc_testkit::fork(600, || {
            // SAFETY: the parent's end, inherited: nothing in this child uses or
            // closes it again (the child leaves through `_exit`).
            unsafe { libc::close(parent_fd) };
            let mut buf = [0u8; 64];
            while child.read_exact(&mut buf).is_ok() {
                if child.write_all(&buf).is_err() {
                    break;
                }
            }
            0
        });
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
        mproc_testkit::wait(pid);
    });
    g.finish();
}

fn manager_queue(c: &mut Criterion) {
    let manager = Manager::start().expect("start manager");
    let q = manager.queue::<u64>().expect("queue");
    let mut g = c.benchmark_group("manager_queue");
    g.bench_function("mproc", |b| {
        b.iter(|| {
            q.put(&1).expect("put");
            q.get_timeout(Duration::from_secs(5)).expect("get")
        })
    });
    g.finish();
}

criterion_group!(benches, manager_call, manager_queue);
criterion_main!(benches);
