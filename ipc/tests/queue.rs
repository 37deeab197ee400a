//! `Queue`, `JoinableQueue` and `SimpleQueue` across real processes: order,
//! the Full/Empty edges, close, sizes, the tutorials' scenarios, many producers
//! and consumers, and the spawn path through `Share`.
//!
//! Children are forked with `mproc_testkit::fork` (a 20 s `alarm` watchdog) and
//! reaped with a deadline; every blocking call has a timeout or a watchdog.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mproc_ipc::{JoinableQueue, Queue, QueueBuilder, QueueError, SimpleQueue};
use mproc_shm::{Exports, Share, ShmError};
use mproc_testkit::{fork, reap};
use serde::{Deserialize, Serialize};

mod common;

const REAP: Duration = Duration::from_secs(30);
const LONG: Duration = Duration::from_secs(20);

#[test]
fn smoke_fifo_single_producer() {
    let q = Queue::<u64>::new().unwrap();
    for i in 0..1000 {
        q.put(i).unwrap();
    }
    assert_eq!(q.qsize(), 1000);
    for i in 0..1000 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    assert!(q.empty());
}

#[test]
fn full_and_empty_edges() {
    // 3 is not a power of two: the ring has 4 slots, the bound stays 3.
    let q = Queue::<String>::with_maxsize(3).unwrap();
    assert!(matches!(q.try_get(), Err(QueueError::Empty)));
    let t = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(30)), Err(QueueError::Timeout { .. })));
    assert!(t.elapsed() >= Duration::from_millis(30), "get_timeout returned early: {:?}", t.elapsed());
    for s in ["a", "b", "c"] {
        q.try_put(s.to_string()).unwrap();
    }
    assert!(q.full());
    assert_eq!(q.qsize(), 3);
    let err = q.try_put("d".to_string()).unwrap_err();
    assert!(matches!(err.error(), QueueError::Full { maxsize: 3 }), "{err}");
    assert!(err.to_string().contains('3'), "{err}");
    assert_eq!(err.into_item(), "d");
    let t = Instant::now();
    let err = q.put_timeout("e".to_string(), Duration::from_millis(30)).unwrap_err();
    assert!(err.error().is_timeout() && t.elapsed() >= Duration::from_millis(30));
    assert_eq!(q.try_get().unwrap(), "a");
    assert!(!q.full());
    q.put_timeout("d".to_string(), Duration::from_millis(30)).unwrap();
    for s in ["b", "c", "d"] {
        assert_eq!(q.try_get().unwrap(), s);
    }
    assert!(q.empty() && matches!(q.try_get(), Err(QueueError::Empty)));
}

#[test]
fn close_then_put_and_get_fail() {
    let q = Queue::<u32>::new().unwrap();
    let other = q.clone();
    q.put(1).unwrap();
    q.close();
    assert!(q.is_closed() && other.is_closed(), "clones in this process share the handle's state");
    let err = q.put(2).unwrap_err();
    assert!(matches!(err.error(), QueueError::Closed));
    assert_eq!(err.into_item(), 2);
    assert!(matches!(q.get(), Err(QueueError::Closed)));
    assert!(matches!(q.try_get(), Err(QueueError::Closed)));
    assert!(matches!(q.try_put(3).map_err(|e| e.into_parts().0), Err(QueueError::Closed)));
}

#[test]
fn close_releases_a_blocked_get() {
    let q = Queue::<u32>::new().unwrap();
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || q.get_timeout(LONG))
    };
    q.close();
    let r = waiter.join().unwrap();
    assert!(matches!(r, Err(QueueError::Closed)), "{r:?}");
}

#[test]
fn other_processes_keep_their_handle_open_after_close() {
    let q = Queue::<u32>::new().unwrap();
    let child = {
        let q = q.clone();
        fork(20, move || match q.get_timeout(LONG) {
            Ok(7) => 0,
            _ => 1,
        })
    };
    q.close();
    assert!(q.put(1).is_err());
    let reopened = q.clone();
    assert!(reopened.is_closed());
    // A handle made afresh for the same memory (as a spawned child gets) is open.
    let token = q.export(&mut Exports::new()).unwrap();
    let fresh = Queue::<u32>::import(token).unwrap();
    fresh.put(7).unwrap();
    assert_eq!(reap(child, REAP), 0);
}

