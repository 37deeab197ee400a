//! Unit tests of the server core and the proxies over the in-memory transport.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::{Endpoint, Target};
use crate::memory;
use crate::state::ServerState;
use crate::value::{Dict, Value};
use crate::wire::{from_bytes, to_bytes, Reply, Request, Response};
use crate::{Manager, ManagerError, Registry, Served};

fn mem_manager(registry: Registry) -> (Manager, Arc<ServerState>) {
    let state = ServerState::new(registry);
    let target = Target::new(Endpoint::Memory(state.clone()));
    (Manager { target, server: None }, state)
}

/// Polls `f` until it holds or 5 s pass.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::yield_now();
    }
    f()
}

#[test]
fn list_methods() {
    let (m, _) = mem_manager(Registry::sync());
    let l = m.list::<String>().unwrap();
    l.append("a".into()).unwrap();
    l.extend(["b".to_string(), "c".to_string()]).unwrap();
    assert_eq!(l.len().unwrap(), 3);
    assert_eq!(l.get(-1).unwrap(), "c");
    l.set(0, "A".into()).unwrap();
    l.insert(1, "x".into()).unwrap();
    l.insert(-100, "first".into()).unwrap();
    assert_eq!(l.snapshot().unwrap(), ["first", "A", "x", "b", "c"]);
    assert_eq!(l.index(&"x".into()).unwrap(), 2);
    l.remove(&"x".into()).unwrap();
    assert_eq!(l.pop().unwrap(), "c");
    assert_eq!(l.pop_at(0).unwrap(), "first");
    assert_eq!(l.snapshot().unwrap(), ["A", "b"]);
    assert_eq!(l.get(2), Err(ManagerError::IndexOutOfRange { index: 2, len: 2 }));
    assert_eq!(l.get(-3), Err(ManagerError::IndexOutOfRange { index: -3, len: 2 }));
    assert_eq!(l.remove(&"zz".into()), Err(ManagerError::ValueNotFound));
    l.clear().unwrap();
    assert!(l.is_empty().unwrap());
    assert!(matches!(l.pop(), Err(ManagerError::IndexOutOfRange { .. })));
    let l2 = m.list_from([1u8, 2, 3]).unwrap();
    assert_eq!(l2.snapshot().unwrap(), [1, 2, 3]);
}

#[test]
fn dict_methods_keep_insertion_order() {
    let (m, _) = mem_manager(Registry::sync());
    let d = m.dict::<String, i32>().unwrap();
    assert_eq!(d.insert("b".into(), 2).unwrap(), None);
    assert_eq!(d.insert("a".into(), 1).unwrap(), None);
    assert_eq!(d.insert("b".into(), 20).unwrap(), Some(2));
    assert_eq!(d.get(&"b".into()).unwrap(), Some(20));
    assert_eq!(d.get(&"zz".into()).unwrap(), None);
    assert!(d.contains(&"a".into()).unwrap());
    assert_eq!(d.keys().unwrap(), ["b", "a"]);
    assert_eq!(d.values().unwrap(), [20, 1]);
    assert_eq!(d.items().unwrap(), [("b".to_string(), 20), ("a".to_string(), 1)]);
    assert_eq!(d.len().unwrap(), 2);
    assert_eq!(d.remove(&"a".into()).unwrap(), 1);
    assert_eq!(d.remove(&"a".into()), Err(ManagerError::KeyMissing { key: "'a'".into() }));
}

#[test]
fn namespace_value_array() {
    let (m, _) = mem_manager(Registry::sync());
    let ns = m.namespace().unwrap();
    ns.set("x", 5u64).unwrap();
    ns.set("name", "bob".to_string()).unwrap();
    assert_eq!(ns.get::<u64>("x").unwrap(), 5);
    assert_eq!(ns.get::<String>("name").unwrap(), "bob");
    assert_eq!(ns.get::<u64>("nope"), Err(ManagerError::AttributeMissing { name: "nope".into() }));
    assert_eq!(ns.names().unwrap(), ["name", "x"]);
    ns.del("x").unwrap();
    assert!(ns.del("x").is_err());

    let v = m.value(1.5f64).unwrap();
    v.set(2.5).unwrap();
    assert_eq!(v.get().unwrap(), 2.5);

    let a = m.array([0i32; 4]).unwrap();
    a.set(3, 9).unwrap();
    assert_eq!(a.snapshot().unwrap(), [0, 0, 0, 9]);
    assert_eq!(a.len().unwrap(), 4);
    assert!(matches!(a.set(4, 1), Err(ManagerError::IndexOutOfRange { index: 4, len: 4 })));
}

