//! The spawn start method: a fresh exec of this binary runs a registered entry.
//!
//! # How an entry is registered and found
//! [`entry!`](crate::entry) puts an [`EntryDef`] — the function's path (`module::fn`)
//! and a decoder — into a link-time list (a `linkme` distributed slice), so every
//! entry of every crate linked into the binary is known before `main` without any
//! runtime registration. The parent looks the entry up by the `&Entry<A>` it is
//! handed and sends the child its *name*.
//!
//! # How the child starts
//! The parent execs `/proc/self/exe` (the very file it runs) with `MPROC_SPAWN`
//! naming two inherited fds: a memfd holding the postcard-encoded
//! [`SpawnRequest`], and the write end of a status pipe. This crate places a
//! function in `.init_array`, so the dynamic loader runs it **before `main`**: if
//! `MPROC_SPAWN` is set it runs the entry and `_exit`s, so the program's `main` —
//! or `cargo test`'s harness — never runs in the child, and a test binary needs no
//! dummy test. Without `MPROC_SPAWN` the hook returns at once.
//!
//! # What is checked (stale or foreign binaries)
//! Before it decodes anything the child checks the request's protocol version,
//! that its own executable has the identity the parent recorded (device, inode,
//! size and mtime of `/proc/self/exe`, and a hash of the names of all registered
//! entries), and that the entry name is registered. Any failure — and any argument
//! that fails to decode or any shared handle that fails to import — is written to
//! the status pipe and to stderr, and the child exits with [`EXIT_SPAWN_FAILED`]
//! before running anything; the parent's [`start`](crate::Process::start) returns
//! [`ProcessError::Spawn`](crate::ProcessError::Spawn) with that message. Nothing is
//! ever called through a function of the wrong type: the child only calls the
//! decoder that `entry!` generated for the named function, with the bytes the
//! parent encoded for that same function's argument type.
//!
//! # Shared handles
//! Arguments are any `Serialize + DeserializeOwned` type; a handle that implements
//! [`mproc_shm::Share`] goes inside as [`Shared<T>`]: serialising it exports the
//! handle (its fds are kept open across `exec` at the same numbers), deserialising
//! it in the child imports it. After the import the inherited fds are marked
//! close-on-exec again.
//!
//! The spawned child runs before std's runtime set-up in `main`: no stack-overflow
//! message (a plain SIGSEGV instead), SIGPIPE at its default action.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::sync::OnceLock;
use std::time::Duration;

use mproc_shm::sys::Deadline;
use mproc_shm::{Exports, Share};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::current::{self, ProcessInfo};
use crate::fork;
use crate::registry;
use crate::ProcessError;

/// The exit code of a spawned child that could not run its entry: the entry is not
/// registered, the binary is not the parent's, or the arguments did not decode.
pub const EXIT_SPAWN_FAILED: i32 = 121;

/// The environment variable that marks a spawned child.
const ENV: &str = "MPROC_SPAWN";

/// The version of the parent–child protocol; a mismatch is refused.
const PROTOCOL: u32 = 2;

/// How long `start` waits for a spawned child to report that its entry is running.
pub const SPAWN_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// An entry's call, ready to run: the function with its decoded arguments.
#[doc(hidden)]
pub type Call = Box<dyn FnOnce()>;

/// An entry registered by [`entry!`](crate::entry). Not for direct use.
#[doc(hidden)]
pub struct EntryDef {
    /// `module_path::function`.
    pub name: &'static str,
    /// Decodes the arguments (importing shared handles) and returns the call.
    pub decode: fn(&[u8]) -> Result<Call, String>,
}

#[doc(hidden)]
pub mod private {
    pub use linkme;

    pub use super::EntryDef;
    use super::*;

    /// Every entry of the binary.
    #[linkme::distributed_slice]
    pub static ENTRIES: [EntryDef];

    /// The decoder `entry!` generates for `f`.
    pub fn decode<A: DeserializeOwned + 'static>(bytes: &[u8], f: fn(A)) -> Result<Call, String> {
        let args: A =
            postcard::from_bytes(bytes).map_err(|e| with_share_error(format!("the arguments did not decode: {e}")))?;
        Ok(Box::new(move || f(args)))
    }
}

