//! Items of any size through the default queues: across processes, in order,
//! with many producers and consumers, through every queue kind and form, and
//! the memory they hold coming back once drained.

use std::collections::BTreeSet;
use std::time::Duration;

use mproc_ipc::{JoinableQueue, Queue, QueueBuilder, QueueError, SimpleQueue};
use mproc_testkit::{fork, reap};
use serde_bytes::ByteBuf;

const LONG: Duration = Duration::from_secs(20);
const REAP: Duration = Duration::from_secs(30);
const SIZES: [usize; 6] = [0, 1024, 1009, 64 << 10, 1 << 20, 16 << 20];

/// The payload of item `(who, seq)`: `len` bytes no other item has, varying
/// every 64 bytes (filled run by run: fast even in a debug build), with the
/// item's id in its first bytes.
fn payload(who: u32, seq: u32, len: usize) -> ByteBuf {
    let salt = who.wrapping_mul(0x9e37_79b9) ^ seq.wrapping_mul(0x85eb_ca6b);
    let mut v = vec![0u8; len];
    for (run, bytes) in v.chunks_mut(64).enumerate() {
        bytes.fill((run as u32 ^ salt ^ (run as u32 >> 8)) as u8);
    }
    for (b, id) in v.iter_mut().zip(who.to_le_bytes().into_iter().chain(seq.to_le_bytes())) {
        *b = id;
    }
    ByteBuf::from(v)
}

/// One producer process puts each size, each between two small items; the
/// items arrive equal and in order.
#[test]
fn items_of_every_size_arrive_equal_and_in_order_across_processes() {
    let q = Queue::<(u32, ByteBuf)>::new().unwrap();
    let child = {
        let q = q.clone();
        fork(20, move || {
            let mut seq = 0;
            for &len in &SIZES {
                for l in [3, len, 5] {
                    if q.put((seq, payload(0, seq, l))).is_err() {
                        return 1;
                    }
                    seq += 1;
                }
            }
            0
        })
    };
    let mut seq = 0;
    for &len in &SIZES {
        for l in [3, len, 5] {
            let (s, got) = q.get_timeout(LONG).unwrap();
            assert_eq!(s, seq, "out of order");
            assert_eq!(got.len(), l);
            assert!(got == payload(0, seq, l), "item {seq} of {l} bytes differs");
            seq += 1;
        }
    }
    assert_eq!(reap(child, REAP), 0);
    assert!(q.try_get().unwrap_err().is_empty());
}