#[test]
fn queue_and_joinable_queue() {
    let (m, _) = mem_manager(Registry::sync());
    let q = m.queue_bounded::<u32>(2).unwrap();
    q.put(1).unwrap();
    q.try_put(2).unwrap();
    assert!(q.full().unwrap());
    assert_eq!(q.try_put(3), Err(ManagerError::QueueFull));
    assert_eq!(
        q.put_timeout(3, Duration::from_millis(20)),
        Err(ManagerError::Timeout { after: Duration::from_millis(20) })
    );
    assert_eq!(q.qsize().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get_timeout(Duration::from_secs(1)).unwrap(), 2);
    assert_eq!(q.try_get(), Err(ManagerError::QueueEmpty));
    assert_eq!(
        q.get_timeout(Duration::from_millis(20)),
        Err(ManagerError::Timeout { after: Duration::from_millis(20) })
    );
    assert!(q.empty().unwrap());

    // A blocked get is woken by a put from another thread.
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.get_timeout(Duration::from_secs(10)));
    q.put(42).unwrap();
    assert_eq!(t.join().unwrap().unwrap(), 42);

    let jq = m.joinable_queue::<u32>().unwrap();
    jq.put(1).unwrap();
    jq.put(2).unwrap();
    assert!(matches!(jq.join_timeout(Duration::from_millis(20)), Err(ManagerError::Timeout { .. })));
    let jq2 = jq.clone();
    let worker = std::thread::spawn(move || {
        for _ in 0..2 {
            jq2.get_timeout(Duration::from_secs(10)).unwrap();
            jq2.task_done().unwrap();
        }
    });
    jq.join_timeout(Duration::from_secs(10)).unwrap();
    worker.join().unwrap();
    assert_eq!(jq.task_done(), Err(ManagerError::TooManyTaskDone));
}

#[test]
fn locks_semaphores_event() {
    let (m, _) = mem_manager(Registry::sync());
    let l = m.lock().unwrap();
    {
        let _g = l.lock().unwrap();
        assert!(l.locked().unwrap());
        let l2 = l.clone();
        let other = std::thread::spawn(move || l2.acquire_with(true, Some(Duration::from_millis(30))).unwrap());
        assert!(!other.join().unwrap(), "a held Lock must not be acquired by another thread");
    }
    assert!(!l.locked().unwrap());
    assert!(matches!(l.release(), Err(ManagerError::NotHeld { .. })));

    let r = m.rlock().unwrap();
    r.acquire().unwrap();
    r.acquire().unwrap();
    let r2 = r.clone();
    let other = std::thread::spawn(move || (r2.try_lock().is_ok(), r2.release()));
    let (got, rel) = other.join().unwrap();
    assert!(!got);
    assert!(matches!(rel, Err(ManagerError::NotHeld { .. })), "{rel:?}");
    r.release().unwrap();
    r.release().unwrap();
    assert!(!r.locked().unwrap());

    let s = m.semaphore(2).unwrap();
    s.acquire().unwrap();
    s.try_acquire().unwrap();
    assert!(matches!(s.try_acquire(), Err(ManagerError::WouldBlock)));
    assert_eq!(s.get_value().unwrap(), 0);
    s.release().unwrap();
    s.release().unwrap();
    s.release().unwrap(); // unbounded: fine
    assert_eq!(s.get_value().unwrap(), 3);
    let b = m.bounded_semaphore(1).unwrap();
    assert_eq!(b.release(), Err(ManagerError::SemaphoreOverRelease { initial: 1 }));

    let e = m.event().unwrap();
    assert!(matches!(e.wait_timeout(Duration::from_millis(10)), Err(ManagerError::Timeout { .. })));
    let e2 = e.clone();
    let waiter = std::thread::spawn(move || e2.wait_timeout(Duration::from_secs(10)).is_ok());
    e.set().unwrap();
    assert!(waiter.join().unwrap());
    assert!(e.is_set().unwrap());
    e.clear().unwrap();
    assert!(!e.is_set().unwrap());
}

#[test]
fn condition_wait_notify() {
    let (m, _) = mem_manager(Registry::sync());
    let c = m.condition().unwrap();
    let flag = m.value(false).unwrap();
    assert!(matches!(c.wait_timeout(Duration::from_millis(1)), Err(ManagerError::NotHeld { .. })));
    let (c2, f2) = (c.clone(), flag.clone());
    let waiter = std::thread::spawn(move || {
        let _g = c2.lock().unwrap();
        c2.wait_for_timeout(|| f2.get().unwrap(), Duration::from_secs(10)).is_ok()
    });
    {
        let _g = c.lock().unwrap();
        flag.set(true).unwrap();
        c.notify_all().unwrap();
    }
    assert!(waiter.join().unwrap());
    let _g = c.lock().unwrap();
    assert!(
        matches!(c.wait_timeout(Duration::from_millis(10)), Err(ManagerError::Timeout { .. })),
        "nobody notifies: timeout"
    );
}

#[test]
fn barrier_parties_and_breaking() {
    let (m, _) = mem_manager(Registry::sync());
    assert!(matches!(m.barrier(0), Err(ManagerError::InvalidArgument { .. })));
    let b = m.barrier(3).unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || b.wait_timeout(Duration::from_secs(10)).unwrap())
        })
        .collect();
    let mut idx: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    idx.sort();
    assert_eq!(idx, [0, 1, 2]);
    assert_eq!(b.wait_timeout(Duration::from_millis(20)), Err(ManagerError::BrokenBarrier));
    assert!(b.broken().unwrap());
    b.reset().unwrap();
    assert!(!b.broken().unwrap());
    b.abort().unwrap();
    assert_eq!(b.wait(), Err(ManagerError::BrokenBarrier));
    assert_eq!(b.parties().unwrap(), 3);
}

