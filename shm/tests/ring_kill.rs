//! Crash safety: producers and consumers SIGKILLed at random points, hundreds of
//! times. Every delivered message must be intact, none delivered twice, at most
//! the killed process's in-flight message lost, and the survivors must finish.

mod common;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::{check_msg, fill_msg, msg_len};
use mproc_shm::ring::{MpmcRing, RingError, SpscRing};
use mproc_shm::Segment;
use mproc_testkit::{fork, kill_and_reap, try_wait, wait_child, Exit};

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("MPROC_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("ring_kill seed: MPROC_KILL_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Lets the victim run for a random while (0.1–3 ms) so the kill lands at a
/// random point of its work. This is not synchronisation: any delay is correct.
fn random_pause(rng: &mut Rng) {
    std::thread::sleep(Duration::from_micros(100 + rng.below(2900)));
}

/// Shared counters and receipt flags for the MPMC kill test, in one segment.
struct Stats {
    seg: Segment,
}

const MAX_IDS: usize = 1024;
const SEQ_CAP: u64 = 1 << 13;
const WORDS: usize = 8 + MAX_IDS;

impl Stats {
    fn new() -> Stats {
        Stats { seg: Segment::anonymous(WORDS * 8 + MAX_IDS * SEQ_CAP as usize).unwrap() }
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < WORDS);
        // SAFETY: in bounds, 8-aligned (the segment is page-aligned), alive with self.
        unsafe { &*(self.seg.as_ptr().add(i * 8) as *const AtomicU64) }
    }
    fn stop_producers(&self) -> &AtomicU64 {
        self.word(0)
    }
    fn drain(&self) -> &AtomicU64 {
        self.word(1)
    }
    fn torn(&self) -> &AtomicU64 {
        self.word(2)
    }
    fn dup(&self) -> &AtomicU64 {
        self.word(3)
    }
    fn bad(&self) -> &AtomicU64 {
        self.word(4)
    }
    fn delivered(&self) -> &AtomicU64 {
        self.word(5)
    }
    /// Messages producer `id` has seen `try_push` accept.
    fn pushed(&self, id: u32) -> &AtomicU64 {
        self.word(8 + id as usize)
    }
    fn seen(&self, id: u32, seq: u64) -> &AtomicU8 {
        assert!((id as usize) < MAX_IDS && seq < SEQ_CAP);
        // SAFETY: in bounds; AtomicU8 has u8's layout.
        unsafe {
            &*(self.seg.as_ptr().add(WORDS * 8 + id as usize * SEQ_CAP as usize + seq as usize) as *const AtomicU8)
        }
    }
}

const MAX_MSG: usize = 200;

fn spawn_producer(ring: &MpmcRing, stats: &Stats, id: u32, quota: u64) -> libc::pid_t {
    let (ring, stats) = (ring.clone(), Stats { seg: stats.seg.clone() });
    fork(60, move || {
        let mut m = Vec::new();
        for seq in 0..quota {
            fill_msg(id, seq, msg_len(id, seq, MAX_MSG), &mut m);
            loop {
                if stats.stop_producers().load(Ordering::Relaxed) != 0 && quota == SEQ_CAP {
                    return 0;
                }
                match ring.try_push(&m) {
                    Ok(()) => break,
                    Err(RingError::Full { .. }) => std::thread::yield_now(),
                    Err(_) => return 2,
                }
            }
            stats.pushed(id).store(seq + 1, Ordering::Release);
        }
        // A long-lived producer that reached its cap idles until told to stop.
        while stats.stop_producers().load(Ordering::Relaxed) == 0 && quota == SEQ_CAP {
            std::thread::yield_now();
        }
        0
    })
}