#[test]
fn too_large_item_names_both_sizes() {
    let q = QueueBuilder::new().maxsize(4).max_item_bytes(16).build::<Vec<u8>>().unwrap();
    q.put(vec![1; 15]).unwrap(); // 1 length byte + 15 = 16: fits exactly
    let err = q.try_put(vec![0; 100]).unwrap_err();
    assert!(matches!(err.error(), QueueError::TooLarge { size: 101, limit: 16 }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("101") && msg.contains("16"), "{msg}");
    assert_eq!(err.into_item().len(), 100);
    // A blocking put fails the same way, at once.
    assert!(matches!(q.put(vec![0; 17]).unwrap_err().error(), QueueError::TooLarge { size: 18, limit: 16 }));
    assert_eq!(q.get().unwrap(), vec![1; 15]);
}

#[test]
fn builder_rejects_bad_sizes() {
    let cases: [(QueueBuilder, &str, usize); 4] = [
        (QueueBuilder::new().maxsize(0), "maxsize", 0),
        (QueueBuilder::new().maxsize(1 << 25), "maxsize", 1 << 25),
        (QueueBuilder::new().max_item_bytes(0), "max_item_bytes", 0),
        (QueueBuilder::new().max_item_bytes(1 << 31), "max_item_bytes", 1 << 31),
    ];
    for (b, what, value) in cases {
        match b.build::<u8>() {
            Err(e @ QueueError::BadSize { what: w, value: v, .. }) => {
                assert_eq!((w, v), (what, value));
                assert!(e.to_string().contains(&value.to_string()), "{e}");
            }
            other => panic!("{what} {value}: expected BadSize, got {other:?}"),
        }
    }
    // Each value fine alone, too large together.
    match QueueBuilder::new().maxsize(1 << 24).max_item_bytes(1 << 20).build_simple::<u8>() {
        Err(QueueError::BadSize { what, .. }) => assert!(what.contains("maxsize x max_item_bytes"), "{what}"),
        other => panic!("expected BadSize, got {other:?}"),
    }
    assert!(matches!(JoinableQueue::<u8>::with_maxsize(0), Err(QueueError::BadSize { .. })));
}

/// `put_ref` encodes from a borrowed item, which the putter keeps: a child puts
/// the same buffer 100 times (on a queue of 8, so it waits for room), the parent
/// gets 100 equal copies. Its errors are `put`'s.
#[test]
fn put_ref_sends_a_kept_item_across_processes() {
    let q = QueueBuilder::new().maxsize(8).max_item_bytes(4100).build::<Vec<u8>>().unwrap();
    let child = {
        let q = q.clone();
        fork(20, move || {
            let item: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
            for _ in 0..100 {
                if q.put_ref(&item).is_err() {
                    return 1;
                }
            }
            // Still ours, unchanged.
            if item.len() == 4000 {
                0
            } else {
                2
            }
        })
    };
    let want: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    for i in 0..100 {
        assert_eq!(q.get_timeout(LONG).unwrap(), want, "item {i}");
    }
    assert_eq!(reap(child, REAP), 0);
    assert!(matches!(q.put_ref(&vec![0; 5000]), Err(QueueError::TooLarge { size: 5002, limit: 4100 })));
    q.close();
    assert!(matches!(q.put_ref(&vec![1]), Err(QueueError::Closed)));
    assert!(q.empty());
}

/// The tutorial: a writer process puts 'A', 'B', 'C'; a reader process gets them.
#[test]
fn writer_and_reader_processes() {
    let q = Queue::<char>::new().unwrap();
    let writer = {
        let q = q.clone();
        fork(20, move || {
            for c in ['A', 'B', 'C'] {
                if q.put(c).is_err() {
                    return 1;
                }
            }
            0
        })
    };
    let reader = {
        let q = q.clone();
        fork(20, move || {
            let got: Vec<char> = (0..3).filter_map(|_| q.get_timeout(LONG).ok()).collect();
            if got == ['A', 'B', 'C'] {
                0
            } else {
                2
            }
        })
    };
    assert_eq!(reap(writer, REAP), 0);
    assert_eq!(reap(reader, REAP), 0, "the reader did not get A, B, C in order");
    assert!(q.empty());
}

/// 4 producer processes × N items, 2 consumer processes: every item arrives
/// exactly once, and each producer's items in its order.
#[test]
fn many_producers_and_consumers_deliver_each_item_once() {
    const PRODUCERS: u64 = 4;
    const N: u64 = 2000;
    // Small bound: producers block on a full queue, consumers on an empty one.
    let work = Queue::<Option<(u64, u64)>>::with_maxsize(16).unwrap();
    let results = SimpleQueue::<(u64, u64)>::new().unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let work = work.clone();
            fork(20, move || {
                for i in 0..N {
                    if work.put_timeout(Some((p, i)), LONG).is_err() {
                        return 1;
                    }
                }
                0
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (work, results) = (work.clone(), results.clone());
            fork(20, move || {
                let mut last = [None::<u64>; PRODUCERS as usize];
                loop {
                    match work.get_timeout(LONG) {
                        Ok(Some((p, i))) => {
                            // One consumer sees each producer's items in order.
                            if last[p as usize].is_some_and(|l| l >= i) {
                                return 3;
                            }
                            last[p as usize] = Some(i);
                            if results.put((p, i)).is_err() {
                                return 2;
                            }
                        }
                        Ok(None) => return 0,
                        Err(_) => return 1,
                    }
                }
            })
        })
        .collect();
    for p in producers {
        assert_eq!(reap(p, REAP), 0, "a producer failed");
    }
    for _ in 0..2 {
        work.put_timeout(None, LONG).unwrap();
    }
    for c in consumers {
        assert_eq!(reap(c, REAP), 0, "a consumer failed");
    }
    let mut seen = BTreeSet::new();
    while let Ok(item) = results.try_get() {
        assert!(seen.insert(item), "{item:?} delivered twice");
    }
    assert_eq!(seen.len() as u64, PRODUCERS * N, "items lost");
    assert!(work.empty());
}

#[derive(Debug, Serialize, Deserialize)]
struct LogRecord {
    pid: u32,
    n: u32,
    message: String,
}

/// The logging tutorial: 200 processes send a record each through one queue
/// to one writer process, which writes them to a file; none is lost.
#[test]
fn log_records_from_200_processes_reach_one_writer() {
    const PROCS: u32 = 200;
    let q = Queue::<Option<LogRecord>>::new().unwrap();
    let path = std::env::temp_dir().join(format!("mproc-queue-log-{}.txt", std::process::id()));
    let writer = {
        let (q, path) = (q.clone(), path.clone());
        fork(20, move || {
            let mut out = String::new();
            loop {
                match q.get_timeout(LONG) {
                    Ok(Some(r)) => out.push_str(&format!("{} {} {}\n", r.n, r.pid, r.message)),
                    Ok(None) => break,
                    Err(_) => return 1,
                }
            }
            if std::fs::write(&path, out).is_err() {
                return 2;
            }
            0
        })
    };
    let loggers: Vec<_> = (0..PROCS)
        .map(|n| {
            let q = q.clone();
            fork(20, move || {
                let record = LogRecord { pid: std::process::id(), n, message: format!("hello from logger {n}") };
                if q.put(Some(record)).is_ok() {
                    0
                } else {
                    1
                }
            })
        })
        .collect();
    for l in loggers {
        assert_eq!(reap(l, REAP), 0, "a logger failed");
    }
    q.put(None).unwrap();
    assert_eq!(reap(writer, REAP), 0, "the writer failed");
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut ns: Vec<u32> = text.lines().map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect();
    ns.sort();
    assert_eq!(ns, (0..PROCS).collect::<Vec<_>>(), "records lost or repeated");
    assert!(text.lines().all(|l| l.contains("hello from logger")));
}

#[derive(Debug, Serialize, Deserialize)]
struct Task {
    a: u64,
    b: u64,
}

/// The tutorial: 4 worker processes take `Task`s from a JoinableQueue, put
/// the answers on a result Queue and mark each task done; `None` stops a
/// worker. The main process joins the task queue, then collects 10 results.
#[test]
fn joinable_queue_task_consumers() {
    let tasks = JoinableQueue::<Option<Task>>::new().unwrap();
    let results = Queue::<String>::new().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (tasks, results) = (tasks.clone(), results.clone());
            fork(20, move || loop {
                let Ok(next) = tasks.get_timeout(LONG) else { return 1 };
                let Some(t) = next else {
                    return if tasks.task_done().is_ok() { 0 } else { 2 };
                };
                let answer = format!("{} * {} = {}", t.a, t.b, t.a * t.b);
                if tasks.task_done().is_err() || results.put(answer).is_err() {
                    return 3;
                }
            })
        })
        .collect();
    for i in 0..10 {
        tasks.put(Some(Task { a: i, b: i })).unwrap();
    }
    for _ in 0..4 {
        tasks.put(None).unwrap();
    }
    assert!(tasks.join_timeout(LONG).is_ok(), "join did not return: {} unfinished", tasks.unfinished_tasks());
    assert_eq!(tasks.unfinished_tasks(), 0);
    for w in workers {
        assert_eq!(reap(w, REAP), 0);
    }
    let mut answers: Vec<String> = (0..10).map(|_| results.get_timeout(LONG).unwrap()).collect();
    answers.sort();
    let mut expected: Vec<String> = (0..10u64).map(|i| format!("{i} * {i} = {}", i * i)).collect();
    expected.sort();
    assert_eq!(answers, expected);
    assert!(results.empty());
}