#[test]
fn barrier_with_timeout_breaks_a_wait_that_names_none() {
    let (m, _) = mem_manager(Registry::sync());
    assert!(matches!(m.barrier_with_timeout(0, Duration::from_secs(1)), Err(ManagerError::InvalidArgument { .. })));
    // A party short: the barrier's own timeout ends the plain `wait` and breaks it.
    let lonely = m.barrier_with_timeout(2, Duration::from_millis(30)).unwrap();
    assert_eq!(lonely.wait(), Err(ManagerError::BrokenBarrier));
    assert!(lonely.broken().unwrap());
    // All parties within the timeout: the plain `wait` passes.
    // A timeout too large for the clock is no limit (and no panic on the server).
    let b = m.barrier_with_timeout(2, Duration::MAX).unwrap();
    let b2 = b.clone();
    let other = std::thread::spawn(move || b2.wait());
    let mut idx = vec![b.wait().unwrap(), other.join().unwrap().unwrap()];
    idx.sort();
    assert_eq!(idx, [0, 1]);
    assert_eq!(b.parties().unwrap(), 2);
}

#[test]
fn condition_with_a_lock_shares_that_lock() {
    let (m, _) = mem_manager(Registry::sync());
    let lock = m.lock().unwrap();
    let c = m.condition_with(&lock).unwrap();
    let flag = m.value(false).unwrap();
    {
        let _g = c.lock().unwrap();
        assert!(lock.locked().unwrap(), "the condition's lock is the Lock");
        let l2 = lock.clone();
        assert!(!std::thread::spawn(move || l2.acquire_with(false, None).unwrap()).join().unwrap());
    }
    assert!(!lock.locked().unwrap());
    let entered = m.value(false).unwrap();
    let (c2, f2, e2) = (c.clone(), flag.clone(), entered.clone());
    let waiter = std::thread::spawn(move || {
        let _g = c2.lock().unwrap();
        // The predicate runs with the lock held; the first call marks the waiter as
        // about to wait, still holding the lock.
        c2.wait_for_timeout(|| e2.set(true).is_ok() && f2.get().unwrap(), Duration::from_secs(10)).is_ok()
    });
    assert!(eventually(|| entered.get().unwrap()));
    // The lock frees only when the waiter's `wait` releases it; taking it through the
    // Lock's proxy makes this thread the condition's owner, allowed to notify.
    let g = lock.lock_timeout(Duration::from_secs(10)).expect("wait releases the shared lock");
    flag.set(true).unwrap();
    c.notify_all().unwrap();
    drop(g);
    assert!(waiter.join().unwrap());
    assert!(!lock.locked().unwrap());
    // An RLock works too, and stays re-entrant through the condition.
    let rlock = m.rlock().unwrap();
    let rc = m.condition_with(&rlock).unwrap();
    assert!(rc.acquire_with(true, None).unwrap() && rlock.acquire_with(false, None).unwrap());
    rc.release().unwrap();
    assert!(rlock.locked().unwrap());
    rlock.release().unwrap();
    assert!(!rlock.locked().unwrap());
    // Not a lock; a lock of another server.
    let not_a_lock = m.proxy::<crate::LockProxy>(crate::typeids::EVENT).unwrap();
    assert!(matches!(m.condition_with(&not_a_lock), Err(ManagerError::InvalidArgument { .. })));
    let (other, _) = mem_manager(Registry::sync());
    assert!(matches!(other.condition_with(&lock), Err(ManagerError::InvalidArgument { .. })));
}

#[test]
fn joinable_queue_bounded_refuses_past_maxsize() {
    let (m, _) = mem_manager(Registry::sync());
    let q = m.joinable_queue_bounded::<u8>(1).unwrap();
    q.put(1).unwrap();
    assert!(q.full().unwrap());
    assert_eq!(q.try_put(2), Err(ManagerError::QueueFull));
    assert_eq!(
        q.put_timeout(2, Duration::from_millis(10)),
        Err(ManagerError::Timeout { after: Duration::from_millis(10) })
    );
    assert_eq!(q.get().unwrap(), 1);
    assert!(
        matches!(q.join_timeout(Duration::from_millis(10)), Err(ManagerError::Timeout { .. })),
        "one item not done"
    );
    q.task_done().unwrap();
    q.join_timeout(Duration::from_secs(5)).unwrap();
    assert!(m.joinable_queue::<u8>().unwrap().try_put(1).is_ok());
}

