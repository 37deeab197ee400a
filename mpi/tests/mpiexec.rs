//! The MPI pool under a real `mpiexec` (MPICH's hydra): the example `mpi_map` run with 3
//! ranks on this machine, and with its ranks in two network namespaces joined by a
//! bridge, standing in for two hosts. Needs the `mpi` feature (and MPICH); each run is
//! its own process group under a watchdog.
#![cfg(feature = "mpi")]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one `mpiexec` run may take.
const WATCHDOG: Duration = Duration::from_secs(90);

fn mpiexec() -> Option<PathBuf> {
    let out = Command::new("sh").args(["-c", "command -v mpiexec"]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The example, built once in this test's target directory and profile.
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current_exe");
            let profile_dir = exe.parent().and_then(Path::parent).expect("profile directory");
            let target_dir = profile_dir.parent().expect("target directory");
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "mproc-mpi",
                "--features",
                "mpi",
                "--example",
                "mpi_map",
                "--target-dir",
            ])
            .arg(target_dir);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo build");
            assert!(status.success(), "building the mpi_map example failed");
            profile_dir.join("examples/mpi_map")
        })
        .clone()
}

/// Runs `cmd` in its own process group; kills the group and fails after [`WATCHDOG`].
/// One job at a time: MPICH's ranks poll while they wait, so two jobs of three ranks
/// each on a 2-core machine (the test harness runs tests in parallel) starve each
/// other, and the TCP one across namespaces once ran past its watchdog that way.
fn run(mut cmd: Command) -> (Output, Duration) {
    static ONE_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_JOB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).process_group(0);
    let child = cmd.spawn().expect("start mpiexec");
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(out) => (out.expect("wait for mpiexec"), start.elapsed()),
        Err(_) => {
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            // What it printed before the kill says where it hung.
            let said = match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(out)) => format!("\nstdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr)),
                _ => String::new(),
            };
            panic!("mpiexec still running after {WATCHDOG:?}: killed its process group{said}");
        }
    }
}

