//! Manager benches: `manager_call` (one `list.append` proxy call to a started manager,
//! on the local transport — a shared-memory pipe — beside a 64 B `mproc_ipc::pipe`
//! round trip between two processes (`pipe-rtt`, the `pipe_rtt` case measured again in
//! this group so the two compare within one run) and a raw 64 B socketpair round trip),
//! `manager_call_socket` (the same call on the Unix socket, as before the local
//! transport, beside the socketpair round trip again: the floor of a call that wakes a
//! sleeping server and a sleeping client), `manager_call_oversubscribed` (the local and the socket transport while
//! a busy-looping thread runs on every core), `manager_queue` (one `put` + `get` through
//! the manager) and `manager_call_py` (a CPython client's `list.append` on this crate's
//! manager).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use mproc_manager::{ClientTransport, Manager, ManagerBuilder};

/// A started manager whose client uses `transport`, and a list on it.
fn list_on(transport: ClientTransport) -> (Manager, mproc_manager::ListProxy<u64>) {
    let manager = ManagerBuilder::new().client_transport(transport).start().expect("start manager");
    let list = manager.list::<u64>().expect("list");
    let stats = manager.stats().expect("stats");
    let local = stats.shared_memory > 0;
    assert_eq!(local, transport == ClientTransport::Auto, "{transport:?} gave {stats:?}");
    (manager, list)
}

/// Benches `list.append` on `list` as `id`.
fn bench_append(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, list: &mproc_manager::ListProxy<u64>) {
    g.bench_function(id, |b| {
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
}

fn manager_call(c: &mut Criterion) {
    let (_manager, list) = list_on(ClientTransport::Auto);
    let mut g = c.benchmark_group("manager_call");
    bench_append(&mut g, "mproc", &list);
    g.bench_function("pipe-rtt", |b| {
        // The pipe_rtt case: 64 B through `mproc_ipc::pipe` to a child that echoes it.
        let (mut here, mut there) = mproc_ipc::pipe(true).expect("pipe");
        let here_fd = here.as_raw_fd();
        let pid = mproc_testkit::fork(600, move || {
            // SAFETY: the parent's doorbell socket, inherited: closing it here lets the
            // child see end of file when the parent drops its end; nothing in this child
            // uses it (it leaves through `_exit`).
            unsafe { libc::close(here_fd) };
            let mut buf = [0u8; 64];
            while let Ok(n) = there.recv_bytes_into(&mut buf) {
                if there.send_bytes(&buf[..n]).is_err() {
                    break;
                }
            }
            0
        });
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                here.send_bytes(&msg).expect("send");
                here.recv_bytes_into(&mut buf).expect("recv");
            }
            start.elapsed()
        });
        drop(here);
        mproc_testkit::wait(pid);
    });
    socketpair_rtt(&mut g);
    g.finish();
}

/// Benches `socketpair`: a raw 64 B round trip over a Unix socketpair to a forked child
/// that echoes it — the floor of any call that crosses a socket and wakes a sleeper on
/// each side.
fn socketpair_rtt(g: &mut BenchmarkGroup<'_, WallTime>) {
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
}

/// The call on the Unix socket: what every call cost before the local transport, and
/// what a CPython client's call to a manager costs.
fn manager_call_socket(c: &mut Criterion) {
    let (_manager, list) = list_on(ClientTransport::Socket);
    let mut g = c.benchmark_group("manager_call_socket");
    bench_append(&mut g, "mproc", &list);
    socketpair_rtt(&mut g);
    g.finish();
}

/// One thread per core that spins until dropped: every core is busy, so a process that
/// spins while it waits takes time from the one it waits for.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start() -> Hogs {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..1000 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    }
                })
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Both transports with a busy-looping thread on every core, started after the
/// managers so that only the measurement runs beside them.
fn manager_call_oversubscribed(c: &mut Criterion) {
    let (_local, local_list) = list_on(ClientTransport::Auto);
    let (_socket, socket_list) = list_on(ClientTransport::Socket);
    let hogs = Hogs::start();
    let mut g = c.benchmark_group("manager_call_oversubscribed");
    bench_append(&mut g, "mproc", &local_list);
    bench_append(&mut g, "mproc-socket", &socket_list);
    g.finish();
    drop(hogs);
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

criterion_group!(
    benches,
    manager_call,
    manager_call_socket,
    manager_call_oversubscribed,
    manager_queue,
    manager_call_py
);
criterion_main!(benches);
