//! Async connections (feature `tokio`): socket and shared-memory pipe ends
//! awaited from current-thread and multi-thread runtimes, across forked
//! processes, with a SIGKILLed peer, futures dropped at random points, and
//! the CPU cost of a long await. Every await runs under `tokio::time::timeout`;
//! forked children run under `fork_child`'s 20 s `alarm`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mproc_ipc::{pipe, pipe_with_capacity, Connection, IpcError};
use proptest::prelude::*;

mod common;
#[path = "../../testkit/src/runtime.rs"]
mod runtime;

use runtime::{current, multi, within, LIMIT};

/// Both kinds of connection pair.
fn pairs() -> Vec<(&'static str, Connection, Connection)> {
    let (a, b) = Connection::pair().unwrap();
    let (c, d) = pipe(true).unwrap();
    vec![("socketpair", a, b), ("pipe", c, d)]
}

/// One task sends messages of many sizes (some far longer than a ring or a
/// socket buffer), another receives them; on one thread this only finishes
/// if neither side ever blocks the thread.
async fn echo_sizes(mut a: Connection, mut b: Connection) {
    let sizes = [0usize, 1, 100, 65_527, 65_528, 200_000, 3 << 20, 7];
    let writer = tokio::spawn(async move {
        for (i, &n) in sizes.iter().enumerate() {
            a.send_bytes_async(&vec![i as u8; n]).await.unwrap();
        }
        a.send_async(&("done", 7u32)).await.unwrap();
        a
    });
    for (i, &n) in sizes.iter().enumerate() {
        let got = within(b.recv_bytes_async()).await.unwrap();
        assert_eq!(got.len(), n, "message {i}");
        assert!(got.iter().all(|&x| x == i as u8));
    }
    let (s, n): (String, u32) = within(b.recv_async()).await.unwrap();
    assert_eq!((s.as_str(), n), ("done", 7));
    drop(within(writer).await.unwrap());
    assert!(within(b.recv_bytes_async()).await.unwrap_err().is_eof());
}

#[test]
fn smoke_current_thread() {
    for (name, a, b) in pairs() {
        eprintln!("{name}");
        current().block_on(echo_sizes(a, b));
    }
}

#[test]
fn smoke_multi_thread() {
    for (name, a, b) in pairs() {
        eprintln!("{name}");
        multi().block_on(echo_sizes(a, b));
    }
}

#[test]
fn async_and_blocking_ends_mix() {
    for (name, mut a, mut b) in pairs() {
        eprintln!("{name}");
        let t = std::thread::spawn(move || {
            for i in 0..1000u32 {
                a.send(&i).unwrap();
                assert_eq!(a.recv::<u32>().unwrap(), i + 1);
            }
        });
        current().block_on(async {
            for _ in 0..1000 {
                let i: u32 = within(b.recv_async()).await.unwrap();
                within(b.send_async(&(i + 1))).await.unwrap();
            }
        });
        t.join().unwrap();
    }
}

