//! The spawn start method: a fresh exec of this test binary runs registered
//! entries (intercepted before `main`, so the test harness never runs twice).

mod common;

use common::DEADLINE;
use mproc_process::{current_process, entry, parent_process, Entry, Process, ProcessError, Shared, EXIT_SPAWN_FAILED};
use mproc_shm::{Segment, Value};
use mproc_sync::Lock;
use mproc_testkit::{arm_watchdog, eventually, finish};
use serde::{Deserialize, Serialize};

fn exit_with(code: i32) {
    arm_watchdog(30);
    std::process::exit(code);
}
static EXIT_WITH: Entry<i32> = entry!(exit_with);

fn just_return(_: ()) {
    arm_watchdog(30);
}
static JUST_RETURN: Entry<()> = entry!(just_return);

fn panics(msg: String) {
    arm_watchdog(30);
    panic!("{msg}");
}
static PANICS: Entry<String> = entry!(panics);

#[test]
fn spawn_exit_codes() {
    let run = |b: mproc_process::Builder| {
        let mut p = b.build();
        p.start().unwrap();
        finish(&mut p, DEADLINE)
    };
    assert_eq!(run(Process::builder().spawn_entry(&EXIT_WITH, 1)), 1);
    assert_eq!(run(Process::builder().spawn_entry(&EXIT_WITH, 42)), 42);
    assert_eq!(run(Process::builder().spawn_entry(&JUST_RETURN, ())), 0);
    assert_eq!(run(Process::builder().spawn_entry(&PANICS, "spawned boom".into())), 1);
}

#[derive(Serialize, Deserialize)]
struct Handles {
    counter: Shared<Value<u64>>,
    seg: Shared<Segment>,
    named: Shared<Segment>,
    lock: Shared<Lock>,
    waiting: Shared<Value<u32>>,
    add: u64,
}

fn use_handles(h: Handles) {
    arm_watchdog(30);
    // The parent holds the lock: the child sees it held and waits for it.
    let held_by_parent = h.lock.try_lock().is_err();
    h.waiting.set(1);
    let guard = h.lock.lock_timeout(DEADLINE).expect("the parent releases the lock");
    h.counter.set(h.counter.get() + if held_by_parent { h.add } else { 1000 });
    drop(guard);
    // SAFETY: the test gave the child a segment of at least 16 bytes, and the parent
    // does not touch it until the child has been joined.
    unsafe {
        let p = h.seg.as_ptr();
        std::ptr::copy_nonoverlapping(b"from the child".as_ptr(), p, 14);
        *h.named.as_ptr() = 0x5a;
    }
}
static USE_HANDLES: Entry<Handles> = entry!(use_handles);

/// A spawn child receives a Lock, a Value, an anonymous segment (inherited fd)
/// and a named segment (by name), and uses all of them: it finds the lock held by
/// the parent, waits for it, and writes through the others.
#[test]
fn spawn_child_uses_lock_value_and_segments() {
    let counter = Value::<u64>::new(100).unwrap();
    let seg = Segment::anonymous(4096).unwrap();
    let name = format!("mproc-test-spawn-{}", std::process::id());
    let named = Segment::create(&name, 64).unwrap();
    let lock = Lock::new().unwrap();
    let waiting = Value::<u32>::new(0).unwrap();
    let args = Handles {
        counter: Shared(counter.clone()),
        seg: Shared(seg.clone()),
        named: Shared(named.clone()),
        lock: Shared(lock.clone()),
        waiting: Shared(waiting.clone()),
        add: 23,
    };
    let guard = lock.lock().unwrap();
    let mut p = Process::builder().name("handles").spawn_entry(&USE_HANDLES, args).build();
    p.start().unwrap();
    assert!(eventually(DEADLINE, || waiting.get() == 1), "the child did not reach the lock");
    assert_eq!(counter.get(), 100, "the child must wait for the lock");
    drop(guard);
    assert_eq!(finish(&mut p, DEADLINE), 0);
    assert!(!lock.is_locked());
    assert_eq!(counter.get(), 123);
    // SAFETY: the child has ended; the segment is 4096 bytes.
    let bytes = unsafe { std::slice::from_raw_parts(seg.as_ptr(), 14) };
    assert_eq!(bytes, b"from the child");
    // SAFETY: as above, 64 bytes.
    assert_eq!(unsafe { *named.as_ptr() }, 0x5a);
}

fn same_authkey(parent: Vec<u8>) {
    arm_watchdog(30);
    if mproc_process::authkey() != parent.as_slice() {
        mproc_process::exit(3);
    }
}
static SAME_AUTHKEY: Entry<Vec<u8>> = entry!(same_authkey);

/// A spawned child takes its parent's authkey (Python's
/// `current_process().authkey`), as does a forked one.
#[test]
fn children_inherit_the_authkey() {
    let key = mproc_process::authkey().to_vec();
    assert_eq!(key.len(), 32);
    let mut p = Process::builder().spawn_entry(&SAME_AUTHKEY, key.clone()).build();
    p.start().unwrap();
    assert_eq!(finish(&mut p, DEADLINE), 0);
    let k = key.clone();
    let mut p = Process::new(move || {
        if mproc_process::authkey() != k.as_slice() {
            mproc_process::exit(3);
        }
    });
    p.start().unwrap();
    assert_eq!(finish(&mut p, DEADLINE), 0);
}

