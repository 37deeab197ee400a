//! The per-process table of box segments: this process's pool (segments it
//! created, reused once FREE) and its cache of other processes' segments
//! (mapped once, reused for every later box of the same segment).
//!
//! One table, one bound ([`CacheLimits`]: entries and bytes), least recently
//! used first out. What can leave: another process's segment that no handle
//! here uses (unmapped), and one of this process's segments that is FREE
//! (retired and unlinked). A segment held or in flight stays. When nothing
//! can leave, a new segment of this process is made outside the pool (a
//! one-shot box, unlinked by its last owner) and another process's segment is
//! mapped for its one box and unmapped after it.

use std::sync::Arc;

use super::state::{self, FREE, HELD, RETIRED};
use super::BoxHeader;
use crate::pidlock::PidLock;
use crate::primitive::{AtomicU64, Ordering};
use crate::Segment;

/// The bound of a process's table of box segments (see
/// [`set_cache_limits`](super::set_cache_limits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// At most this many segments, this process's and others', mapped at once.
    pub entries: usize,
    /// At most this many bytes of them (segment sizes, headers included).
    pub bytes: usize,
}

impl CacheLimits {
    /// The default: 64 segments, 256 MiB.
    pub const DEFAULT: CacheLimits = CacheLimits { entries: 64, bytes: 256 << 20 };
}

impl Default for CacheLimits {
    fn default() -> CacheLimits {
        CacheLimits::DEFAULT
    }
}

/// What a process's table of box segments holds now (see
/// [`cache_stats`](super::cache_stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Segments in the table.
    pub entries: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Of them, made by this process (its pool).
    pub own: usize,
    /// Of the pool, FREE now (ready for the next box).
    pub own_free: usize,
    /// Other processes' segments, mapped here.
    pub foreign: usize,
}

/// One mapped box segment. Handles share it with the table.
pub(crate) struct Mapped {
    pub(crate) name: Arc<str>,
    pub(crate) seg: Segment,
    /// The creating process (the header's copy, read once).
    pub(crate) creator: u32,
    /// Recycled through the creator's pool (else one-shot, unlinked by its
    /// last owner).
    pub(crate) pooled: bool,
}

impl Mapped {
    pub(crate) fn header(&self) -> &BoxHeader {
        // SAFETY: checked in bounds, aligned and of the right kind when the
        // segment was made or first mapped; lives as long as `seg`.
        unsafe { &*self.seg.as_ptr().cast::<BoxHeader>() }
    }

    pub(crate) fn word(&self) -> &AtomicU64 {
        &self.header().state
    }

    /// Unlinks a segment this process retired (the name may be gone already:
    /// the creator's tracker, when the creator's tree ended).
    pub(crate) fn unlink(&self) {
        let _ = Segment::unlink(&self.name);
    }
}

struct Entry {
    map: Arc<Mapped>,
    last_use: u64,
}

struct Table {
    entries: Vec<Entry>,
    bytes: usize,
    tick: u64,
    limits: CacheLimits,
}

static TABLE: PidLock<Table> =
    PidLock::new(Table { entries: Vec::new(), bytes: 0, tick: 0, limits: CacheLimits::DEFAULT });

/// Runs `f` on the table, as process `me`.
fn with<R>(f: impl FnOnce(&mut Table, u32) -> R) -> R {
    let me = crate::sys::pid();
    let (mut t, taken_over) = TABLE.lock(me);
    if taken_over {
        // Forked while a parent thread was changing it: forget it (leak the
        // mappings rather than trust a half-made vector). Those segments are
        // the parent's business; ours start now.
        std::mem::forget(std::mem::take(&mut t.entries));
        t.bytes = 0;
    }
    f(&mut t, me)
}

impl Table {
    fn tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn remove(&mut self, i: usize) -> Arc<Mapped> {
        let e = self.entries.swap_remove(i);
        self.bytes -= e.map.seg.len();
        e.map
    }

    /// Makes the entry `i` leave if it can (see the module doc): true if it left.
    fn evict(&mut self, i: usize, me: u32) -> bool {
        let map = &self.entries[i].map;
        let word = map.word().load(Ordering::Acquire);
        let own = map.creator == me;
        let idle = Arc::strong_count(map) == 1;
        let gone = if word == RETIRED {
            true
        } else if own {
            reclaimable(map, word) && retire_free(map)
        } else if idle {
            // Unmapped here; unlinked too if nobody else will reuse it.
            dead_creators_free(map, word);
            true
        } else {
            false
        };
        if gone {
            self.remove(i);
        }
        gone
    }

    /// Makes room for `bytes` more in one more entry, evicting the least
    /// recently used first. False if there is no room.
    fn make_room(&mut self, bytes: usize, me: u32) -> bool {
        let fits = |t: &Table| t.entries.len() < t.limits.entries && t.bytes + bytes <= t.limits.bytes;
        if bytes > self.limits.bytes || self.limits.entries == 0 {
            return false;
        }
        while !fits(self) {
            let mut order: Vec<(u64, usize)> = self.entries.iter().enumerate().map(|(i, e)| (e.last_use, i)).collect();
            order.sort_unstable();
            // Evicting swaps the last entry into the hole: evict one, then
            // look again.
            if !order.iter().any(|&(_, i)| self.evict(i, me)) {
                return false;
            }
        }
        true
    }

    fn push(&mut self, map: Arc<Mapped>) {
        let last_use = self.tick();
        self.bytes += map.seg.len();
        self.entries.push(Entry { map, last_use });
    }
}

