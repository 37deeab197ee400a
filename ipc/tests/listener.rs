//! Listener/Client between Rust processes: the handshake with right and wrong
//! keys both ways, Unix and TCP, socket file permissions and cleanup, and a
//! client in a forked process.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, Instant};

use mproc_ipc::{Address, Client, Connection, IpcError, Listener};
use mproc_testkit::{fork, reap};

fn talk(mut c: Connection) -> mproc_ipc::Result<Vec<u8>> {
    c.send_bytes(b"ping")?;
    c.recv_bytes()
}

fn handshake(
    listener: Listener,
    client_key: Option<&'static [u8]>,
) -> (mproc_ipc::Result<Vec<u8>>, mproc_ipc::Result<()>) {
    let addr = listener.address().clone();
    let t = thread::spawn(move || Client::connect(&addr, client_key).and_then(talk));
    let server = listener.accept().and_then(|mut c| {
        assert_eq!(c.recv_bytes()?, b"ping");
        c.send_bytes(b"pong")
    });
    (t.join().unwrap(), server)
}

#[test]
fn tcp_right_key() {
    let l = Listener::bind(Address::loopback(0), Some(b"k1")).unwrap();
    let (client, server) = handshake(l, Some(b"k1"));
    assert_eq!(client.unwrap(), b"pong");
    server.unwrap();
}

#[test]
fn unix_right_key() {
    let l = Listener::bind_temp(Some(b"k1")).unwrap();
    let (client, server) = handshake(l, Some(b"k1"));
    assert_eq!(client.unwrap(), b"pong");
    server.unwrap();
}

#[test]
fn wrong_key_fails_on_both_sides() {
    for l in
        [Listener::bind(Address::loopback(0), Some(b"server")).unwrap(), Listener::bind_temp(Some(b"server")).unwrap()]
    {
        let (client, server) = handshake(l, Some(b"client"));
        match client {
            Err(IpcError::Authentication { reason }) => assert!(reason.contains("rejected"), "{reason}"),
            other => panic!("client: expected Authentication, got {other:?}"),
        }
        match server {
            Err(IpcError::Authentication { reason }) => assert!(reason.contains("wrong"), "{reason}"),
            other => panic!("server: expected Authentication, got {other:?}"),
        }
    }
}

#[test]
fn client_rejects_listener_with_wrong_key_in_second_round() {
    // A listener that accepts any answer but whose own challenge answer is
    // wrong: the client's delivered challenge must catch it.
    let l = Listener::bind(Address::loopback(0), None).unwrap();
    let addr = l.address().clone();
    let t = thread::spawn(move || Client::connect(&addr, Some(b"right")));
    let mut c = l.accept().unwrap();
    // Play the listener's part by hand: a challenge the client answers, then
    // welcome whatever comes back, then answer its challenge with a wrong key.
    mproc_ipc::auth::deliver_challenge(&mut c, b"right").unwrap();
    let server_side = mproc_ipc::auth::answer_challenge(&mut c, b"WRONG");
    assert!(matches!(server_side, Err(IpcError::Authentication { .. })), "{server_side:?}");
    match t.join().unwrap() {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("wrong"), "{reason}"),
        other => panic!("expected Authentication, got {other:?}"),
    }
}

#[test]
fn no_authkey_means_no_handshake() {
    let l = Listener::bind(Address::loopback(0), None).unwrap();
    let (client, server) = handshake(l, None);
    assert_eq!(client.unwrap(), b"pong");
    server.unwrap();
}