fn sole_owner(seg: Shared<Segment>) {
    arm_watchdog(30);
    if seg.len() != 8192 {
        mproc_process::exit(3);
    }
}
static SOLE_OWNER: Entry<Shared<Segment>> = entry!(sole_owner);

/// A handle whose only owner is the arguments (moved in, no clone kept) stays
/// open until the child has inherited its fd.
#[test]
fn arguments_that_solely_own_a_handle_live_until_the_child_has_it() {
    let seg = Segment::anonymous(8192).unwrap();
    let mut p = Process::builder().name("sole-owner").spawn_entry(&SOLE_OWNER, Shared(seg)).build();
    p.start().unwrap();
    assert_eq!(finish(&mut p, DEADLINE), 0);
}

fn identity(expect: (String, u32, bool)) {
    arm_watchdog(30);
    let me = current_process();
    let parent = parent_process();
    let ok = me.name() == expect.0
        && me.pid() == std::process::id()
        && me.daemon() == expect.2
        && parent.is_some_and(|p| p.pid() == expect.1);
    std::process::exit(if ok { 7 } else { 2 });
}
static IDENTITY: Entry<(String, u32, bool)> = entry!(identity);

#[test]
fn spawn_child_knows_its_name_and_parent() {
    for daemon in [false, true] {
        let args = ("spawned-one".to_owned(), std::process::id(), daemon);
        let mut p = Process::builder().name("spawned-one").daemon(daemon).spawn_entry(&IDENTITY, args).build();
        p.start().unwrap();
        assert_eq!(finish(&mut p, DEADLINE), 7, "daemon {daemon}");
    }
}

#[test]
fn entry_names_are_module_paths() {
    assert_eq!(EXIT_WITH.name(), "spawn::exit_with");
    assert!(mproc_process::registered_entries().contains(&"spawn::use_handles"));
}

#[test]
fn unknown_entry_is_a_spawn_error() {
    let err = mproc_process::__testing::spawn_unchecked("ghost", "spawn::no_such_entry", vec![], false).unwrap_err();
    let ProcessError::Spawn { name, detail } = &err else { panic!("expected a Spawn error, got {err:?}") };
    assert_eq!(name, "ghost");
    assert!(detail.contains("spawn::no_such_entry") && detail.contains("not registered"), "{detail}");
    assert!(detail.contains(&format!("exit code {EXIT_SPAWN_FAILED}")), "{detail}");
}

#[test]
fn stale_binary_is_a_spawn_error() {
    let err = mproc_process::__testing::spawn_unchecked("stale", EXIT_WITH.name(), vec![0], true).unwrap_err();
    let ProcessError::Spawn { detail, .. } = &err else { panic!("expected a Spawn error, got {err:?}") };
    assert!(detail.contains("stale or foreign binary"), "{detail}");
}

#[test]
fn undecodable_arguments_are_a_spawn_error() {
    // `String` arguments announced as 200 bytes long but holding 1.
    let err =
        mproc_process::__testing::spawn_unchecked("garbled", PANICS.name(), vec![200, 1, b'x'], false).unwrap_err();
    let ProcessError::Spawn { detail, .. } = &err else { panic!("expected a Spawn error, got {err:?}") };
    assert!(detail.contains("did not decode"), "{detail}");
}

#[test]
fn shared_outside_spawn_is_an_encode_error() {
    let v = Shared(Value::<u64>::new(0).unwrap());
    assert!(postcard::to_allocvec(&v).is_err());
}

/// A handle that refuses to cross: on export, or (in the child) on import.
struct Refuses {
    on_export: bool,
}

impl mproc_shm::Share for Refuses {
    type Token = ();
    fn export(&self, _: &mut mproc_shm::Exports) -> mproc_shm::Result<()> {
        match self.on_export {
            true => Err(mproc_shm::ShmError::BadToken { what: "Refuses", detail: "no export today".into() }),
            false => Ok(()),
        }
    }
    fn import(_: ()) -> mproc_shm::Result<Refuses> {
        Err(mproc_shm::ShmError::BadToken { what: "Refuses", detail: "no import today".into() })
    }
}

fn takes_refuses(_: Shared<Refuses>) {}
static TAKES_REFUSES: Entry<Shared<Refuses>> = entry!(takes_refuses);

/// Why a handle failed to cross reaches the caller (postcard alone keeps only
/// "Serde Serialization Error").
#[test]
fn a_handle_that_fails_to_cross_names_its_reason() {
    let mut p = Process::builder().spawn_entry(&TAKES_REFUSES, Shared(Refuses { on_export: true })).build();
    match p.start() {
        Err(ProcessError::Encode { detail, .. }) => assert!(detail.contains("no export today"), "{detail}"),
        other => panic!("expected an encode error, got {other:?}"),
    }
    let mut p = Process::builder().spawn_entry(&TAKES_REFUSES, Shared(Refuses { on_export: false })).build();
    match p.start() {
        Err(ProcessError::Spawn { detail, .. }) => assert!(detail.contains("no import today"), "{detail}"),
        other => panic!("expected a spawn error, got {other:?}"),
    }
}