/// True if a segment of this process read as `word` can be made FREE (it
/// is, or its holder died), and makes it so.
fn reclaimable(map: &Mapped, word: u64) -> bool {
    state::phase(word) == FREE || state::reclaim_dead(map.word(), word, crate::sys::alive)
}

/// Retires a FREE segment (which may have been taken meanwhile) and unlinks it.
fn retire_free(map: &Mapped) -> bool {
    let word = map.word().load(Ordering::Acquire);
    let retired = state::phase(word) == FREE && state::retire(map.word(), word);
    if retired {
        map.unlink();
    }
    retired
}

/// Another process's segment leaves this table: if its creator has died and
/// it is FREE, nobody will reuse it, so this process retires and unlinks it
/// now instead of leaving it to the creator's tracker. True if it did.
fn dead_creators_free(map: &Mapped, word: u64) -> bool {
    state::phase(word) == FREE && map.pooled && !crate::sys::alive(map.creator) && retire_free(map)
}

/// The smallest segment `need` bytes are given, and whether a segment of
/// `cap` bytes is good for them (not more than twice the need, or 64 KiB
/// more, so small boxes do not pin big segments).
pub(crate) fn capacity_for(need: usize) -> usize {
    need.next_multiple_of(4096)
}

fn fits(cap: usize, need: usize) -> bool {
    cap >= need && cap <= need.saturating_mul(2).max(need + (64 << 10))
}

/// This process's pool: a FREE segment of its own that fits `need` bytes,
/// taken (HELD by this process), with the word it now has. A segment held by
/// a process that died is taken too (its box was not lost forever).
pub(crate) fn take(need: usize) -> Option<(Arc<Mapped>, u64)> {
    with(|t, me| {
        let tick = t.tick();
        for pass in 0..2 {
            for e in t.entries.iter_mut() {
                let map = &e.map;
                if map.creator != me || !fits(map.seg.len(), need) {
                    continue;
                }
                let word = map.word().load(Ordering::Acquire);
                let word = match state::phase(word) {
                    FREE => word,
                    // Second pass: a dead holder's segment.
                    HELD if pass == 1 && state::reclaim_dead(map.word(), word, crate::sys::alive) => {
                        map.word().load(Ordering::Acquire)
                    }
                    _ => continue,
                };
                if let Some(held) = state::take_free(map.word(), word, me) {
                    e.last_use = tick;
                    return Some((map.clone(), held));
                }
            }
        }
        None
    })
}

/// Makes a new segment with `make` (given whether it will be pooled) and
/// enters it in the pool if there is room for `bytes` more.
pub(crate) fn create<E>(bytes: usize, make: impl FnOnce(bool) -> Result<Arc<Mapped>, E>) -> Result<Arc<Mapped>, E> {
    with(|t, me| {
        let pooled = t.make_room(bytes, me);
        let map = make(pooled)?;
        if pooled {
            t.push(map.clone());
        }
        Ok(map)
    })
}

/// The cached mapping of segment `name`, if any.
pub(crate) fn lookup(name: &str) -> Option<Arc<Mapped>> {
    with(|t, _| {
        let tick = t.tick();
        let e = t.entries.iter_mut().find(|e| *e.map.name == *name)?;
        e.last_use = tick;
        Some(e.map.clone())
    })
}

/// Enters another process's pooled segment, just mapped, if there is room.
pub(crate) fn insert_foreign(map: &Arc<Mapped>) {
    with(|t, me| {
        // Whatever leaves the table first: dead creators' FREE segments.
        let mut i = 0;
        while i < t.entries.len() {
            let m = &t.entries[i].map;
            let word = m.word().load(Ordering::Acquire);
            if word == RETIRED || (m.creator != me && Arc::strong_count(m) == 1 && dead_creators_free(m, word)) {
                t.remove(i);
            } else {
                i += 1;
            }
        }
        if !t.entries.iter().any(|e| e.map.name == map.name) && t.make_room(map.seg.len(), me) {
            t.push(map.clone());
        }
    })
}

/// Drops the table's entry of `name` (its segment was retired).
pub(crate) fn forget(name: &str) {
    with(|t, _| {
        if let Some(i) = t.entries.iter().position(|e| *e.map.name == *name) {
            t.remove(i);
        }
    })
}

/// See [`set_cache_limits`](super::set_cache_limits).
pub(crate) fn set_limits(limits: CacheLimits) {
    with(|t, me| {
        t.limits = limits;
        trim_to(t, me, limits);
    })
}

fn trim_to(t: &mut Table, me: u32, limits: CacheLimits) {
    let mut i = 0;
    while i < t.entries.len() {
        let over = t.entries.len() > limits.entries || t.bytes > limits.bytes;
        if !(over && t.evict(i, me)) {
            i += 1;
        }
    }
}

/// See [`trim`](super::trim).
pub(crate) fn trim() {
    with(|t, me| {
        let mut i = 0;
        while i < t.entries.len() {
            if !t.evict(i, me) {
                i += 1;
            }
        }
    })
}

/// See [`cache_stats`](super::cache_stats).
pub(crate) fn stats() -> CacheStats {
    with(|t, me| {
        let mut s = CacheStats { entries: t.entries.len(), bytes: t.bytes, ..CacheStats::default() };
        for e in &t.entries {
            if e.map.creator == me {
                s.own += 1;
                s.own_free += (state::phase(e.map.word().load(Ordering::Acquire)) == FREE) as usize;
            } else {
                s.foreign += 1;
            }
        }
        s
    })
}