/// A typed handle on an entry function `fn(A)` registered with
/// [`entry!`](crate::entry); pass it to [`Builder::spawn_entry`](crate::Builder::spawn_entry).
pub struct Entry<A> {
    def: &'static EntryDef,
    _args: PhantomData<fn(A)>,
}

impl<A> Entry<A> {
    #[doc(hidden)]
    pub const fn __new(def: &'static EntryDef, _f: fn(A)) -> Entry<A> {
        Entry { def, _args: PhantomData }
    }

    /// The entry's registered name, `module_path::function`.
    pub fn name(&self) -> &'static str {
        self.def.name
    }
}

impl<A> Clone for Entry<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for Entry<A> {}

impl<A> fmt::Debug for Entry<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Entry").field(&self.def.name).finish()
    }
}

/// Registers `function` (a `fn(A)` with `A: Serialize + DeserializeOwned`) as a
/// spawn entry and evaluates to its [`Entry<A>`].
///
/// ```
/// use mproc_process::{entry, Entry, Process};
/// fn add(args: (u32, u32)) {
///     std::process::exit((args.0 + args.1) as i32);
/// }
/// static ADD: Entry<(u32, u32)> = entry!(add);
/// # fn main() {
/// let mut p = Process::builder().spawn_entry(&ADD, (2, 3)).build();
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(p.exitcode(), Some(5));
/// # }
/// ```
#[macro_export]
macro_rules! entry {
    ($function:path) => {{
        #[$crate::__private::linkme::distributed_slice($crate::__private::ENTRIES)]
        #[linkme(crate = $crate::__private::linkme)]
        static ENTRY: $crate::__private::EntryDef = $crate::__private::EntryDef {
            name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!($function)),
            decode: |bytes| $crate::__private::decode(bytes, $function),
        };
        $crate::Entry::__new(&ENTRY, $function)
    }};
}

thread_local! {
    static EXPORTS: RefCell<Option<Exports>> = const { RefCell::new(None) };
}

/// A shared handle inside spawn arguments: serialising it exports `T` for the
/// child, deserialising it in the child imports it.
///
/// ```
/// use mproc_process::{entry, Entry, Process, Shared};
/// use mproc_shm::Value;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Args { counter: Shared<Value<u64>>, add: u64 }
/// fn bump(a: Args) { a.counter.set(a.counter.get() + a.add); }
/// static BUMP: Entry<Args> = entry!(bump);
/// # fn main() {
/// let counter = Value::new(1u64).unwrap();
/// let args = Args { counter: Shared(counter.clone()), add: 41 };
/// let mut p = Process::builder().spawn_entry(&BUMP, args).build();
/// p.start().unwrap();
/// p.join().unwrap();
/// assert_eq!(counter.get(), 42);
/// # }
/// ```
///
/// Serialising a `Shared` anywhere but in `Process::start` is an error.
#[derive(Debug, Clone)]
pub struct Shared<T>(pub T);

impl<T> Shared<T> {
    /// The handle.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

thread_local! {
    /// Why the last `Shared` export or import on this thread failed: postcard
    /// keeps only "Serde Serialization Error", so the spawn code adds this.
    static SHARE_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Records `why` for [`take_share_error`] and returns it as a serde error.
fn share_error<E: serde::ser::Error>(what: &str, why: String) -> E {
    let msg = format!("{what} {why}");
    let _ = SHARE_ERROR.try_with(|e| *e.borrow_mut() = Some(msg.clone()));
    E::custom(msg)
}

/// The reason the last `Shared` export or import failed on this thread, if any.
fn take_share_error() -> Option<String> {
    SHARE_ERROR.try_with(|e| e.borrow_mut().take()).ok().flatten()
}

/// `detail`, with the reason a `Shared` handle failed to cross if there was one.
fn with_share_error(detail: String) -> String {
    match take_share_error() {
        Some(why) => format!("{detail} ({why})"),
        None => detail,
    }
}

impl<T: Share> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let what = std::any::type_name::<T>();
        let token = EXPORTS.with(|cell| match cell.borrow_mut().as_mut() {
            Some(exports) => self.0.export(exports).map_err(|e| share_error(what, format!("cannot be exported: {e}"))),
            None => Err(share_error(what, "is serialised only by Process::start (spawn)".into())),
        })?;
        token.serialize(s)
    }
}