#[test]
fn condition_wait_for_with_a_huge_timeout_waits_without_limit() {
    let (m, _) = mem_manager(Registry::sync());
    let c = m.condition().unwrap();
    let flag = m.value(false).unwrap();
    let g = c.lock().unwrap();
    c.wait_for_timeout(|| true, Duration::MAX).expect("no overflow panic; the predicate holds");
    // The notifier needs the lock, which this thread holds until `wait` releases it.
    let (c2, f2) = (c.clone(), flag.clone());
    let notifier = std::thread::spawn(move || {
        let _g = c2.lock().unwrap();
        f2.set(true).unwrap();
        c2.notify_all().unwrap();
    });
    c.wait_for_timeout(|| flag.get().unwrap(), Duration::MAX).unwrap();
    drop(g);
    notifier.join().unwrap();
}

#[test]
fn a_getrandom_failure_is_an_error_not_a_panic() {
    crate::client::FAIL_RANDOM.with(|f| f.set(true));
    let bound = crate::ManagerBuilder::new().bind();
    let started = crate::ManagerBuilder::new().start();
    let keyed = crate::ManagerBuilder::new().authkey(b"k").bind();
    crate::client::FAIL_RANDOM.with(|f| f.set(false));
    // The default authkey is the process's (made once, outside this hook):
    // binding needs no randomness of its own; a started manager's socket
    // directory name does.
    assert!(bound.is_ok(), "{bound:?}");
    assert!(matches!(&started, Err(ManagerError::Io { op, .. }) if op.contains("getrandom")), "{started:?}");
    assert!(keyed.is_ok(), "a given authkey needs no randomness: {keyed:?}");
}

#[derive(Default)]
struct Counter(std::sync::Mutex<i64>);

#[derive(Serialize, Deserialize)]
enum CounterCall {
    Add(i64),
    Get,
    Fail,
    Panic,
}

impl Served for Counter {
    type Request = CounterCall;
    type Response = i64;
    fn dispatch(&self, req: CounterCall) -> Result<i64, String> {
        let mut v = crate::object::lock(&self.0);
        match req {
            CounterCall::Add(n) => {
                *v += n;
                Ok(*v)
            }
            CounterCall::Get => Ok(*v),
            CounterCall::Fail => Err(format!("refused at {v}")),
            CounterCall::Panic => panic!("boom"),
        }
    }
}

#[test]
fn registry_user_types_and_unknown_ones() {
    let mut reg = Registry::new();
    reg.register("Counter", Counter::default);
    reg.register_shared("shared_counter", Arc::new(Counter::default()));
    let (m, _) = mem_manager(reg);
    let c: crate::Proxy<Counter> = m.proxy("Counter").unwrap();
    assert_eq!(c.call(&CounterCall::Add(3)).unwrap(), 3);
    assert_eq!(c.call(&CounterCall::Fail), Err(ManagerError::Remote { message: "refused at 3".into() }));
    assert!(matches!(c.call(&CounterCall::Panic), Err(ManagerError::Remote { message: m }) if m.contains("boom")));
    assert_eq!(c.call(&CounterCall::Get).unwrap(), 3, "the server survives a panicking method");
    let fresh: crate::Proxy<Counter> = m.proxy("Counter").unwrap();
    assert_eq!(fresh.call(&CounterCall::Get).unwrap(), 0);
    let s1: crate::Proxy<Counter> = m.proxy("shared_counter").unwrap();
    let s2: crate::Proxy<Counter> = m.proxy("shared_counter").unwrap();
    s1.call(&CounterCall::Add(5)).unwrap();
    assert_eq!(s2.call(&CounterCall::Get).unwrap(), 5);

    // Unregistered typeid: a BaseManager has no built-ins.
    assert_eq!(m.list::<u8>().unwrap_err(), ManagerError::UnknownTypeid { typeid: "list".into() });
    // Unregistered method: a bad request encoding, then a list method sent to a Counter.
    let raw = c.object().0.call_value(crate::object::SERVED_METHOD, vec![Value::Bytes(vec![200])], Dict::new());
    assert!(matches!(raw, Err(ManagerError::UnknownMethod { ref typeid, .. }) if typeid == "Counter"), "{raw:?}");
    let wrong = c.object().0.call_value("__len__", vec![], Dict::new());
    assert!(matches!(wrong, Err(ManagerError::UnknownMethod { .. })), "{wrong:?}");
}

/// A request's pickled `(args, {})`.
fn args(v: Vec<Value>) -> Vec<u8> {
    crate::value::dumps(&Value::Tuple(vec![Value::Tuple(v), Value::Dict(Dict::new())])).unwrap()
}

/// A raw connection with its own client id.
fn raw_client(state: &Arc<ServerState>, client: u64) -> crate::net::Conn {
    let mut c = memory::connect(state.clone());
    c.send(&to_bytes(&Request::Hello { client }).unwrap()).unwrap();
    c
}

fn raw_call(c: &mut crate::net::Conn, req: &Request) -> Response {
    c.send(&to_bytes(req).unwrap()).unwrap();
    from_bytes(&c.recv().unwrap()).unwrap()
}