#[test]
fn forked_producer_many_tasks_one_runtime() {
    // One producer process, 100 connections, 100 tasks awaiting them at once.
    const CONNS: usize = 100;
    const EACH: u32 = 50;
    let (mut mine, mut theirs): (Vec<Connection>, Vec<Connection>) = (Vec::new(), Vec::new());
    for i in 0..CONNS {
        let (a, b) = if i % 2 == 0 { pipe(false).unwrap() } else { Connection::pair().unwrap() };
        mine.push(a);
        theirs.push(b);
    }
    let pid = mproc_testkit::fork(20, move || {
        for round in 0..EACH {
            for c in theirs.iter_mut() {
                c.send(&round).unwrap();
            }
        }
        0
    });
    let rt = current();
    let total: u32 = rt.block_on(async {
        let tasks: Vec<_> = mine
            .drain(..)
            .map(|mut c| {
                tokio::spawn(async move {
                    let mut sum = 0;
                    for round in 0..EACH {
                        let got: u32 = within(c.recv_async()).await.unwrap();
                        assert_eq!(got, round);
                        sum += got;
                    }
                    assert!(within(c.recv_bytes_async()).await.unwrap_err().is_eof());
                    sum
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += within(t).await.unwrap();
        }
        total
    });
    assert_eq!(total, CONNS as u32 * (0..EACH).sum::<u32>());
    assert_eq!(mproc_testkit::reap(pid, LIMIT), 0);
}

#[test]
fn sigkilled_peer_ends_pending_recv_and_send() {
    for kind in ["socketpair", "pipe"] {
        let (mut a, b) =
            if kind == "pipe" { pipe_with_capacity(true, 4096).unwrap() } else { Connection::pair().unwrap() };
        let pid = mproc_testkit::fork(20, move || {
            let _b = b;
            // SAFETY: pause just sleeps until the SIGKILL.
            unsafe { libc::pause() };
            0
        });
        let rt = multi();
        let (err, a) = rt.block_on(async move {
            let pending = tokio::spawn(async move {
                let r = a.recv_bytes_async().await;
                (r, a)
            });
            tokio::time::sleep(Duration::from_millis(50)).await; // let it start waiting (not synchronisation: either order passes)
                                                                 // SAFETY: kill our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            within(pending).await.unwrap()
        });
        assert!(err.unwrap_err().is_eof(), "{kind}: recv after SIGKILL");
        assert_eq!(mproc_testkit::reap(pid, LIMIT), -libc::SIGKILL);
        // A send to the dead peer fails like the blocking send (broken pipe),
        // at the latest once the ring or the socket buffer is full.
        let mut a = a;
        let e = rt.block_on(async {
            loop {
                if let Err(e) = within(a.send_bytes_async(&[0u8; 1000])).await {
                    return e;
                }
            }
        });
        assert!(
            matches!(e, IpcError::Os { ref source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe),
            "{kind}: {e}"
        );
    }
}

#[test]
fn a_two_second_await_does_not_spin() {
    for (name, _a, mut b) in pairs() {
        let before = mproc_testkit::thread_cpu_time();
        current().block_on(async {
            let r = tokio::time::timeout(Duration::from_secs(2), b.recv_bytes_async()).await;
            assert!(r.is_err(), "{name}: nothing was sent");
        });
        let used = mproc_testkit::thread_cpu_time() - before;
        eprintln!("{name}: {used:?} of CPU in a 2 s await");
        assert!(used < Duration::from_millis(20), "{name}: a 2 s await used {used:?} of CPU (over 1 %)");
    }
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let (_a, mut b) = pipe(true).unwrap();
    let mut fut = pin!(b.recv_bytes_async());
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Err(IpcError::Os { .. })) => {}
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Receive futures polled a random number of times and then dropped, and
    /// send futures likewise, lose no message and cut none: every message
    /// arrives once, whole, in order.
    #[test]
    fn dropped_futures_lose_nothing(
        pipe_kind in any::<bool>(),
        sizes in prop::collection::vec(prop_oneof![0usize..64, 60_000usize..70_000, 100_000usize..300_000], 1..12),
        polls in prop::collection::vec(0usize..4, 64),
    ) {
        let (mut a, mut b) = if pipe_kind { pipe_with_capacity(true, 1 << 16).unwrap() } else { Connection::pair().unwrap() };
        let rt = current();
        let _guard = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let msg = |i: usize, n: usize| (0..n).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>();
        let mut polls = polls.into_iter().cycle();
        let mut received = Vec::new();
        let mut sent = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let m = msg(i, n);
            // Send: poll a few times, then drop; the tail (if any) is the
            // connection's to finish, which the next send or flush does. A
            // future dropped before its first poll sent nothing.
            {
                let mut f = pin!(a.send_bytes_async(&m));
                let n_polls = polls.next().unwrap();
                if n_polls > 0 {
                    sent.push(m.clone());
                }
                for _ in 0..n_polls {
                    if f.as_mut().poll(&mut cx).is_ready() {
                        break;
                    }
                }
            }
            // Receive: a few futures dropped part-way, each pulling what is there.
            for _ in 0..polls.next().unwrap() {
                let mut f = pin!(b.recv_bytes_async());
                if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                    received.push(r.unwrap());
                }
                // Let a blocked sender move on between receives.
                let mut s = pin!(a.flush_async());
                let _ = s.as_mut().poll(&mut cx);
            }
        }
        // Finish with the blocking calls: the writer's next send first
        // completes any message a dropped future left half-sent.
        let t = std::thread::spawn(move || {
            a.send_bytes(b"end").unwrap();
            a
        });
        loop {
            prop_assert!(b.poll(Some(LIMIT)).unwrap(), "no message within the watchdog");
            let m = b.recv_bytes().unwrap();
            if m == b"end" {
                break;
            }
            received.push(m);
        }
        drop(t.join().unwrap());
        prop_assert_eq!(received.len(), sent.len());
        for (i, (got, want)) in received.iter().zip(&sent).enumerate() {
            prop_assert!(got == want, "message {} of {} bytes came as {} bytes", i, want.len(), got.len());
        }
    }
}

#[test]
fn accept_and_connect_async_with_authkey() {
    use mproc_ipc::{Address, Client, Listener};
    for addr in
        [Address::loopback(0), Address::Unix(std::path::PathBuf::from(format!("\0mproc-async-{}", std::process::id())))]
    {
        multi().block_on(async {
            let listener = Listener::bind(addr, Some(b"key")).unwrap();
            let a = listener.address().clone();
            let b = a.clone();
            let good = tokio::spawn(async move {
                let mut c = within(Client::connect_async(&a, Some(b"key"))).await.unwrap();
                within(c.send_async(&5u32)).await.unwrap();
                within(c.recv_async::<u32>()).await.unwrap()
            });
            let mut s = within(listener.accept_async()).await.unwrap();
            let n: u32 = within(s.recv_async()).await.unwrap();
            within(s.send_async(&(n * 2))).await.unwrap();
            assert_eq!(within(good).await.unwrap(), 10);
            let bad = tokio::spawn(async move { within(Client::connect_async(&b, Some(b"wrong"))).await });
            assert!(matches!(within(listener.accept_async()).await, Err(IpcError::Authentication { .. })));
            assert!(matches!(within(bad).await.unwrap(), Err(IpcError::Authentication { .. })));
        });
    }
}

/// 200 TCP peers connect to a keyed listener and say nothing; a good client in
/// another process then connects and is accepted by `accept_async` at once.
/// With the handshake in front of the accept, it would wait behind the first
/// silent peer for the whole handshake timeout (20 s here), so the bound
/// below (a quarter of it) only a stall can break. The silent peers are taken
/// into the table by `accept_async` calls cut short by a timeout, so this also
/// shows a dropped `accept_async` keeps what it took.
#[test]
fn accept_async_is_not_held_up_by_silent_peers() {
    use mproc_ipc::Client;
    const SILENT: usize = 200;
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
    let (l, silent) = common::listener_with_silent_peers(SILENT, HANDSHAKE_TIMEOUT);
    let rt = current();
    let watchdog = std::time::Instant::now() + Duration::from_secs(30);
    while l.handshakes_in_flight() < SILENT {
        assert!(
            std::time::Instant::now() < watchdog,
            "only {} silent peers reached the listener",
            l.handshakes_in_flight()
        );
        let cut_short = rt.block_on(async { tokio::time::timeout(Duration::from_millis(20), l.accept_async()).await });
        assert!(cut_short.is_err(), "a silent peer completed: {cut_short:?}");
    }
    let silent = silent.join().unwrap();
    let addr = l.address().clone();
    let start = std::time::Instant::now();
    let pid = mproc_testkit::fork(20, move || {
        let talk = |mut c: Connection| c.send_bytes(b"ping").and_then(|()| c.recv_bytes());
        match Client::connect(&addr, Some(b"key")).and_then(talk) {
            Ok(reply) if reply == b"pong" => 0,
            _ => 1,
        }
    });
    rt.block_on(async {
        let mut c = tokio::time::timeout(HANDSHAKE_TIMEOUT / 4, l.accept_async())
            .await
            .expect("the good client was held up")
            .unwrap();
        assert_eq!(within(c.recv_bytes_async()).await.unwrap(), b"ping");
        within(c.send_bytes_async(b"pong")).await.unwrap();
    });
    println!("accept_async behind {SILENT} silent peers: a good client in {:?}", start.elapsed());
    assert_eq!(mproc_testkit::reap(pid, LIMIT), 0);
    assert_eq!(l.handshakes_in_flight(), SILENT, "the silent peers are still held, not dropped");
    drop(silent);
}

/// A silent peer past the listener's handshake timeout ends one
/// `accept_async` with the blocking accept's error — on a runtime with no
/// timer driver (the deadline is a timerfd), under a watchdog.
#[test]
fn accept_async_reports_a_silent_peer_past_its_deadline() {
    use mproc_ipc::{Address, Listener};
    let _watchdog = mproc_testkit::watchdog(20);
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let mut l = Listener::bind(Address::loopback(0), Some(b"key")).unwrap();
    l.set_handshake_timeout(Some(Duration::from_millis(100)));
    let Address::Tcp(sa) = l.address().clone() else { unreachable!() };
    let _silent = std::net::TcpStream::connect(sa).unwrap();
    match rt.block_on(l.accept_async()) {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("in time"), "{reason}"),
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    assert_eq!(l.handshakes_in_flight(), 0);
}

/// A "listener" that accepts and never speaks cannot stall `connect_async`:
/// the handshake gives up after the timeout with the blocking call's error.
#[test]
fn connect_async_facing_a_silent_listener_times_out() {
    use mproc_ipc::{Address, Client};
    let path = std::env::temp_dir().join(format!("mproc-silent-async-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let silent = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for addr in [Address::Unix(path.clone()), Address::Tcp(tcp.local_addr().unwrap())] {
        let shown = addr.to_string();
        let got =
            current().block_on(within(Client::connect_timeout_async(addr, Some(b"k"), Duration::from_millis(100))));
        match got {
            Err(IpcError::Authentication { reason }) => assert!(reason.contains("in time"), "{shown}: {reason}"),
            other => panic!("{shown}: expected a handshake timeout, got {other:?}"),
        }
    }
    std::fs::remove_file(&path).unwrap();
    drop((silent, tcp));
}