#[test]
fn task_done_too_often_is_an_error() {
    let q = JoinableQueue::<u8>::new().unwrap();
    assert!(matches!(q.task_done(), Err(QueueError::TaskDoneTooOften)));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(q.unfinished_tasks(), 2);
    q.get().unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    q.task_done().unwrap();
    let err = q.task_done().unwrap_err();
    assert!(matches!(err, QueueError::TaskDoneTooOften));
    assert!(err.to_string().contains("task_done"), "{err}");
    assert!(q.join_timeout(Duration::ZERO).is_ok());
}

#[test]
fn failed_put_does_not_count_a_task() {
    let q = JoinableQueue::<u8>::with_maxsize(1).unwrap();
    q.put(1).unwrap();
    assert!(q.try_put(2).unwrap_err().is_full());
    assert_eq!(q.unfinished_tasks(), 1);
}

#[test]
fn join_timeout_waits_for_another_process() {
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(5).unwrap();
    let t = Instant::now();
    assert!(q.join_timeout(Duration::from_millis(30)).unwrap_err().is_timeout(), "nothing was marked done");
    assert!(t.elapsed() >= Duration::from_millis(30));
    let worker = {
        let q = q.clone();
        fork(20, move || match q.get_timeout(LONG) {
            Ok(5) if q.task_done().is_ok() => 0,
            _ => 1,
        })
    };
    assert!(q.join_timeout(LONG).is_ok(), "join did not see the worker's task_done");
    assert_eq!(reap(worker, REAP), 0);
}