#[test]
fn references_are_counted_per_client_and_released_on_disconnect() {
    let state = ServerState::new(Registry::sync());
    let mut a = raw_client(&state, 1);
    let Ok(Reply::Created { id, .. }) =
        raw_call(&mut a, &Request::Create { typeid: "list".into(), args: args(vec![]) })
    else {
        panic!("create failed")
    };
    let mut b = raw_client(&state, 2);
    assert_eq!(raw_call(&mut b, &Request::IncRef { id }), Ok(Reply::Done));
    assert_eq!(state.stats().references, 2);
    // A client cannot drop references it does not hold.
    let mut c = raw_client(&state, 3);
    assert!(matches!(raw_call(&mut c, &Request::DecRef { id }), Err(ManagerError::BadRequest { .. })));
    assert_eq!(state.stats().objects, 1);
    drop(a);
    assert!(eventually(|| state.stats().references == 1));
    assert_eq!(state.stats().objects, 1, "client 2 still holds it");
    assert_eq!(raw_call(&mut b, &Request::DecRef { id }), Ok(Reply::Done));
    assert_eq!(state.stats().objects, 0);
    assert_eq!(
        raw_call(&mut b, &Request::Call { id, thread: 1, method: "__len__".into(), args: args(vec![]) }),
        Err(ManagerError::NoSuchObject { id })
    );
    drop((b, c));
    assert!(eventually(|| state.stats().clients == 0));
}

#[test]
fn a_lock_held_by_a_vanished_client_is_released() {
    let state = ServerState::new(Registry::sync());
    let mut a = raw_client(&state, 10);
    let Ok(Reply::Created { id, .. }) =
        raw_call(&mut a, &Request::Create { typeid: "Lock".into(), args: args(vec![]) })
    else {
        panic!()
    };
    let acquire = Request::Call { id, thread: 1, method: "acquire".into(), args: args(vec![]) };
    let yes = Ok(Reply::Value(crate::compact::pack_value(&Value::Bool(true)).unwrap()));
    assert_eq!(raw_call(&mut a, &acquire), yes);
    let mut b = raw_client(&state, 11);
    assert_eq!(raw_call(&mut b, &Request::IncRef { id }), Ok(Reply::Done));
    b.send(&to_bytes(&acquire).unwrap()).unwrap();
    drop(a); // dies holding the lock
    let resp: Response = from_bytes(&b.recv().unwrap()).unwrap();
    assert_eq!(resp, yes, "the survivor gets the lock");
}

#[test]
fn a_blocked_call_of_a_vanished_client_frees_its_server_thread() {
    let state = ServerState::new(Registry::sync());
    let mut a = raw_client(&state, 20);
    let Ok(Reply::Created { .. }) = raw_call(&mut a, &Request::Create { typeid: "Queue".into(), args: args(vec![]) })
    else {
        panic!()
    };
    let get = Request::Call { id: 0, thread: 1, method: "get".into(), args: args(vec![]) };
    a.send(&to_bytes(&get).unwrap()).unwrap();
    assert!(eventually(|| state.stats().connections == 1));
    drop(a);
    assert!(eventually(|| state.stats() == Default::default()), "{:?}", state.stats());
}

#[test]
fn hello_must_come_first() {
    let state = ServerState::new(Registry::sync());
    let mut c = memory::connect(state.clone());
    let resp = raw_call(&mut c, &Request::Stats);
    assert!(matches!(resp, Err(ManagerError::BadRequest { .. })));
}

#[test]
fn oversized_frame_is_refused_and_the_server_keeps_serving() {
    let (m, state) = mem_manager(Registry::sync());
    let l = m.list::<Vec<u8>>().unwrap();
    let big = vec![0u8; crate::MAX_FRAME + 1];
    // The proxy refuses to send it...
    assert!(matches!(l.append(big.clone()), Err(ManagerError::FrameTooLarge { .. })));
    l.append(vec![1]).unwrap();
    assert_eq!(l.len().unwrap(), 1);
    // ...and a raw client that sends one anyway gets a typed refusal and is hung up on.
    let mut raw = raw_client(&state, 99);
    raw.send(&big).unwrap();
    let resp: Response = from_bytes(&raw.recv().unwrap()).unwrap();
    assert!(matches!(resp, Err(ManagerError::FrameTooLarge { .. })), "{resp:?}");
    assert!(raw.recv().is_err(), "the server hangs up after a refused frame");
    assert_eq!(l.len().unwrap(), 1, "other clients are still served");
}

