//! Proxies crossing into other processes other than by fork: as `Shared` arguments of a
//! spawned child (the token carries the authkey), serde-encoded inside queue items and
//! pool task arguments (the receiver uses the authkey its process knows). In each case
//! the receiver takes its own reference, and the server's counts return to the
//! creator's once the receiver is gone.

use std::time::Duration;

use mproc_manager::{EventProxy, ListProxy, Manager};
use mproc_process::{entry, Entry, Process, Shared};
use mproc_testkit::{eventually, finish, fork_process};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize)]
struct SpawnArgs {
    list: Shared<ListProxy<u32>>,
    go: Shared<EventProxy>,
    n: u32,
}

/// In the spawned child: append through the imported proxy, then through a copy
/// decoded from its serde form (the import taught this process the authkey), drop the
/// copy, and hold the imported references until the parent says go.
fn spawned_appends(a: SpawnArgs) {
    mproc_testkit::arm_watchdog(30);
    let code = (|| {
        a.list.append(a.n).map_err(|_| 2)?;
        let bytes = postcard::to_allocvec(&*a.list).map_err(|_| 3)?;
        let again: ListProxy<u32> = postcard::from_bytes(&bytes).map_err(|_| 4)?;
        again.append(a.n + 1).map_err(|_| 5)?;
        drop(again);
        a.go.wait_timeout(T).map_err(|_| 6)
    })();
    std::process::exit(code.err().unwrap_or(0));
}
static SPAWNED_APPENDS: Entry<SpawnArgs> = entry!(spawned_appends);

#[test]
fn proxies_passed_to_a_spawned_child_take_and_release_references() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u32>().unwrap();
    let go = manager.event().unwrap();
    let before = manager.stats().unwrap();
    let args = SpawnArgs { list: Shared(list.clone()), go: Shared(go.clone()), n: 40 };
    let mut child = Process::builder().spawn_entry(&SPAWNED_APPENDS, args).build();
    child.start().unwrap();
    // The child holds one reference to each object it imported (its decoded copy's
    // reference came and went) and is waiting for `go`.
    let holding = |s: mproc_manager::ServerStats| {
        s.references == before.references + 2 && s.clients == before.clients + 1 && s.objects == before.objects
    };
    assert!(
        eventually(T, || list.len().unwrap() == 2 && holding(manager.stats().unwrap())),
        "{:?} vs {before:?}",
        manager.stats()
    );
    go.set().unwrap();
    assert_eq!(finish(&mut child, T), 0);
    let mut got = list.snapshot().unwrap();
    got.sort();
    assert_eq!(got, [40, 41]);
    assert!(eventually(T, || manager.stats().unwrap() == before), "{:?} vs {before:?}", manager.stats());
}

/// Queue items between the test and a forked child.
#[derive(Serialize, Deserialize)]
enum Msg {
    Job(ListProxy<u32>, u32),
    Ready,
    Go,
    Done(ListProxy<u32>),
    Bye,
}

#[test]
fn a_proxy_inside_a_queue_item_keeps_its_object_alive_in_the_receiver() {
    let manager = Manager::start().unwrap();
    let jobs = mproc_ipc::Queue::<Msg>::new().unwrap();
    let back = mproc_ipc::Queue::<Msg>::new().unwrap();
    let (j, b) = (jobs.clone(), back.clone());
    // Forked before the list exists: the child gets the proxy only as queue bytes.
    let mut child = fork_process(30, move || {
        let Ok(Msg::Job(list, n)) = j.get_timeout(T) else { return 1 };
        if b.put(Msg::Ready).is_err() {
            return 2;
        }
        let Ok(Msg::Go) = j.get_timeout(T) else { return 3 };
        if list.append(n).is_err() {
            return 4;
        }
        if b.put(Msg::Done(list.clone())).is_err() {
            return 5;
        }
        let Ok(Msg::Bye) = j.get_timeout(T) else { return 6 };
        0
    });
    let empty = manager.stats().unwrap();
    let list = manager.list::<u32>().unwrap();
    jobs.put(Msg::Job(list.clone(), 7)).map_err(|e| e.to_string()).unwrap();
    assert!(matches!(back.get_timeout(T), Ok(Msg::Ready)));
    let s = manager.stats().unwrap();
    assert_eq!((s.objects, s.references), (empty.objects + 1, empty.references + 2), "creator + receiver");
    // The creator lets go: the receiver's reference keeps the list alive.
    drop(list);
    let s = manager.stats().unwrap();
    assert_eq!((s.objects, s.references), (empty.objects + 1, empty.references + 1), "receiver only");
    jobs.put(Msg::Go).map_err(|e| e.to_string()).unwrap();
    let Ok(Msg::Done(list)) = back.get_timeout(T) else { panic!("the child did not send the list back") };
    assert_eq!(list.snapshot().unwrap(), [7]);
    jobs.put(Msg::Bye).map_err(|e| e.to_string()).unwrap();
    assert_eq!(finish(&mut child, T), 0);
    // The receiver is gone: back to the creator's one reference, then none.
    let creator_only =
        |s: mproc_manager::ServerStats| (s.objects, s.references) == (empty.objects + 1, empty.references + 1);
    assert!(eventually(T, || creator_only(manager.stats().unwrap())), "{:?} vs {empty:?}", manager.stats());
    drop(list);
    assert!(eventually(T, || manager.stats().unwrap() == empty), "{:?} vs {empty:?}", manager.stats());
}