/// 3 producers, 2 consumers, sizes from 0 B to 1 MiB: each item arrives once,
/// intact, and each producer's items in its order at any one consumer.
#[test]
fn three_producers_two_consumers_lose_and_duplicate_nothing() {
    const N: u32 = 100;
    let len_of = |p: u32, i: u32| [0, 40, 49, 1009, 4096, 70_000, 1 << 20][((p * 7 + i) % 7) as usize];
    let work = Queue::<Option<(u32, u32, ByteBuf)>>::with_maxsize(8).unwrap();
    let results = SimpleQueue::<(u32, u32)>::new().unwrap();
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let work = work.clone();
            fork(20, move || {
                for i in 0..N {
                    if work.put_timeout(Some((p, i, payload(p, i, len_of(p, i)))), LONG).is_err() {
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
                let mut last = [None::<u32>; 3];
                loop {
                    match work.get_timeout(LONG) {
                        Ok(Some((p, i, data))) => {
                            if data != payload(p, i, len_of(p, i)) {
                                return 4;
                            }
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
        assert_eq!(reap(c, REAP), 0, "a consumer failed (4: a damaged item, 3: out of order)");
    }
    let mut seen = BTreeSet::new();
    while let Ok(id) = results.try_get() {
        assert!(seen.insert(id), "{id:?} delivered twice");
    }
    assert_eq!(seen.len(), 3 * N as usize, "items lost");
}

/// `maxsize` counts large items as items; the try and timeout forms, close and
/// the cap work for them as for small ones.
#[test]
fn large_items_keep_every_queue_rule() {
    let q = QueueBuilder::new().maxsize(2).max_item_bytes(3 << 20).build::<ByteBuf>().unwrap();
    let big = payload(1, 1, 2 << 20);
    q.try_put(big.clone()).unwrap();
    q.put_timeout(big.clone(), LONG).unwrap();
    assert!(q.full());
    assert!(q.try_put(big.clone()).unwrap_err().is_full());
    let err = q.put_timeout(big.clone(), Duration::from_millis(30)).unwrap_err();
    assert!(err.error().is_timeout() && *err.item() == big, "the item comes back");
    // Over the cap: refused at once, naming both sizes (2 varint bytes of length).
    match q.try_get().and_then(|_| q.try_put(payload(1, 2, 3 << 20)).map_err(Into::into)) {
        Err(QueueError::TooLarge { size, limit }) => assert_eq!((size, limit), ((3 << 20) + 4, 3 << 20)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(q.get_timeout(LONG).unwrap(), big);
    assert!(q.get_timeout(Duration::from_millis(30)).unwrap_err().is_timeout());
    q.put(big.clone()).unwrap();
    q.close();
    assert!(matches!(q.try_get(), Err(QueueError::Closed)));
    assert!(matches!(q.put(big).unwrap_err().error(), QueueError::Closed));

    // The default cap is 64 MiB.
    let q = Queue::<ByteBuf>::new().unwrap();
    assert_eq!(q.max_item_bytes(), 64 << 20);
    match q.try_put(ByteBuf::from(vec![0; 64 << 20])) {
        Err(e) => assert!(matches!(e.error(), QueueError::TooLarge { size, limit: 67_108_864 } if *size > 64 << 20)),
        Ok(()) => panic!("an item over the cap went in"),
    }
}

#[test]
fn joinable_and_simple_queues_take_large_items_across_processes() {
    let jq = JoinableQueue::<ByteBuf>::new().unwrap();
    let sq = SimpleQueue::<ByteBuf>::new().unwrap();
    let child = {
        let (jq, sq) = (jq.clone(), sq.clone());
        fork(20, move || {
            for i in 0..4 {
                let Ok(item) = jq.get_timeout(LONG) else { return 1 };
                if item != payload(2, i, 3 << 20) || sq.put(item).is_err() || jq.task_done().is_err() {
                    return 2;
                }
            }
            0
        })
    };
    for i in 0..4 {
        jq.put(payload(2, i, 3 << 20)).unwrap();
    }
    assert!(jq.join_timeout(LONG).is_ok(), "the child's task_done calls did not come");
    for i in 0..4 {
        assert!(sq.get().unwrap() == payload(2, i, 3 << 20));
    }
    assert_eq!(reap(child, REAP), 0);
}

/// The zero-copy read hands the encoded bytes of slot items and block items alike.
#[test]
fn get_bytes_with_sees_the_encoding_in_place() {
    let q = Queue::<ByteBuf>::new().unwrap();
    for len in [0, 10, 5000, 1 << 20] {
        let item = payload(3, len as u32, len);
        q.put(item.clone()).unwrap();
        let bytes = q.get_bytes_with(|b| b.to_vec()).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&item).unwrap());
    }
    assert!(q.try_get_bytes_with(|_| ()).unwrap_err().is_empty());
    assert!(q.get_bytes_with_timeout(Duration::from_millis(20), |_| ()).unwrap_err().is_timeout());
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
}

/// 1,000 default queues add at most 256 MiB of RSS, one fd each.
#[test]
fn a_thousand_empty_queues_cost_little() {
    let before = rss_bytes();
    let queues: Vec<Queue<String>> = (0..1000).map(|_| Queue::new().unwrap()).collect();
    let added = rss_bytes().saturating_sub(before);
    assert!(added <= 256 << 20, "1000 queues added {added} bytes of RSS");
    for q in &queues[..10] {
        assert!(q.shared_memory_bytes() <= 256 << 10, "an empty queue holds {} bytes", q.shared_memory_bytes());
    }
    eprintln!(
        "1000 empty queues: +{} KiB RSS, {} B of shared memory each",
        added >> 10,
        queues[0].shared_memory_bytes()
    );
}

/// After 1,000 items of 1 MiB in and out, the queue's memfd is back near its
/// empty size once a getter has waited on it.
#[test]
fn a_drained_queue_gives_its_memory_back() {
    let q = Queue::<ByteBuf>::new().unwrap();
    let empty = q.shared_memory_bytes();
    let item = ByteBuf::from(vec![7u8; 1 << 20]);
    let mut peak = 0;
    for round in 0..10 {
        for _ in 0..100 {
            q.put_ref(&item).unwrap();
        }
        peak = peak.max(q.shared_memory_bytes());
        for _ in 0..100 {
            assert_eq!(q.get().unwrap().len(), 1 << 20, "round {round}");
        }
    }
    assert!(peak >= 100 << 20, "100 queued items of 1 MiB should hold 100 MiB, held {peak}");
    let drained = q.shared_memory_bytes();
    assert!(drained <= empty + (32 << 20) + (1 << 20), "drained: {drained} bytes (empty: {empty})");
    // An idle getter gives the warm blocks back too.
    assert!(q.get_timeout(mproc_ipc::queue::IDLE_RELEASE + Duration::from_millis(50)).unwrap_err().is_timeout());
    // What stays: the ring slots used so far (4096 x 64 B at most); the
    // pages of the block table go too.
    let idle = q.shared_memory_bytes();
    assert!(idle <= empty + (256 << 10), "idle: {idle} bytes (empty: {empty})");
    eprintln!("empty {empty} B, peak {peak} B, drained {drained} B, idle {idle} B");
}

/// A queue made after the fork reaches the child by `send_handle`; large
/// items cross both ways through it.
#[test]
fn large_items_cross_a_queue_sent_by_send_handle() {
    let (here, there) = mproc_ipc::Connection::pair().unwrap();
    let child = fork(20, move || {
        let mut conn = there;
        let Ok(q) = conn.recv_handle::<Queue<ByteBuf>>() else { return 2 };
        match q.get_timeout(LONG) {
            Ok(item) if item == payload(4, 0, 2 << 20) => {}
            _ => return 3,
        }
        if q.put(payload(4, 1, 3 << 20)).is_err() {
            return 4;
        }
        0
    });
    let mut here = here;
    let q = Queue::<ByteBuf>::new().unwrap();
    q.put(payload(4, 0, 2 << 20)).unwrap();
    here.send_handle(&q).unwrap();
    assert_eq!(reap(child, REAP), 0);
    assert!(q.get_timeout(LONG).unwrap() == payload(4, 1, 3 << 20));
}

const ENV: &str = "MPROC_IPC_QUEUE_LARGE_TOKEN";

type Tokens = (<Queue<ByteBuf> as mproc_shm::Share>::Token, <Queue<ByteBuf> as mproc_shm::Share>::Token);

/// Runs only as the spawned child: echoes each request back, reversed, until
/// an empty one.
#[test]
fn large_spawn_child_entry() {
    use mproc_shm::Share;
    let Some((req, rep)) = mproc_testkit::token_from_env::<Tokens>(ENV) else { return };
    let (req, rep) = (Queue::<ByteBuf>::import(req).unwrap(), Queue::<ByteBuf>::import(rep).unwrap());
    loop {
        let mut item = req.get_timeout(LONG).expect("a request").into_vec();
        if item.is_empty() {
            return;
        }
        item.reverse();
        rep.put(ByteBuf::from(item)).unwrap();
    }
}

/// A spawned (re-executed) child imports the queues by token and maps their
/// blocks itself.
#[test]
fn large_items_cross_into_a_spawned_child() {
    use mproc_shm::{Exports, Share};
    let (req, rep) = (Queue::<ByteBuf>::new().unwrap(), Queue::<ByteBuf>::new().unwrap());
    let mut exports = Exports::new();
    let tokens: Tokens = (req.export(&mut exports).unwrap(), rep.export(&mut exports).unwrap());
    let mut child = mproc_testkit::spawn_entry("large_spawn_child_entry", ENV, &tokens, exports.fds());
    for (i, len) in [(0u32, 5 << 20), (1, 70_000), (2, 3)] {
        let item = payload(5, i, len);
        req.put(item.clone()).unwrap();
        let mut echo = rep.get_timeout(LONG).expect("an echo").into_vec();
        echo.reverse();
        assert!(echo == item.into_vec(), "echo of {len} bytes differs");
    }
    req.put(ByteBuf::new()).unwrap();
    let deadline = std::time::Instant::now() + REAP;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "child failed: {status}");
            break;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within {REAP:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A slot holds at least a block reference: a tiny `slot_bytes` still works.
#[test]
fn a_tiny_slot_size_still_takes_every_size() {
    let q = QueueBuilder::new().slot_bytes(1).max_item_bytes(1000).build::<ByteBuf>().unwrap();
    assert_eq!(q.slot_bytes(), 16);
    for len in [0, 14, 15, 16, 17, 500, 997] {
        q.put(payload(6, len as u32, len)).unwrap();
        assert!(q.get().unwrap() == payload(6, len as u32, len), "item of {len} bytes");
    }
}

/// A default queue whose ring has turned over holds its control page and its
/// 4096 slots of 64 B (256 KiB), nothing more.
#[test]
fn a_turned_ring_holds_only_its_slots() {
    let q = Queue::<u64>::new().unwrap();
    let empty = q.shared_memory_bytes();
    for i in 0..5000u64 {
        q.put(i).unwrap();
        assert_eq!(q.get().unwrap(), i);
    }
    let used = q.shared_memory_bytes();
    assert!(used <= empty + (256 << 10), "after a turn: {used} bytes (empty: {empty})");
    assert!(used >= 256 << 10, "5000 items should have touched every slot, held {used} bytes");
}
