//! `ShmBox` recycling across real processes: a segment dropped by its
//! receiver goes back to its creator's pool and is never handed to two owners
//! at once; a token of an earlier round of a recycled segment is refused; a
//! receiver's cached mapping makes a recycled receipt map nothing; the table
//! of mappings keeps its bound on both sides. The kill cases are in
//! `handoff_kill.rs`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use mproc_ipc::{Bytes, Queue};
use mproc_shm::shm_box::{self, CacheLimits};
use mproc_shm::{ShmBox, ShmError};
use mproc_testkit::{fork, reap};

const LIMIT: Duration = Duration::from_secs(20);
const ROUNDS: u64 = if cfg!(debug_assertions) { 2_000 } else { 20_000 };

fn exists(name: &str) -> bool {
    Path::new("/dev/shm").join(name).exists()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// How many mappings of the segment `name` this process has.
fn mappings_of(name: &str) -> usize {
    let path = format!("/dev/shm/{name}");
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().filter(|l| l.ends_with(&path)).count()
}

/// Held by every test here: the test threads share this process's pool.
static POOL: Mutex<()> = Mutex::new(());

fn pool() -> MutexGuard<'static, ()> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two receivers take boxes from one queue while the sender makes new ones as
/// fast as the queue takes them: every box carries its round, and each
/// receiver stamps its pid into the box, waits, and checks that neither word
/// changed — which it would if the sender had been handed the segment again
/// while the receiver still held it. The handful of segments that serve all
/// rounds shows that they were recycled.
#[test]
fn a_recycled_segment_is_never_handed_to_two_owners() {
    let _pool = pool();
    let q = Queue::<Option<(u64, ShmBox<[u64]>)>>::with_maxsize(8).unwrap();
    let done = Queue::<(u64, u64)>::new().unwrap();
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let (q, done) = (q.clone(), done.clone());
            fork(60, move || {
                let me = std::process::id() as u64;
                let (mut got, mut bad) = (0, 0);
                while let Ok(Some((round, mut b))) = q.get_timeout(LIMIT) {
                    if b[0] != round || b[1] != 0 {
                        bad += 1;
                    }
                    b[1] = me;
                    for _ in 0..200 {
                        std::hint::spin_loop();
                    }
                    if b[0] != round || b[1] != me {
                        bad += 1;
                    }
                    got += 1;
                }
                done.put((got, bad)).map(|_| 0).unwrap_or(2)
            })
        })
        .collect();
    let mut names = HashSet::new();
    for round in 1..=ROUNDS {
        let mut b = ShmBox::<[u64]>::uncleared(512).unwrap();
        b[0] = round;
        b[1] = 0;
        names.insert(b.name().to_owned());
        q.put(Some((round, b))).unwrap();
    }
    q.put(None).unwrap();
    q.put(None).unwrap();
    let (mut got, mut bad) = (0, 0);
    for _ in 0..2 {
        let (g, b) = done.get_timeout(LIMIT).unwrap();
        got += g;
        bad += b;
    }
    for pid in receivers {
        assert_eq!(reap(pid, LIMIT), 0);
    }
    assert_eq!(got, ROUNDS, "every box was received once");
    assert_eq!(bad, 0, "a box changed under its holder: two owners at once");
    assert!(
        names.len() <= CacheLimits::DEFAULT.entries,
        "{} segments for {ROUNDS} rounds: not recycled within the pool's bound",
        names.len()
    );
    shm_box::trim();
    assert!(names.iter().all(|n| !exists(n)), "trim unlinked the FREE segments");
}