impl<'de, T: Share> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let token = T::Token::deserialize(d)?;
        let what = std::any::type_name::<T>();
        T::import(token).map(Shared).map_err(|e| {
            let msg = format!("{what} cannot be imported: {e}");
            let _ = SHARE_ERROR.try_with(|s| *s.borrow_mut() = Some(msg.clone()));
            D::Error::custom(msg)
        })
    }
}

/// What a spawn child runs: the entry and a deferred encoder of its arguments.
///
/// The encoder keeps the arguments: they live as long as the job, which
/// [`spawn`] holds until the child has imported them, so a handle whose only
/// owner is the arguments (a `Shared(connection)` moved in) keeps its fds open
/// until the child has inherited them.
pub(crate) struct SpawnJob {
    entry: &'static EntryDef,
    encode: Box<dyn Fn() -> Result<Vec<u8>, String> + Send>,
    /// Test hook: send an identity that cannot be this binary's.
    forge_exe: bool,
}

impl SpawnJob {
    pub(crate) fn new<A: Serialize + Send + 'static>(entry: &Entry<A>, args: A) -> SpawnJob {
        SpawnJob {
            entry: entry.def,
            encode: Box::new(move || postcard::to_allocvec(&args).map_err(|e| e.to_string())),
            forge_exe: false,
        }
    }

    /// A job naming an arbitrary entry with raw argument bytes: for tests of the
    /// child's checks.
    pub(crate) fn raw(entry: &'static EntryDef, bytes: Vec<u8>, forge_exe: bool) -> SpawnJob {
        SpawnJob { entry, encode: Box::new(move || Ok(bytes.clone())), forge_exe }
    }
}

/// The identity of an executable, compared by the child with its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExeId {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: i64,
    mtime_nsec: i64,
    entries: u64,
}

impl fmt::Display for ExeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dev {} inode {} size {} mtime {}.{:09} entries-hash {:016x}",
            self.dev, self.ino, self.size, self.mtime, self.mtime_nsec, self.entries
        )
    }
}