/// xorshift64*: a small deterministic generator for the fuzz loop.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid method calls of every built-in, and valid request frames, as seeds for mutation.
fn seed_frames() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let i = Value::Int;
    let calls: Vec<Vec<u8>> = vec![
        ("append", vec![i(1)]),
        ("__getitem__", vec![i(-1)]),
        ("#GETVALUE", vec![]),
        ("insert", vec![i(3), i(9)]),
        ("sort", vec![]),
        ("__setitem__", vec![i(1), i(2)]),
        ("items", vec![]),
        ("__setattr__", vec![Value::from("x"), i(3)]),
        ("get", vec![]),
        ("put", vec![i(4)]),
        ("join", vec![]),
        ("acquire", vec![]),
        ("wait", vec![]),
    ]
    .into_iter()
    .map(|(m, a)| to_bytes(&(m, args(a))).unwrap())
    .collect();
    let mut frames: Vec<Vec<u8>> = calls
        .iter()
        .cloned()
        .flat_map(|call| {
            let (method, a): (String, Vec<u8>) = from_bytes(call.as_slice()).unwrap();
            (0..14).map(move |id| {
                to_bytes(&Request::Call { id, thread: 1, method: method.clone(), args: a.clone() }).unwrap()
            })
        })
        .collect();
    for t in crate::Registry::sync().typeids() {
        frames.push(to_bytes(&Request::Create { typeid: t.to_string(), args: args(vec![Value::Int(2)]) }).unwrap());
        frames.push(to_bytes(&Request::Create { typeid: t.to_string(), args: args(vec![]) }).unwrap());
    }
    frames.push(to_bytes(&Request::IncRef { id: 1 }).unwrap());
    frames.push(to_bytes(&Request::DecRef { id: 2 }).unwrap());
    frames.push(to_bytes(&Request::Stats).unwrap());
    (calls, frames)
}

/// Applies 0 to `max` random edits to `bytes`.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, max: usize) {
    for _ in 0..rng.below(max + 1) {
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            1 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes.truncate(at);
            }
            2 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, rng.next() as u8);
            }
            _ => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, [0x80, 0xff, 0x7f, 0x00][rng.below(4)]);
            }
        }
    }
}

/// What a fuzz run saw.
#[derive(Debug, Default)]
struct FuzzReport {
    inputs: u64,
    ok: u64,
    bad_request: u64,
    unknown_method: u64,
    other_err: u64,
}

fn fresh_fuzz_state() -> Arc<ServerState> {
    let state = ServerState::new(Registry::sync());
    // One of each built-in, so that calls find objects.
    for t in crate::Registry::sync().typeids() {
        let a = match t {
            "Barrier" | "Semaphore" | "BoundedSemaphore" => vec![Value::Int(1)],
            "Array" | "Value" => vec![Value::None, Value::List(vec![Value::Int(1)])],
            _ => vec![],
        };
        let _ = state.handle(7, &to_bytes(&Request::Create { typeid: t.into(), args: args(a) }).unwrap(), &|| false);
    }
    state
}

/// Feeds `n` random and mutated frames to the decoder and dispatcher of a server (a
/// fresh one whenever the fuzz has made 10 000 objects). The caller reads as "gone", so
/// a frame that decodes to a blocking call returns at once instead of waiting.
fn fuzz(n: u64, seed: u64) -> FuzzReport {
    let mut state = fresh_fuzz_state();
    let (calls, seeds) = seed_frames();
    let gone = || false;
    let mut rng = Rng(seed | 1);
    let mut frame = Vec::new();
    let mut report = FuzzReport::default();
    for i in 0..n {
        frame.clear();
        match i % 4 {
            // Random bytes.
            0 => {
                let len = rng.below(64);
                frame.extend((0..len).map(|_| rng.next() as u8));
            }
            // A mutated request frame.
            1 => {
                frame.extend_from_slice(&seeds[rng.below(seeds.len())]);
                mutate(&mut rng, &mut frame, 4);
            }
            // A well-formed `Call` whose pickled arguments are mutated (or not), on any object.
            _ => {
                let (method, mut a): (String, Vec<u8>) = from_bytes(&calls[rng.below(calls.len())]).unwrap();
                mutate(&mut rng, &mut a, 2);
                let id = rng.below(16) as u64;
                frame.extend(to_bytes(&Request::Call { id, thread: 1, method, args: a }).unwrap());
            }
        }
        let resp = state.handle(7, &frame, &gone);
        // Every response must itself encode: the server can always answer.
        to_bytes(&resp).expect("response encodes");
        report.inputs += 1;
        match resp {
            Ok(_) => report.ok += 1,
            Err(ManagerError::BadRequest { .. }) => report.bad_request += 1,
            Err(ManagerError::UnknownMethod { .. }) => report.unknown_method += 1,
            Err(_) => report.other_err += 1,
        }
        if state.stats().objects > 10_000 {
            state = fresh_fuzz_state();
        }
    }
    report
}

#[test]
fn fuzz_request_decoder_small() {
    let r = fuzz(20_000, 0x5eed);
    assert_eq!(r.inputs, 20_000);
    // The mutation reaches past the decoder into the objects.
    assert!(r.ok > 500 && r.unknown_method + r.other_err > 1_000, "{r:?}");
}

/// The long run: `cargo test -p mproc-manager --release -- --ignored fuzz_request_decoder_million`.
#[test]
#[ignore]
fn fuzz_request_decoder_million() {
    let r = fuzz(1_000_000, 0xdead_beef);
    assert_eq!(r.inputs, 1_000_000);
    println!("fuzzed {} request frames without a crash: {r:?}", r.inputs);
}

mod models {
    //! Proptest models: the server's `list` and `dict` against `Vec` and an ordered
    //! association list, op by op (Python semantics for indices, equality and order).

    use proptest::prelude::*;