#[test]
fn client_without_key_against_keyed_listener_times_out_the_handshake() {
    let mut l = Listener::bind(Address::loopback(0), Some(b"k")).unwrap();
    l.set_handshake_timeout(Some(Duration::from_millis(200)));
    let addr = l.address().clone();
    // The client connects without a key and waits for a message that never
    // comes; the listener's challenge goes unanswered until its timeout.
    let t = thread::spawn(move || {
        let mut c = Client::connect(&addr, None).unwrap();
        // The first message the keyless client sees is the challenge itself.
        let m = c.recv_bytes().unwrap();
        assert!(m.starts_with(b"#CHALLENGE#{sha256}"), "{m:?}");
        assert_eq!(m.len(), 11 + 8 + 40);
        c
    });
    match l.accept() {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("in time"), "{reason}"),
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    drop(t.join().unwrap());
}

/// A "listener" that accepts and never speaks cannot hang a client: the
/// handshake gives up after the client's timeout with an error saying so.
#[test]
fn client_facing_a_silent_listener_times_out_the_handshake() {
    let path = std::env::temp_dir().join(format!("mproc-silent-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let silent = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for addr in [Address::Unix(path.clone()), Address::Tcp(tcp.local_addr().unwrap())] {
        // Watchdog: the connect runs on a thread the test waits for with a limit.
        let (tx, rx) = std::sync::mpsc::channel();
        let shown = addr.to_string();
        thread::spawn(move || {
            let _ = tx.send(Client::connect_timeout(addr, Some(b"k"), Duration::from_millis(100)));
        });
        match rx.recv_timeout(Duration::from_secs(20)).expect("the client gave up") {
            Err(IpcError::Authentication { reason }) => assert!(reason.contains("in time"), "{shown}: {reason}"),
            other => panic!("{shown}: expected a handshake timeout, got {other:?}"),
        }
    }
    std::fs::remove_file(&path).unwrap();
    drop((silent, tcp));
}

#[test]
fn unix_socket_is_owner_only_and_removed_on_drop() {
    let path = std::env::temp_dir().join(format!("mproc-test-listener-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = Listener::bind(path.clone(), None).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(matches!(Listener::bind(path.clone(), None), Err(IpcError::Os { op: "bind", .. })));
    drop(l);
    assert!(!path.exists());

    let l = Listener::bind_temp(None).unwrap();
    let Address::Unix(p) = l.address().clone() else { panic!("bind_temp must give a Unix path") };
    let dir = p.parent().unwrap().to_owned();
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    drop(l);
    assert!(!p.exists() && !dir.exists());
}

#[test]
fn connect_to_nothing_is_an_os_error_naming_the_address() {
    let l = Listener::bind(Address::loopback(0), None).unwrap();
    let addr = l.address().clone();
    drop(l);
    match Client::connect(&addr, None) {
        Err(e @ IpcError::Os { op: "connect", .. }) => assert!(e.to_string().contains(&addr.to_string())),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn address_parsing() {
    assert_eq!(Address::parse("7000").unwrap(), Address::loopback(7000));
    assert_eq!(Address::parse("./sock").unwrap(), Address::Unix("./sock".into()));
    assert_eq!(Address::parse("[::1]:9").unwrap(), Address::Tcp("[::1]:9".parse().unwrap()));
    assert!(matches!(Address::parse("nonsense"), Err(IpcError::BadAddress { .. })));
    assert_eq!(Address::loopback(5).to_string(), "127.0.0.1:5");
}

#[test]
fn frame_cap_applies_to_accepted_connections() {
    let mut l = Listener::bind(Address::loopback(0), Some(b"k")).unwrap();
    l.set_max_frame(1000);
    let addr = l.address().clone();
    let t = thread::spawn(move || {
        let mut c = Client::connect(&addr, Some(b"k")).unwrap();
        c.send_bytes(&[0u8; 1000]).unwrap();
        c.send_bytes(&[0u8; 1001]).unwrap();
        c
    });
    let mut c = l.accept().unwrap();
    assert_eq!(c.max_frame(), 1000);
    assert_eq!(c.recv_bytes().unwrap().len(), 1000);
    assert!(matches!(c.recv_bytes(), Err(IpcError::MessageTooLarge { len: 1001, max: 1000 })));
    drop(t.join().unwrap());
}

#[test]
fn client_in_forked_process() {
    let l = Listener::bind_temp(Some(b"fork-key")).unwrap();
    let addr = l.address().clone();
    let pid = fork(20, move || {
        let Ok(mut c) = Client::connect(&addr, Some(b"fork-key")) else { return 2 };
        for i in 0..100u32 {
            if c.send(&i).is_err() {
                return 3;
            }
        }
        match c.recv::<u32>() {
            Ok(sum) if sum == (0..100).sum::<u32>() => 0,
            _ => 4,
        }
    });
    let mut c = l.accept().unwrap();
    let mut sum = 0;
    for i in 0..100u32 {
        let v: u32 = c.recv().unwrap();
        assert_eq!(v, i);
        sum += v;
    }
    c.send(&sum).unwrap();
    assert_eq!(reap(pid, Duration::from_secs(20)), 0);
}

#[test]
fn accept_timeout_without_a_peer_is_a_typed_timeout() {
    let l = Listener::bind(Address::loopback(0), Some(b"k")).unwrap();
    match l.accept_timeout(Duration::from_millis(30)) {
        Err(IpcError::Timeout { what: "Listener::accept", after }) => assert_eq!(after, Duration::from_millis(30)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(matches!(l.try_accept(), Err(IpcError::Timeout { .. })));
    let addr = l.address().clone();
    let t = thread::spawn(move || Client::connect(&addr, Some(b"k")).and_then(talk));
    let mut c = l.accept_timeout(Duration::from_secs(20)).expect("a peer connected");
    assert_eq!(c.recv_bytes().unwrap(), b"ping");
    c.send_bytes(b"pong").unwrap();
    assert_eq!(t.join().unwrap().unwrap(), b"pong");
}

#[test]
fn client_killed_mid_message_gives_truncation_not_a_hang() {
    let l = Listener::bind_temp(Some(b"k")).unwrap();
    let addr = l.address().clone();
    let pid = fork(20, move || {
        let Ok(c) = Client::connect(&addr, Some(b"k")) else { return 2 };
        // Announce 1000 bytes, send 10, then wait to be killed.
        let mut partial = 1000u32.to_be_bytes().to_vec();
        partial.extend([9u8; 10]);
        use std::os::fd::AsRawFd;
        // SAFETY: writing from a valid buffer to our own open socket.
        let n = unsafe { libc::write(c.as_raw_fd(), partial.as_ptr().cast(), partial.len()) };
        if n != partial.len() as isize {
            return 3;
        }
        // SAFETY: pause is async-signal-safe; the parent kills us.
        unsafe { libc::pause() };
        0
    });
    let mut c = l.accept().unwrap();
    assert!(c.poll(Some(Duration::from_secs(20))).unwrap(), "the partial frame never arrived");
    // SAFETY: kill on our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(reap(pid, Duration::from_secs(20)), -libc::SIGKILL);
    match c.recv_bytes() {
        Err(IpcError::TruncatedMessage { expected: 1004, got: 14 }) => {}
        other => panic!("expected TruncatedMessage, got {other:?}"),
    }
}

#[test]
fn abstract_unix_address() {
    let name = format!("\0mproc-test-abstract-{}", std::process::id());
    let l = Listener::bind(std::path::PathBuf::from(&name), Some(b"k")).unwrap();
    assert!(l.address().to_string().starts_with("\\0mproc-test-abstract-"));
    let (client, server) = handshake(l, Some(b"k"));
    assert_eq!(client.unwrap(), b"pong");
    server.unwrap();
}

/// 200 TCP peers connect to a keyed listener and say nothing; a good client
/// in another process then connects and exchanges a message at once. With the
/// handshake in front of `accept`, it would wait behind the first silent peer
/// for the whole handshake timeout (20 s here), so the bound below (a quarter
/// of it) only a stall can break. Prints the measured latency.
#[test]
fn silent_tcp_peers_do_not_delay_a_good_client() {
    const SILENT: usize = 200;
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
    let (l, silent) = common::listener_with_silent_peers(SILENT, HANDSHAKE_TIMEOUT);
    let watchdog = Instant::now() + Duration::from_secs(30);
    while l.handshakes_in_flight() < SILENT {
        assert!(Instant::now() < watchdog, "only {} silent peers reached the listener", l.handshakes_in_flight());
        assert!(
            matches!(l.accept_timeout(Duration::from_millis(20)), Err(IpcError::Timeout { .. })),
            "a silent peer completed"
        );
    }
    let silent = silent.join().unwrap();

    let addr = l.address().clone();
    let start = Instant::now();
    let pid = fork(20, move || match Client::connect(&addr, Some(b"key")).and_then(talk) {
        Ok(reply) if reply == b"pong" => 0,
        _ => 1,
    });
    let mut c = l.accept_timeout(HANDSHAKE_TIMEOUT / 4).expect("the good client was held up");
    assert_eq!(c.recv_bytes().unwrap(), b"ping");
    c.send_bytes(b"pong").unwrap();
    let latency = start.elapsed();
    println!("good client behind {SILENT} silent peers: connected and exchanged a message in {latency:?}");
    assert_eq!(reap(pid, Duration::from_secs(20)), 0);
    assert_eq!(l.handshakes_in_flight(), SILENT, "the silent peers are still held, not dropped");
    drop(silent);
}

#[test]
fn a_silent_peer_past_its_deadline_is_an_authentication_error() {
    let mut l = Listener::bind(Address::loopback(0), Some(b"key")).unwrap();
    l.set_handshake_timeout(Some(Duration::from_millis(100)));
    let Address::Tcp(sa) = l.address().clone() else { unreachable!() };
    let _silent = std::net::TcpStream::connect(sa).unwrap();
    match l.accept_timeout(Duration::from_secs(20)) {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("in time"), "{reason}"),
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    assert_eq!(l.handshakes_in_flight(), 0);
}

#[test]
fn past_the_bound_the_oldest_handshake_is_dropped() {
    let mut l = Listener::bind_temp(Some(b"key")).unwrap();
    l.set_max_handshakes(2);
    let Address::Unix(path) = l.address().clone() else { unreachable!() };
    let peers: Vec<_> = (0..3).map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap()).collect();
    match l.accept_timeout(Duration::from_secs(20)) {
        Err(IpcError::Authentication { reason }) => assert!(reason.contains("dropped"), "{reason}"),
        other => panic!("expected the oldest handshake dropped, got {other:?}"),
    }
    assert_eq!(l.handshakes_in_flight(), 2);
    drop(peers);
}

/// A peer that sends half a frame header and stalls costs the next peer
/// nothing either: reads never block on a partial frame.
#[test]
fn a_peer_stalled_mid_frame_does_not_delay_the_next() {
    use std::io::{Read, Write};
    let l = Listener::bind(Address::loopback(0), Some(b"key")).unwrap();
    let Address::Tcp(sa) = l.address().clone() else { unreachable!() };
    let mut stalled = std::net::TcpStream::connect(sa).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert!(matches!(l.accept_timeout(Duration::from_millis(20)), Err(IpcError::Timeout { .. })));
    let mut header = [0u8; 4];
    stalled.read_exact(&mut header).unwrap(); // the challenge's header
    stalled.write_all(&[0, 0]).unwrap(); // half of a reply's header
    let addr = l.address().clone();
    let pid = fork(20, move || match Client::connect(&addr, Some(b"key")).and_then(talk) {
        Ok(reply) if reply == b"pong" => 0,
        _ => 1,
    });
    let mut c = l.accept_timeout(Duration::from_secs(10)).expect("the good client was held up");
    assert_eq!(c.recv_bytes().unwrap(), b"ping");
    c.send_bytes(b"pong").unwrap();
    assert_eq!(reap(pid, Duration::from_secs(20)), 0);
}