fn exe_id() -> Result<ExeId, String> {
    static ID: OnceLock<Result<ExeId, String>> = OnceLock::new();
    ID.get_or_init(|| {
        let st = rustix::fs::stat("/proc/self/exe").map_err(|e| format!("stat /proc/self/exe: {e}"))?;
        // FNV-1a over every registered entry name, in link order.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for e in private::ENTRIES.iter() {
            for &b in e.name.as_bytes().iter().chain(b"\0") {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        Ok(ExeId {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
            entries: h,
        })
    })
    .clone()
}

/// Everything the child needs, in the memfd.
#[derive(Debug, Serialize, Deserialize)]
struct SpawnRequest {
    protocol: u32,
    exe: ExeId,
    entry: String,
    name: String,
    daemon: bool,
    parent_pid: u32,
    parent_name: String,
    /// The parent's authkey, which the child takes as its own.
    authkey: Vec<u8>,
    inherited: Vec<RawFd>,
    args: Vec<u8>,
}

/// Starts a spawn child and waits until it runs its entry (or reports why not).
pub(crate) fn spawn(name: &str, daemon: bool, job: SpawnJob) -> Result<u32, ProcessError> {
    let spawn_err = |detail: String| ProcessError::Spawn { name: name.to_owned(), detail };
    // [1] Encode the arguments, exporting shared handles.
    let prev = EXPORTS.with(|c| c.replace(Some(Exports::new())));
    let encoded = (job.encode)();
    let exports = EXPORTS.with(|c| c.replace(prev)).unwrap_or_default();
    let args =
        encoded.map_err(|detail| ProcessError::Encode { name: name.to_owned(), detail: with_share_error(detail) })?;
    let parent = current::current_process();
    let request = SpawnRequest {
        protocol: PROTOCOL,
        exe: match exe_id().map_err(spawn_err)? {
            id if job.forge_exe => ExeId { ino: id.ino ^ 1, ..id },
            id => id,
        },
        entry: job.entry.name.to_owned(),
        name: name.to_owned(),
        daemon,
        parent_pid: parent.pid(),
        parent_name: parent.name().to_owned(),
        authkey: current::authkey().to_vec(),
        inherited: exports.fds().to_vec(),
        args,
    };
    let bytes = postcard::to_allocvec(&request)
        .map_err(|e| ProcessError::Encode { name: name.to_owned(), detail: format!("spawn request: {e}") })?;

    // [2] The request memfd and the status pipe, both close-on-exec here.
    let memfd = rustix::fs::memfd_create("mproc-spawn", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| ProcessError::os("memfd_create", name, e))?;
    std::fs::File::from(memfd.try_clone().map_err(|e| ProcessError::os("dup", name, e))?)
        .write_all(&bytes)
        .map_err(|e| ProcessError::os("write(memfd)", name, e))?;
    let (status_r, status_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| ProcessError::os("pipe", name, e))?;

    // [3] Exec /proc/self/exe with those fds (and the exported ones) inherited.
    let mut keep: Vec<RawFd> = exports.fds().to_vec();
    keep.push(memfd.as_raw_fd());
    keep.push(status_w.as_raw_fd());
    let parent_pid = parent.pid();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    cmd.env(ENV, format!("{}:{}", memfd.as_raw_fd(), status_w.as_raw_fd()));
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (fcntl, prctl, getppid, raise); `keep` is only
    // read.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if daemon {
                fork::die_with_parent(parent_pid);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| ProcessError::os("exec /proc/self/exe", name, e))?;
    let pid = child.id();
    drop(child); // std's handle does not wait; mproc reaps the child itself.
    drop(status_w);
    drop(memfd);

    // [4] Wait for the child's report: one 0 byte, or an error message.
    match wait_ready(pid, status_r) {
        Ok(()) => Ok(pid),
        Err((detail, hung)) => {
            let c = registry::adopt(pid, name.to_owned(), daemon);
            if hung {
                let _ = c.signal(rustix::process::Signal::KILL);
            }
            let status = match c.wait() {
                crate::child::Status::Exited(code) => format!("exit code {code}"),
                other => format!("{other:?}"),
            };
            Err(spawn_err(format!("{detail} (child pid {pid}, {status})")))
        }
    }
}

/// Waits for the child's report; on failure, the reason and whether the child
/// hung (and must be killed) rather than ended.
fn wait_ready(pid: u32, status_r: OwnedFd) -> Result<(), (String, bool)> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = Deadline::after(SPAWN_READY_TIMEOUT);
    let mut file = std::fs::File::from(status_r);
    let mut msg = Vec::new();
    loop {
        // Short slices: a fork child of another thread may hold a copy of the write
        // end, delaying EOF, so the child's own end is also watched.
        let mut fds = [PollFd::new(&file, PollFlags::IN)];
        let slice = Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
        let ready = poll(&mut fds, Some(&slice)).unwrap_or(0);
        if ready > 0 {
            let mut buf = [0u8; 4096];
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    msg.extend_from_slice(&buf[..n]);
                    if msg[0] == 0 {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err((format!("reading the child's status: {e}"), true)),
            }
        }
        let exited = rustix::process::waitid(
            rustix::process::WaitId::Pid(rustix::process::Pid::from_raw(pid as i32).expect("positive pid")),
            rustix::process::WaitIdOptions::EXITED
                | rustix::process::WaitIdOptions::NOWAIT
                | rustix::process::WaitIdOptions::NOHANG,
        );
        if matches!(exited, Ok(Some(_))) && ready == 0 {
            // Ended, and nothing left to read this round: take what was said.
            break;
        }
        if deadline.has_passed() {
            return Err((format!("the child did not report within {SPAWN_READY_TIMEOUT:?}"), true));
        }
    }
    match msg.first() {
        Some(0) => Ok(()),
        Some(_) => Err((String::from_utf8_lossy(&msg[1..]).into_owned(), false)),
        None => Err(("the child ended before reporting that its entry runs".into(), false)),
    }
}