    use crate::object::{CallCtx, Object};
    use crate::objects::collections::{DictObject, ListObject};
    use crate::value::{from_value, Args, Dict, Value};
    use crate::ManagerError;

    #[derive(Debug, Clone)]
    enum ListOp {
        Append(u8),
        Get(i64),
        Set(i64, u8),
        Insert(i64, u8),
        Pop(Option<i64>),
        Remove(u8),
        Index(u8),
        Count(u8),
        Extend(Vec<u8>),
        Reverse,
        Sort(bool),
    }

    fn list_op() -> impl Strategy<Value = ListOp> {
        let idx = -8i64..8;
        prop_oneof![
            any::<u8>().prop_map(|v| ListOp::Append(v % 6)),
            idx.clone().prop_map(ListOp::Get),
            (idx.clone(), any::<u8>()).prop_map(|(i, v)| ListOp::Set(i, v % 6)),
            (idx.clone(), any::<u8>()).prop_map(|(i, v)| ListOp::Insert(i, v % 6)),
            proptest::option::of(idx).prop_map(ListOp::Pop),
            any::<u8>().prop_map(|v| ListOp::Remove(v % 6)),
            any::<u8>().prop_map(|v| ListOp::Index(v % 6)),
            any::<u8>().prop_map(|v| ListOp::Count(v % 6)),
            proptest::collection::vec(0u8..6, 0..4).prop_map(ListOp::Extend),
            Just(ListOp::Reverse),
            any::<bool>().prop_map(ListOp::Sort),
        ]
    }

    fn oob<T>(index: i64, len: usize) -> Result<T, ManagerError> {
        Err(ManagerError::IndexOutOfRange { index, len: len as u64 })
    }

    fn resolve(i: i64, len: usize) -> Option<usize> {
        let j = if i < 0 { i + len as i64 } else { i };
        (0..len as i64).contains(&j).then_some(j as usize)
    }

    fn call<R: serde::de::DeserializeOwned>(
        obj: &dyn Object,
        method: &str,
        args: Vec<Value>,
    ) -> Result<R, ManagerError> {
        call_kw(obj, method, args, Dict::new())
    }

    fn call_kw<R: serde::de::DeserializeOwned>(
        obj: &dyn Object,
        method: &str,
        args: Vec<Value>,
        kwds: Dict,
    ) -> Result<R, ManagerError> {
        let alive = || true;
        let ctx = CallCtx { client: 1, thread: 1, alive: &alive };
        from_value(obj.call(&ctx, method, Args { args, kwds })?)
    }

    fn v(x: u8) -> Value {
        Value::Int(i64::from(x))
    }