fn spawn_consumer(ring: &MpmcRing, stats: &Stats) -> libc::pid_t {
    let (ring, stats) = (ring.clone(), Stats { seg: stats.seg.clone() });
    fork(60, move || {
        let mut buf = Vec::new();
        loop {
            match ring.try_pop_into(&mut buf) {
                Ok(true) => {}
                Ok(false) if stats.drain().load(Ordering::Acquire) != 0 => return 0,
                Ok(false) => {
                    std::thread::yield_now();
                    continue;
                }
                Err(_) => {
                    stats.bad().fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            match check_msg(&buf) {
                Some((id, seq)) if (id as usize) < MAX_IDS && seq < SEQ_CAP => {
                    if stats.seen(id, seq).fetch_add(1, Ordering::Relaxed) != 0 {
                        stats.dup().fetch_add(1, Ordering::Relaxed);
                    }
                    stats.delivered().fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {
                    stats.bad().fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    stats.torn().fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

const MPMC_KILLS: usize = 300;

#[test]
fn mpmc_producers_and_consumers_killed_at_random() {
    let mut rng = Rng::seeded();
    let ring = MpmcRing::new(32, MAX_MSG).unwrap();
    let stats = Stats::new();
    let mut next_id = 0u32;
    let mut producers: Vec<(libc::pid_t, u32)> = Vec::new();
    let mut consumers: Vec<libc::pid_t> = Vec::new();
    for _ in 0..2 {
        producers.push((spawn_producer(&ring, &stats, next_id, SEQ_CAP), next_id));
        next_id += 1;
        consumers.push(spawn_consumer(&ring, &stats));
    }
    let (mut producer_kills, mut consumer_kills) = (0usize, 0usize);
    let started = Instant::now();
    for _ in 0..MPMC_KILLS {
        random_pause(&mut rng);
        // No child may have died on its own: a failure shows as an exit code.
        for &(pid, _) in &producers {
            assert_eq!(try_wait(pid), None, "producer {pid} exited by itself");
        }
        for &pid in &consumers {
            assert_eq!(try_wait(pid), None, "consumer {pid} exited by itself");
        }
        if rng.below(2) == 0 {
            let victim = rng.below(producers.len() as u64) as usize;
            kill_and_reap(producers[victim].0);
            producer_kills += 1;
            assert!((next_id as usize) < MAX_IDS - 4);
            producers[victim] = (spawn_producer(&ring, &stats, next_id, SEQ_CAP), next_id);
            next_id += 1;
        } else {
            let victim = rng.below(consumers.len() as u64) as usize;
            kill_and_reap(consumers[victim]);
            consumer_kills += 1;
            consumers[victim] = spawn_consumer(&ring, &stats);
        }
    }
    let kill_phase = started.elapsed();
    // The surviving producers stop; fresh ones must get their whole quota through.
    stats.stop_producers().store(1, Ordering::Release);
    for &(pid, _) in &producers {
        assert_eq!(wait_child(pid, Duration::from_secs(30)), Exit::Code(0));
    }
    const FINAL: u64 = 2_000;
    let finishers: Vec<_> = (0..2)
        .map(|k| {
            let id = next_id + k;
            (spawn_producer(&ring, &stats, id, FINAL), id)
        })
        .collect();
    for &(pid, _) in &finishers {
        assert_eq!(wait_child(pid, Duration::from_secs(30)), Exit::Code(0), "the ring is wedged");
    }
    stats.drain().store(1, Ordering::Release);
    for &pid in &consumers {
        assert_eq!(wait_child(pid, Duration::from_secs(30)), Exit::Code(0));
    }
    assert_eq!(ring.try_pop().unwrap(), None, "the consumers drained the ring");

    assert_eq!(stats.torn().load(Ordering::Relaxed), 0, "torn messages delivered");
    assert_eq!(stats.bad().load(Ordering::Relaxed), 0, "corrupt messages delivered");
    assert_eq!(stats.dup().load(Ordering::Relaxed), 0, "duplicates delivered");
    let mut lost = 0;
    for id in 0..next_id {
        let pushed = stats.pushed(id).load(Ordering::Relaxed);
        for seq in 0..SEQ_CAP {
            let seen = stats.seen(id, seq).load(Ordering::Relaxed);
            if seq < pushed {
                lost += (seen == 0) as usize;
            } else if seq > pushed {
                // Only the in-flight message (seq == pushed) may arrive unrecorded.
                assert_eq!(seen, 0, "producer {id} message {seq} arrived but was never pushed");
            }
        }
    }
    for &(_, id) in &finishers {
        assert!((0..FINAL).all(|seq| stats.seen(id, seq).load(Ordering::Relaxed) == 1), "finisher {id} lost messages");
    }
    let delivered = stats.delivered().load(Ordering::Relaxed);
    eprintln!(
        "{producer_kills} producer and {consumer_kills} consumer kills in {kill_phase:?}; \
         {delivered} messages delivered, {lost} lost"
    );
    assert!(lost <= consumer_kills, "{lost} committed messages lost to {consumer_kills} consumer kills");
    assert!(delivered > (MPMC_KILLS as u64), "traffic flowed between kills");
}

const SPSC_KILLS: usize = 100;

/// SPSC producers killed at random: the consumer (the parent) only ever sees
/// whole messages, and a killed producer loses nothing it committed.
#[test]
fn spsc_producers_killed_at_random() {
    let mut rng = Rng::seeded();
    let ring = SpscRing::new(4096).unwrap();
    let mut rx = ring.consumer();
    let mut next = 0u64;
    let mut buf = Vec::new();
    let check = |buf: &[u8], next: &mut u64| {
        assert_eq!(check_msg(buf), Some((7, *next)), "torn, lost or out-of-order message");
        *next += 1;
    };
    for _ in 0..SPSC_KILLS {
        let start = next;
        let tx_ring = ring.clone();
        let child = fork(60, move || {
            let mut tx = tx_ring.producer();
            let mut m = Vec::new();
            for seq in start.. {
                fill_msg(7, seq, msg_len(7, seq, 700), &mut m);
                while tx.try_push(&m).is_err() {
                    std::hint::spin_loop();
                }
            }
            0
        });
        let until = Instant::now() + Duration::from_micros(100 + rng.below(2900));
        while Instant::now() < until {
            if rx.try_pop_into(&mut buf).unwrap() {
                check(&buf, &mut next);
            }
        }
        kill_and_reap(child);
        // The producer is gone: what the ring holds now is all it committed.
        while rx.try_pop_into(&mut buf).unwrap() {
            check(&buf, &mut next);
        }
    }
    eprintln!("{SPSC_KILLS} SPSC producer kills, {next} messages delivered");
    assert!(next > SPSC_KILLS as u64);
}

/// SPSC consumers killed at random while the parent produces: a new consumer
/// resumes where the killed one stopped — at its unreleased message, or the one
/// after it if the kill fell between release and recording — and nothing is torn.
#[test]
fn spsc_consumers_killed_at_random() {
    let mut rng = Rng::seeded();
    let ring = SpscRing::new(4096).unwrap();
    let mut tx = ring.producer();
    // progress[0]: next seq the consumers expect; progress[1]: failures.
    let progress = Segment::anonymous(16).unwrap();
    let word = |i: usize| {
        // SAFETY: two 8-aligned words inside the segment, alive with `progress`.
        unsafe { &*(progress.as_ptr().add(i * 8) as *const AtomicU64) }
    };
    let mut seq = 0u64;
    let mut m = Vec::new();
    let push_until = |tx: &mut mproc_shm::ring::Producer, seq: &mut u64, m: &mut Vec<u8>, until: Instant| loop {
        fill_msg(8, *seq, msg_len(8, *seq, 700), m);
        loop {
            match tx.try_push(m) {
                Ok(()) => break,
                Err(RingError::Full { .. }) if Instant::now() < until => std::hint::spin_loop(),
                Err(RingError::Full { .. }) => return,
                Err(e) => panic!("{e}"),
            }
        }
        *seq += 1;
    };
    for round in 0..=SPSC_KILLS {
        let rx_ring = ring.clone();
        let progress = progress.clone();
        let last_round = round == SPSC_KILLS;
        let child = fork(60, move || {
            let word = |i: usize| {
                // SAFETY: as above.
                unsafe { &*(progress.as_ptr().add(i * 8) as *const AtomicU64) }
            };
            let mut rx = rx_ring.consumer();
            let mut first = true;
            loop {
                let Some(g) = rx.peek().unwrap() else {
                    if last_round {
                        return 0; // nothing more is pushed in the last round
                    }
                    std::hint::spin_loop();
                    continue;
                };
                let expect = word(0).load(Ordering::Relaxed);
                let ok = match check_msg(&g) {
                    Some((8, s)) => s == expect || (first && s == expect + 1),
                    _ => false,
                };
                if !ok {
                    word(1).fetch_add(1, Ordering::Relaxed);
                    return 3;
                }
                first = false;
                let s = check_msg(&g).unwrap().1;
                g.release();
                word(0).store(s + 1, Ordering::Relaxed);
            }
        });
        if last_round {
            assert_eq!(wait_child(child, Duration::from_secs(30)), Exit::Code(0));
        } else {
            push_until(&mut tx, &mut seq, &mut m, Instant::now() + Duration::from_micros(100 + rng.below(2900)));
            kill_and_reap(child);
        }
        assert_eq!(word(1).load(Ordering::Relaxed), 0, "a consumer saw a torn or misplaced message");
    }
    assert_eq!(word(0).load(Ordering::Relaxed), seq, "the last consumer drained every message");
}

/// A pid that certainly ran and is gone: a child that exited and was reaped.
fn dead_pid() -> u32 {
    let pid = fork(5, || 0);
    assert_eq!(wait_child(pid, Duration::from_secs(5)), Exit::Code(0));
    pid as u32
}

fn state_word(lap: u32, state: u64, pid: u32) -> u64 {
    (lap as u64) << 32 | state << 30 | pid as u64
}

/// Deterministic forms of the two crash cases: a slot left WRITING by a dead
/// producer is skipped by the next consumer, and a slot left READING by a dead
/// consumer is reclaimed by the next producer that needs it.
#[test]
fn mpmc_dead_claimers_are_skipped_and_reclaimed() {
    const WRITING: u64 = 1;
    const READING: u64 = 3;
    let dead = dead_pid();
    // A producer claimed position 0 and died before writing (or before advancing tail).
    let ring = MpmcRing::new(4, 16).unwrap();
    mproc_shm::__testing::slot_state(&ring, 0).store(state_word(0, WRITING, dead), Ordering::SeqCst);
    assert_eq!(ring.try_pop().unwrap(), None, "the dead writer's slot is skipped, nothing else is there");
    ring.try_push(b"after").unwrap();
    assert_eq!(ring.try_pop().unwrap().as_deref(), Some(&b"after"[..]));

    // A consumer claimed position 0 of a full ring and died mid-copy.
    let ring = MpmcRing::new(4, 16).unwrap();
    for i in 0..4u8 {
        ring.try_push(&[i]).unwrap();
    }
    mproc_shm::__testing::slot_state(&ring, 0).store(state_word(0, READING, dead), Ordering::SeqCst);
    ring.try_push(&[4]).unwrap(); // reclaims slot 0: message 0 was the dead consumer's
    let got: Vec<_> = std::iter::from_fn(|| ring.try_pop().unwrap()).collect();
    assert_eq!(got, vec![vec![1], vec![2], vec![3], vec![4]]);

    // A live claimer is never robbed: our own pid holds slot 0 WRITING.
    let ring = MpmcRing::new(4, 16).unwrap();
    mproc_shm::__testing::slot_state(&ring, 0).store(state_word(0, WRITING, std::process::id()), Ordering::SeqCst);
    assert_eq!(ring.try_pop().unwrap(), None);
    assert_eq!(
        mproc_shm::__testing::slot_state(&ring, 0).load(Ordering::SeqCst),
        state_word(0, WRITING, std::process::id())
    );
}

/// The race the loom model of one consumer cannot afford: two consumer threads
/// and a producer thread meet a slot left WRITING by a dead producer, thousands
/// of times; every round must deliver both messages once, within a deadline.
#[test]
fn mpmc_dead_writer_skip_races_threads() {
    const WRITING: u64 = 1;
    let dead = dead_pid();
    let rounds = if cfg!(debug_assertions) { 2_000 } else { 20_000 };
    for round in 0..rounds {
        let ring = MpmcRing::new(2, 8).unwrap();
        mproc_shm::__testing::slot_state(&ring, 0).store(state_word(0, WRITING, dead), Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        let pop = |ring: &MpmcRing| loop {
            if let Some(m) = ring.try_pop().unwrap() {
                return m;
            }
            assert!(Instant::now() < deadline, "round {round}: a consumer is stuck");
            std::thread::yield_now();
        };
        let mut got = std::thread::scope(|s| {
            s.spawn(|| {
                for m in [[7u8], [8]] {
                    while ring.try_push(&m).is_err() {
                        assert!(Instant::now() < deadline, "round {round}: the producer is stuck");
                        std::thread::yield_now();
                    }
                }
            });
            let other = s.spawn(|| pop(&ring));
            vec![pop(&ring), other.join().unwrap()]
        });
        got.sort();
        assert_eq!(got, vec![vec![7], vec![8]], "round {round}");
    }
}