/// Runs before `main` in every binary that links this crate (see the module docs).
#[used]
#[link_section = ".init_array"]
static SPAWN_HOOK: extern "C" fn() = spawn_hook;

extern "C" fn spawn_hook() {
    let Some(value) = std::env::var_os(ENV) else { return };
    // SAFETY: before `main`, no other thread exists yet to read the environment.
    unsafe { std::env::remove_var(ENV) };
    let (status_fd, setup) = child_setup(value);
    let report = |bytes: &[u8]| {
        if let Some(fd) = status_fd {
            // SAFETY: `fd` is the inherited status pipe, which the child owns and
            // closes here, once.
            let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let _ = f.write_all(bytes);
        }
    };
    fork::install_panic_hook();
    match setup {
        Ok(call) => {
            report(&[0]);
            fork::run_target(move || {
                call();
                let _ = std::io::stdout().flush();
            })
        }
        Err(msg) => {
            let me = current::current_process();
            fork::write_stderr(format!("mproc spawn child (pid {}): {msg}\n", me.pid()).as_bytes());
            let mut bytes = vec![1u8];
            bytes.extend_from_slice(msg.as_bytes());
            report(&bytes);
            fork::exit_now(EXIT_SPAWN_FAILED)
        }
    }
}

/// Reads and checks the request; returns the status fd (if it could be parsed) and
/// the entry call ready to run, or why not.
fn child_setup(value: OsString) -> (Option<RawFd>, Result<Call, String>) {
    let value = value.to_string_lossy().into_owned();
    let Some((memfd, status)) = value.split_once(':').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
    else {
        return (None, Err(format!("malformed {ENV}={value:?}")));
    };
    (Some(status), setup_from(memfd))
}

fn setup_from(memfd: RawFd) -> Result<Call, String> {
    // SAFETY: the parent passed this fd for us alone; it is closed when `file` drops.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(memfd) });
    let mut bytes = Vec::new();
    // The parent's write left the shared file offset at the end.
    std::io::Seek::rewind(&mut file).map_err(|e| format!("seeking the spawn request fd {memfd}: {e}"))?;
    file.read_to_end(&mut bytes).map_err(|e| format!("reading the spawn request from fd {memfd}: {e}"))?;
    drop(file);
    let req: SpawnRequest = postcard::from_bytes(&bytes).map_err(|e| format!("malformed spawn request: {e}"))?;
    if req.protocol != PROTOCOL {
        return Err(format!("spawn protocol {} from the parent, this binary speaks {PROTOCOL}", req.protocol));
    }
    let mine = exe_id()?;
    if req.exe != mine {
        return Err(format!("stale or foreign binary: the parent runs [{}], this child runs [{mine}]", req.exe));
    }
    let Some(entry) = private::ENTRIES.iter().find(|e| e.name == req.entry) else {
        return Err(format!("entry {:?} is not registered in this binary (stale or foreign binary?)", req.entry));
    };
    if req.daemon {
        // Set before exec too; checked again in case the parent died meanwhile.
        fork::die_with_parent(req.parent_pid);
    }
    current::install(
        ProcessInfo::new(req.name, mproc_shm::sys::pid(), req.daemon),
        ProcessInfo::new(req.parent_name, req.parent_pid, false),
    );
    current::set_authkey(&req.authkey);
    let call = (entry.decode)(&req.args)?;
    for fd in req.inherited {
        // Imported handles hold their own (close-on-exec) duplicates or took the fd
        // over; either way it must not leak into programs this child execs.
        // SAFETY: fcntl(F_SETFD) on an fd number touches no memory.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(call)
}

/// Lists the registered entries' names (for diagnostics).
pub fn registered_entries() -> Vec<&'static str> {
    private::ENTRIES.iter().map(|e| e.name).collect()
}