fn mpi_map(mode: &str) -> Option<(Output, Duration)> {
    let Some(mpiexec) = mpiexec() else {
        eprintln!("skipped: no mpiexec on PATH (install MPICH: mpich, libmpich-dev)");
        return None;
    };
    let mut cmd = Command::new(mpiexec);
    cmd.args(["-n", "3"]).arg(example()).arg(mode);
    Some(run(cmd))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn passes(mode: &str, expect: &str) {
    let Some((out, _)) = mpi_map(mode) else { return };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "mpi_map {mode}: {}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    assert!(stdout.contains(expect), "mpi_map {mode}: expected {expect:?}\nstdout: {stdout}\nstderr: {stderr}");
}

#[test]
fn map_of_10000_items_is_right() {
    passes("map", "map ok: 10000 results on 2 workers");
}

#[test]
fn messages_past_the_eager_limit_do_not_deadlock() {
    // 200,000 items in chunks of 25,000: every task and result message is far past
    // MPICH's eager limit, so a blocking result send would deadlock with rank 0.
    let Some(mpiexec) = mpiexec() else { return };
    let mut cmd = Command::new(mpiexec);
    cmd.args(["-n", "3"]).arg(example()).args(["bench", "200000"]);
    let (out, _) = run(cmd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\nstdout: {stdout}\nstderr: {}", out.status, text(&out.stderr));
    assert!(stdout.contains("ns_per_item "), "{stdout}");
}

#[test]
fn imap_unordered_and_imap() {
    passes("imap_unordered", "imap_unordered ok: 1000 results; imap ok: 100 in order");
}

#[test]
fn apply_async_and_apply() {
    passes("apply_async", "apply_async ok: 50 results; apply(square, 12) = 144");
}

#[test]
fn starmap_unpacks_tuples() {
    passes("starmap", "starmap ok: 1000 results");
}

#[test]
fn a_panicking_task_names_its_item_and_the_pool_serves_on() {
    passes("panic", "panic reported: item Some(7): item seven is refused");
    passes("panic", "pool still serves after the panic: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]");
}

#[test]
fn results_that_do_not_decode_end_the_call_naming_their_bytes_and_chunk() {
    let Some((out, _)) = mpi_map("undecodable") else { return };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    // A u64 of 3 is one postcard byte; the first chunk of 5 u64s below 128 is 6 bytes.
    // Each line holds the typed fields, then the error's message naming them.
    let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_default().to_owned();
    let apply = line("apply: Decode: ");
    let map = line("map: Decode: ");
    for (got, expect) in [
        (&apply, "apply: Decode: 1 bytes, item None, as "),
        (&apply, "Undecodable: cannot decode a result of 1 encoded bytes as "),
        (&apply, "Serde Deserialization Error"), // postcard's message for a custom error
        (&map, "map: Decode: 6 bytes, item Some(0), as "),
        (&map, "Vec<"),
        (&map, "cannot decode a result of 6 encoded bytes as "),
        (&map, "(the results of the chunk from item 0): "),
    ] {
        assert!(got.contains(expect), "expected {expect:?} in {got:?}\nstdout: {stdout}\nstderr: {stderr}");
    }
    assert!(stdout.contains("pool still serves: [0, 1, 4, 9]"), "stdout: {stdout}\nstderr: {stderr}");
}

#[test]
fn a_rank_killed_mid_map_ends_the_job_non_zero_and_never_hangs() {
    let Some((out, took)) = mpi_map("kill") else { return };
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "mpiexec exited 0 although a rank was killed\nstdout: {stdout}");
    assert!(!stdout.contains("kill: map returned"), "the map returned although a rank died: {stdout}");
    eprintln!("a rank SIGKILLed mid-map: mpiexec exited with {} after {took:?}", out.status);
}

/// Two network namespaces joined by a bridge in the root namespace act as two hosts;
/// hydra starts its proxies in them through `netns-launcher.sh` instead of ssh.
struct TwoHosts {
    names: [String; 2],
    bridge: String,
}

impl TwoHosts {
    const BRIDGE_IP: &'static str = "10.77.0.1";
    const HOST_IPS: [&'static str; 2] = ["10.77.0.2", "10.77.0.3"];

    fn make() -> Result<TwoHosts, String> {
        let tag = std::process::id() % 100_000;
        let hosts =
            TwoHosts { names: [format!("mproc-a{tag}"), format!("mproc-b{tag}")], bridge: format!("mpbr{tag}") };
        let ip = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("ip {}: {}", args.join(" "), text(&out.stderr).trim()))
            }
        };
        let br = hosts.bridge.as_str();
        ip(&["link", "add", br, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}/24", Self::BRIDGE_IP), "dev", br])?;
        ip(&["link", "set", br, "up"])?;
        for (ns, addr) in hosts.names.iter().zip(Self::HOST_IPS) {
            let veth = format!("{}v", &ns[..ns.len().min(13)]);
            ip(&["netns", "add", ns])?;
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
            ip(&["link", "set", &veth, "master", br, "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}

/// This run once hung at exit in about one run of three: MPICH before 4.2 finalizes
/// UCX's TCP endpoints without holding the ranks together first, and a flush over TCP
/// needs the peer's answer; `mproc_mpi::main` now makes the barrier before
/// `MPI_Finalize` (see `mpi/src/finalize.rs`).
#[test]
fn ranks_in_two_namespaces_talk_over_tcp() {
    let Some(mpiexec) = mpiexec() else {
        eprintln!("skipped: no mpiexec on PATH");
        return;
    };
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: making network namespaces needs root");
        return;
    }
    let hosts = match TwoHosts::make() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("skipped: cannot make two network namespaces here: {e}");
            return;
        }
    };
    let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netns-launcher.sh");
    let map = format!("{}={},{}={}", TwoHosts::HOST_IPS[0], hosts.names[0], TwoHosts::HOST_IPS[1], hosts.names[1]);
    let exe = example();
    for (mode, expect) in [("map", "map ok: 10000 results on 2 workers"), ("netns", "worker namespaces: 2")] {
        let mut cmd = Command::new(&mpiexec);
        // UCX_TLS=tcp: the namespaces share this machine's memory, and UCX would
        // otherwise pass messages between them through shared memory, not TCP.
        cmd.args(["-localhost", TwoHosts::BRIDGE_IP, "-launcher", "ssh", "-launcher-exec"])
            .arg(&launcher)
            .args(["-hosts", &TwoHosts::HOST_IPS.join(","), "-n", "3", "-genv", "UCX_TLS", "tcp"])
            .arg(&exe)
            .arg(mode)
            .env("MPROC_NETNS_MAP", &map);
        let (out, _) = run(cmd);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "mpi_map {mode} across namespaces: {}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        assert!(stdout.contains(expect), "mpi_map {mode}: expected {expect:?}\nstdout: {stdout}\nstderr: {stderr}");
    }
}