/// A token of round 1, replayed after its segment was recycled for round 2,
/// is refused (`BoxGone`) and takes nothing from round 2; the receiver's
/// second receipt of the segment opens no descriptor and maps nothing new.
#[test]
fn a_token_of_an_earlier_round_is_refused_and_a_recycled_receipt_maps_nothing() {
    let _pool = pool();
    let wire = Queue::<Bytes>::new().unwrap();
    let acks = Queue::<u8>::new().unwrap();
    let child = {
        let (wire, acks) = (wire.clone(), acks.clone());
        fork(60, move || {
            let receive = |bytes: &Bytes| postcard::from_bytes::<ShmBox<[u8]>>(bytes);
            let Ok(Ok(b1)) = wire.get_timeout(LIMIT).map(|t| receive(&t)) else { return 2 };
            let name = b1.name().to_owned();
            if b1[0] != 1 {
                return 3;
            }
            drop(b1);
            if mappings_of(&name) != 1 {
                return 12;
            }
            let (fds, stats) = (open_fds(), shm_box::cache_stats());
            if stats.foreign != 1 {
                return 4;
            }
            acks.put(1).unwrap();
            // Round 1's token again: the segment is in round 2 now.
            let Ok(stale) = wire.get_timeout(LIMIT) else { return 5 };
            if receive(&stale).is_ok() {
                return 6;
            }
            match shm_box::take_receive_error() {
                Some(ShmError::BoxGone { name: n }) if n == name => {}
                other => {
                    eprintln!("expected BoxGone for {name}, got {other:?}");
                    return 7;
                }
            }
            let Ok(Ok(b2)) = wire.get_timeout(LIMIT).map(|t| receive(&t)) else { return 8 };
            if b2.name() != name || b2[0] != 2 {
                return 9;
            }
            if open_fds() != fds || shm_box::cache_stats() != stats {
                eprintln!("fds {fds} -> {}, {stats:?} -> {:?}", open_fds(), shm_box::cache_stats());
                return 10;
            }
            // Round 2 is read through round 1's mapping: still one mapping.
            if mappings_of(&name) != 1 {
                eprintln!("{} mappings of {name}", mappings_of(&name));
                return 11;
            }
            0
        })
    };
    let mut b = ShmBox::<[u8]>::uncleared(100_000).unwrap();
    b[0] = 1;
    let name = b.name().to_owned();
    let round1 = postcard::to_allocvec(&b).unwrap();
    wire.put(round1.clone().into()).unwrap();
    assert_eq!(acks.get_timeout(LIMIT).unwrap(), 1);
    let mut b = ShmBox::<[u8]>::uncleared(100_000).unwrap();
    assert_eq!(b.name(), name, "the segment the receiver dropped is reused");
    b[0] = 2;
    let round2 = postcard::to_allocvec(&b).unwrap();
    wire.put(round1.into()).unwrap();
    wire.put(round2.into()).unwrap();
    assert_eq!(reap(child, LIMIT), 0);
    shm_box::trim();
    assert!(!exists(&name));
}

/// The bound on the sending side: with room for 3 segments, a process that
/// holds 5 boxes at once pools 3 and makes 2 one-shot (unlinked by their
/// drop); a box bigger than the byte bound is one-shot too. On the receiving
/// side: a process bound to 2 segments and 1 MiB that receives 6 boxes of 6
/// segments (holding them all, then again after dropping them) never maps more
/// than that into its table, and every box still arrives whole.
#[test]
fn the_table_of_mappings_keeps_its_bound_on_both_sides() {
    let _pool = pool();
    let sender = fork(60, || {
        shm_box::set_cache_limits(CacheLimits { entries: 3, bytes: 1 << 20 });
        let boxes: Vec<_> = (0..5).map(|_| ShmBox::<[u8]>::uncleared(64 << 10).unwrap()).collect();
        let s = shm_box::cache_stats();
        if s.entries > 3 || s.bytes > 1 << 20 || s.own != 3 {
            eprintln!("{s:?}");
            return 2;
        }
        let names: Vec<String> = boxes.iter().map(|b| b.name().to_owned()).collect();
        drop(boxes);
        let kept = names.iter().filter(|n| exists(n)).count();
        if kept != 3 {
            eprintln!("{kept} of 5 segments stayed after the drop, expected the 3 pooled");
            return 3;
        }
        let big = ShmBox::<[u8]>::uncleared(2 << 20).unwrap();
        let big_name = big.name().to_owned();
        drop(big);
        if exists(&big_name) || shm_box::cache_stats().entries > 3 {
            return 4;
        }
        shm_box::trim();
        if names.iter().any(|n| exists(n)) {
            return 5;
        }
        0
    });
    assert_eq!(reap(sender, LIMIT), 0);

    let q = Queue::<Option<ShmBox<[u8]>>>::new().unwrap();
    let acks = Queue::<u8>::new().unwrap();
    let receiver = {
        let (q, acks) = (q.clone(), acks.clone());
        fork(60, move || {
            shm_box::set_cache_limits(CacheLimits { entries: 2, bytes: 1 << 20 });
            for _round in 0..2 {
                let mut held = Vec::new();
                for i in 0..6u8 {
                    let Ok(Some(b)) = q.get_timeout(LIMIT) else { return 2 };
                    if b.len() != 200_000 || b[0] != i {
                        return 3;
                    }
                    held.push(b);
                    let s = shm_box::cache_stats();
                    if s.entries > 2 || s.bytes > 1 << 20 {
                        eprintln!("{s:?}");
                        return 4;
                    }
                }
                drop(held);
                acks.put(0).unwrap();
            }
            0
        })
    };
    let mut names = HashSet::new();
    for _round in 0..2 {
        let boxes: Vec<_> = (0..6u8)
            .map(|i| {
                let mut b = ShmBox::<[u8]>::uncleared(200_000).unwrap();
                b[0] = i;
                names.insert(b.name().to_owned());
                b
            })
            .collect();
        for b in boxes {
            q.put(Some(b)).unwrap();
        }
        assert_eq!(acks.get_timeout(LIMIT).unwrap(), 0);
    }
    assert_eq!(reap(receiver, LIMIT), 0);
    assert_eq!(names.len(), 6, "the second round reused the first round's segments");
    shm_box::trim();
    assert!(names.iter().all(|n| !exists(n)));
}