    proptest! {
        #[test]
        fn list_matches_a_vec(ops in proptest::collection::vec(list_op(), 0..64)) {
            let obj = ListObject::list("list", Vec::new());
            let mut model: Vec<u8> = Vec::new();
            for op in ops {
                let len = model.len();
                match op {
                    ListOp::Append(x) => {
                        model.push(x);
                        prop_assert_eq!(call::<()>(&obj, "append", vec![v(x)]), Ok(()));
                    }
                    ListOp::Get(i) => {
                        let want = resolve(i, len).map(|j| model[j]).map_or_else(|| oob(i, len), Ok);
                        prop_assert_eq!(call::<u8>(&obj, "__getitem__", vec![Value::Int(i)]), want);
                    }
                    ListOp::Set(i, x) => {
                        let want = match resolve(i, len) { Some(j) => { model[j] = x; Ok(()) } None => oob(i, len) };
                        prop_assert_eq!(call::<()>(&obj, "__setitem__", vec![Value::Int(i), v(x)]), want);
                    }
                    ListOp::Insert(i, x) => {
                        let at = if i < 0 { (i + len as i64).max(0) } else { i.min(len as i64) };
                        model.insert(at as usize, x);
                        prop_assert_eq!(call::<()>(&obj, "insert", vec![Value::Int(i), v(x)]), Ok(()));
                    }
                    ListOp::Pop(i) => {
                        let k = i.unwrap_or(-1);
                        let want = match resolve(k, len) { Some(j) => Ok(model.remove(j)), None => oob(k, len) };
                        let args = i.map(|i| vec![Value::Int(i)]).unwrap_or_default();
                        prop_assert_eq!(call::<u8>(&obj, "pop", args), want);
                    }
                    ListOp::Remove(x) => {
                        let want = match model.iter().position(|y| *y == x) {
                            Some(j) => { model.remove(j); Ok(()) }
                            None => Err(ManagerError::ValueNotFound),
                        };
                        prop_assert_eq!(call::<()>(&obj, "remove", vec![v(x)]), want);
                    }
                    ListOp::Index(x) => {
                        let want = model.iter().position(|y| *y == x).map(|j| j as u64).ok_or(ManagerError::ValueNotFound);
                        // An equal float finds the int, as in Python.
                        prop_assert_eq!(call::<u64>(&obj, "index", vec![Value::Float(f64::from(x))]), want);
                    }
                    ListOp::Count(x) => {
                        let want = model.iter().filter(|y| **y == x).count() as u64;
                        prop_assert_eq!(call::<u64>(&obj, "count", vec![v(x)]), Ok(want));
                    }
                    ListOp::Extend(xs) => {
                        model.extend(&xs);
                        prop_assert_eq!(call::<()>(&obj, "extend", vec![Value::List(xs.into_iter().map(v).collect())]), Ok(()));
                    }
                    ListOp::Reverse => {
                        model.reverse();
                        prop_assert_eq!(call::<()>(&obj, "reverse", vec![]), Ok(()));
                    }
                    ListOp::Sort(reverse) => {
                        model.sort();
                        if reverse {
                            model.reverse();
                        }
                        let mut kw = Dict::new();
                        kw.insert(Value::from("reverse"), Value::Bool(reverse));
                        prop_assert_eq!(call_kw::<()>(&obj, "sort", vec![], kw), Ok(()));
                    }
                }
                prop_assert_eq!(call::<u64>(&obj, "__len__", vec![]), Ok(model.len() as u64));
            }
            prop_assert_eq!(call::<Vec<u8>>(&obj, "#GETVALUE", vec![]), Ok(model));
        }

        #[test]
        fn dict_matches_an_ordered_map(ops in proptest::collection::vec((0u8..6, 0u8..8, any::<u16>()), 0..64)) {
            let obj = DictObject::new("dict", Dict::new());
            // (key, value) in insertion order: Python's dict.
            let mut model: Vec<(u8, u16)> = Vec::new();
            let val = |x: u16| Value::Int(i64::from(x));
            for (kind, k, x) in ops {
                // The key goes as an int or as the equal float: one key, as in Python.
                let key = if x % 2 == 0 { v(k) } else { Value::Float(f64::from(k)) };
                let pos = model.iter().position(|e| e.0 == k);
                match kind {
                    0 => {
                        let old = match pos { Some(p) => Some(std::mem::replace(&mut model[p].1, x)), None => { model.push((k, x)); None } };
                        let (replaced, was): (bool, Option<u16>) = call(&obj, "#insert", vec![key, val(x)]).unwrap();
                        prop_assert_eq!((replaced, was), (old.is_some(), old));
                    }
                    1 => {
                        let want = match pos { Some(p) => Ok(model.remove(p).1), None => Err(ManagerError::KeyMissing { key: crate::value::py_repr(&key) }) };
                        prop_assert_eq!(call::<u16>(&obj, "pop", vec![key]), want);
                    }
                    2 => {
                        let want = match pos { Some(p) => model[p].1, None => { model.push((k, x)); x } };
                        prop_assert_eq!(call::<u16>(&obj, "setdefault", vec![key, val(x)]), Ok(want));
                    }
                    3 => {
                        let want = match model.pop() { Some(e) => Ok(e), None => Err(ManagerError::KeyMissing { key: "popitem(): dictionary is empty".into() }) };
                        let got = call::<(Value, u16)>(&obj, "popitem", vec![]).map(|(k, x)| (k == v(want.as_ref().map_or(0, |e| e.0)), x));
                        prop_assert_eq!(got, want.map(|e| (true, e.1)));
                    }
                    4 => {
                        match pos { Some(p) => model[p].1 = x, None => model.push((k, x)) }
                        let pairs = Value::List(vec![Value::Tuple(vec![key, val(x)])]);
                        prop_assert_eq!(call::<()>(&obj, "update", vec![pairs]), Ok(()));
                    }
                    _ => {
                        prop_assert_eq!(call::<Option<u16>>(&obj, "get", vec![key.clone()]), Ok(pos.map(|p| model[p].1)));
                        prop_assert_eq!(call::<bool>(&obj, "__contains__", vec![key]), Ok(pos.is_some()));
                    }
                }
            }
            // Keys compare as Python's (the first-inserted key object is kept: `0.0` or `0`).
            let model_items: Vec<(Value, u16)> = model.iter().map(|e| (v(e.0), e.1)).collect();
            prop_assert_eq!(call::<Vec<(Value, u16)>>(&obj, "items", vec![]), Ok(model_items));
            prop_assert_eq!(call::<Vec<Value>>(&obj, "keys", vec![]), Ok(model.iter().map(|e| v(e.0)).collect::<Vec<_>>()));
            prop_assert_eq!(call::<u64>(&obj, "__len__", vec![]), Ok(model.len() as u64));
        }
    }
}

#[test]
fn every_wire_error_survives_postcard() {
    // The wire tags enum variants by index: a variant serde skips must not shift the others.
    let all = [
        ManagerError::Decode { reason: "d".into() },
        ManagerError::Remote { message: "refused".into() },
        ManagerError::PythonException { module: "builtins".into(), name: "KeyError".into(), args: vec!["1".into()] },
        ManagerError::PythonTraceback { traceback: "tb".into() },
        ManagerError::Start { reason: "s".into() },
    ];
    for e in all {
        let bytes = postcard::to_allocvec(&e).unwrap();
        assert_eq!(postcard::from_bytes::<ManagerError>(&bytes).unwrap(), e);
    }
}