/// A process of the tree decodes a proxy of a manager started with the default
/// authkey (the tree's `mproc_process::authkey()`, as CPython's
/// `current_process().authkey`) even when it was forked before the manager
/// started; a manager with an explicit authkey is reachable only once the
/// process learns that key (`Manager::connect`).
#[test]
fn proxies_decode_with_the_tree_authkey_and_explicit_keys_must_be_learned() {
    let keys = mproc_ipc::Queue::<(Vec<u8>, Vec<u8>, String, Vec<u8>)>::new().unwrap();
    let k = keys.clone();
    // Forked before either manager starts.
    let mut child = fork_process(30, move || {
        let Ok((default_list, explicit_list, path, key)) = k.get_timeout(T) else { return 1 };
        match postcard::from_bytes::<ListProxy<u32>>(&default_list).map(|l| l.snapshot()) {
            Ok(Ok(v)) if v == [4] => {}
            _ => return 2,
        }
        if postcard::from_bytes::<ListProxy<u32>>(&explicit_list).is_ok() {
            return 3;
        }
        let Ok(_m) = Manager::connect(mproc_manager::Address::Unix(path.into()), &key) else { return 4 };
        match postcard::from_bytes::<ListProxy<u32>>(&explicit_list).map(|l| l.snapshot()) {
            Ok(Ok(v)) if v == [5] => 0,
            _ => 5,
        }
    });
    let default = Manager::start().unwrap();
    assert_eq!(default.authkey(), mproc_process::authkey(), "the default authkey is the tree's");
    let default_list = default.list_from([4u32]).unwrap();
    let explicit = mproc_manager::ManagerBuilder::new().authkey(b"not the tree's key").start().unwrap();
    let list = explicit.list_from([5u32]).unwrap();
    let encoded = postcard::to_allocvec(&list).unwrap();
    let Some(mproc_manager::Address::Unix(path)) = explicit.address().cloned() else { panic!("Unix socket") };
    let path = path.to_str().unwrap().to_string();
    assert!(
        !encoded.windows(explicit.authkey().len()).any(|w| w == explicit.authkey()),
        "the serde form never carries the authkey"
    );
    let default_encoded = postcard::to_allocvec(&default_list).unwrap();
    keys.put((default_encoded, encoded, path, explicit.authkey().to_vec())).map_err(|e| e.to_string()).unwrap();
    assert_eq!(finish(&mut child, T), 0);
}

#[test]
fn a_proxy_of_a_dead_object_does_not_decode() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u32>().unwrap();
    let encoded = postcard::to_allocvec(&list).unwrap();
    drop(list);
    assert!(postcard::from_bytes::<ListProxy<u32>>(&encoded).is_err(), "IncRef of a freed object fails");
    assert_eq!(manager.stats().unwrap().objects, 0);
}

fn append_in_worker((list, i): (ListProxy<u32>, u32)) -> bool {
    list.append(i).is_ok()
}

/// The seed's "Manager with Pool" pattern: pool tasks take a proxy argument.
#[test]
fn pool_tasks_take_proxy_arguments() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u32>().unwrap();
    let before = manager.stats().unwrap();
    let pool = mproc_pool::Pool::new(2).unwrap();
    let ok = pool.map(append_in_worker, (0..8).map(|i| (list.clone(), i))).unwrap();
    assert_eq!(ok, [true; 8]);
    pool.close();
    pool.join().unwrap();
    let mut got = list.snapshot().unwrap();
    got.sort();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
    assert!(eventually(T, || manager.stats().unwrap() == before), "{:?} vs {before:?}", manager.stats());
}
