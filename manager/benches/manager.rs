//! Manager benches: `manager_call` (one `list.append` proxy call to a started manager
//! over its Unix socket, against a raw 64 B socketpair round trip between two processes
//! as the limit), `manager_queue` (one `put` + `get` through the manager) and
//! `manager_call_py` (a CPython client's `list.append` on this crate's manager).
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
                list.append(i).expect("append");
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
            q.put(1).expect("put");
            q.get_timeout(Duration::from_secs(5)).expect("get")
        })
    });
    g.finish();
}

/// `manager_call_py`: a CPython client (the real `python3`) calling `list.append` on this
/// crate's manager over its Unix socket, timed by the same Python loop that `xtask/python/mp_bench.py`
/// runs against CPython's manager for the report's CPython column.
fn manager_call_py(c: &mut Criterion) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/python/mp_bench.py");
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        eprintln!("manager_call_py: no python3, skipped");
        return;
    }
    // A Unix socket, as CPython's own manager uses by default.
    let manager = mproc_manager::ManagerBuilder::new().authkey(b"bench").start().expect("start manager");
    let Some(mproc_manager::Address::Unix(path)) = manager.address() else { panic!("a Unix-socket manager") };
    let target = format!("{}:bench", path.display());
    let mut g = c.benchmark_group("manager_call_py");
    g.sample_size(10);
    g.bench_function("mproc", |b| {
        // Each sample is one Python run of at least 2000 calls (a short loop in a fresh
        // interpreter is all noise), scaled to the iterations criterion asked for.
        b.iter_custom(|iters| {
            let out = std::process::Command::new("python3")
                .arg(&script)
                .args(["--manager", &target, "--ops", &iters.max(2000).to_string(), "manager_call_py"])
                .output()
                .expect("run python3");
            assert!(out.status.success(), "mp_bench.py failed: {}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout);
            let us: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("manager_call_py\t"))
                .and_then(|rest| rest.split('\t').next())
                .and_then(|f| f.parse().ok())
                .unwrap_or_else(|| panic!("no figure in {text:?}"));
            Duration::from_secs_f64(us * 1e-6 * iters as f64)
        })
    });
    g.finish();
}

criterion_group!(benches, manager_call, manager_queue, manager_call_py);
criterion_main!(benches);