#[test]
fn simple_queue_basics() {
    let q = SimpleQueue::<Vec<u32>>::new().unwrap();
    assert!(q.empty());
    assert!(matches!(q.try_get(), Err(QueueError::Empty)));
    let child = {
        let q = q.clone();
        fork(20, move || {
            for i in 0..100u32 {
                if q.put(vec![i; (i % 7) as usize]).is_err() {
                    return 1;
                }
            }
            0
        })
    };
    for i in 0..100u32 {
        assert_eq!(q.get_timeout(LONG).unwrap(), vec![i; (i % 7) as usize]);
    }
    assert_eq!(reap(child, REAP), 0);
    assert!(q.empty());
    q.close();
    assert!(matches!(q.put(vec![]).unwrap_err().error(), QueueError::Closed));
    assert!(matches!(q.get(), Err(QueueError::Closed)));
}

/// Serialises any value, but decodes only even ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
struct Even(u8);

impl TryFrom<u8> for Even {
    type Error = String;
    fn try_from(v: u8) -> Result<Even, String> {
        if v % 2 == 0 {
            Ok(Even(v))
        } else {
            Err(format!("{v} is odd"))
        }
    }
}

impl From<Even> for u8 {
    fn from(e: Even) -> u8 {
        e.0
    }
}

#[test]
fn undecodable_item_is_an_error_naming_the_type() {
    let q = Queue::<Even>::new().unwrap();
    q.put(Even(3)).unwrap();
    q.put(Even(4)).unwrap();
    match q.try_get() {
        Err(e @ QueueError::Decode { len: 1, .. }) => assert!(e.to_string().contains("Even"), "{e}"),
        other => panic!("expected Decode, got {other:?}"),
    }
    // The bad item was consumed; the next one is fine.
    assert_eq!(q.try_get().unwrap().0, 4);
}

#[test]
fn import_as_another_item_type_is_refused() {
    let q = Queue::<u8>::new().unwrap();
    let token = q.export(&mut Exports::new()).unwrap();
    match Queue::<bool>::import(token) {
        Err(ShmError::BadToken { what: "Queue", detail }) => assert!(detail.contains("u8"), "{detail}"),
        other => panic!("expected BadToken, got {other:?}"),
    }
}

#[test]
fn token_of_another_kind_is_refused() {
    let q = Queue::<u8>::new().unwrap();
    let token = q.export(&mut Exports::new()).unwrap();
    match JoinableQueue::<u8>::import(token.clone()) {
        Err(ShmError::BadToken { what: "JoinableQueue", detail }) => assert!(detail.contains("Queue"), "{detail}"),
        other => panic!("expected BadToken, got {other:?}"),
    }
    assert!(SimpleQueue::<u8>::import(token.clone()).is_err());
    // The right kind and type attaches, and sees the same items.
    let again = Queue::<u8>::import(token).unwrap();
    q.put(9).unwrap();
    assert_eq!(again.try_get().unwrap(), 9);
}

const ENV: &str = "MPROC_IPC_QUEUE_TOKEN";

/// Runs only as the spawned child: imports the two queues, answers each
/// request with "pong:" + it until it gets `None`.
#[test]
fn queue_spawn_child_entry() {
    type Tokens = (<Queue<Option<String>> as Share>::Token, <JoinableQueue<String> as Share>::Token);
    let Some((req, rep)) = mproc_testkit::token_from_env::<Tokens>(ENV) else { return };
    let req = Queue::<Option<String>>::import(req).expect("import the request queue");
    let rep = JoinableQueue::<String>::import(rep).expect("import the reply queue");
    while let Some(s) = req.get_timeout(LONG).expect("a request") {
        rep.put(format!("pong:{s}")).unwrap();
    }
}

#[test]
fn queues_cross_exec_by_token() {
    let req = Queue::<Option<String>>::new().unwrap();
    let rep = JoinableQueue::<String>::new().unwrap();
    let mut exports = Exports::new();
    let tokens = (req.export(&mut exports).unwrap(), rep.export(&mut exports).unwrap());
    assert!(!exports.fds().is_empty());
    let child = mproc_testkit::spawn_entry("queue_spawn_child_entry", ENV, &tokens, exports.fds());
    for s in ["a", "bb", ""] {
        req.put(Some(s.to_string())).unwrap();
    }
    req.put(None).unwrap();
    for s in ["a", "bb", ""] {
        assert_eq!(rep.get_timeout(LONG).unwrap(), format!("pong:{s}"));
        rep.task_done().unwrap();
    }
    assert!(rep.join_timeout(Duration::ZERO).is_ok());
    common::expect_spawned_success(child, REAP);
}
