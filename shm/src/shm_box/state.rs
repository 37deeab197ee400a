//! The state word of a `ShmBox` segment: who may touch the box now, and the
//! ticket (generation) that makes every token single-use.
//!
//! One `AtomicU64` in the segment's header, moved only by compare-and-swap, so
//! each transition has exactly one winner among all the processes that try it.
//! Every transition but [`retire`] bumps the ticket, so a word value never
//! comes back (until the 40-bit ticket wraps, after 2^40 transitions of one
//! segment): a token names the exact word it was sent at, and is good for one
//! claim of that one round.

use crate::primitive::{AtomicU64, Ordering};

/// Bits 0–1 of the word: the phase.
const PHASE_MASK: u64 = 0b11;
/// Bits 2–23: the holder's pid (pids are below 2^22 on Linux).
const PID_SHIFT: u32 = 2;
const PID_MASK: u64 = (1 << 22) - 1;
/// Bits 24–63: the ticket.
const TICKET_SHIFT: u32 = 24;
const TICKET_MASK: u64 = (1 << 40) - 1;

/// The phases of a box's segment:
///
/// | phase   | pid    | meaning                                               | left by                          |
/// |---------|--------|-------------------------------------------------------|----------------------------------|
/// | FREE    | 0      | in its creator's pool, nobody's                       | [`take_free`] → HELD, [`retire`] |
/// | HELD    | holder | a handle in process `pid` owns it                     | [`send`] → SENT, [`release`] → FREE, [`reclaim_dead`] → FREE (holder dead) |
/// | SENT    | 0      | a token for it is in flight, nobody holds it          | [`claim`] → HELD (receiver, or the sender taking it back) |
/// | RETIRED | 0      | being unlinked, never used again (ticket bits zero)   | —                                |
pub(crate) const FREE: u64 = 0;
/// See [`FREE`].
pub(crate) const HELD: u64 = 1;
/// See [`FREE`].
pub(crate) const SENT: u64 = 2;
/// The whole word of a retired segment (see [`FREE`]).
pub(crate) const RETIRED: u64 = 3;

/// The phase of `word` ([`FREE`], [`HELD`], [`SENT`] or [`RETIRED`]).
#[inline]
pub(crate) fn phase(word: u64) -> u64 {
    word & PHASE_MASK
}

/// The holder's pid of a HELD word (0 otherwise).
#[inline]
pub(crate) fn holder(word: u64) -> u32 {
    ((word >> PID_SHIFT) & PID_MASK) as u32
}

/// The ticket (generation) of `word`.
#[inline]
pub(crate) fn ticket(word: u64) -> u64 {
    word >> TICKET_SHIFT
}

#[inline]
fn make(phase: u64, pid: u32, ticket: u64) -> u64 {
    ((ticket & TICKET_MASK) << TICKET_SHIFT) | ((pid as u64 & PID_MASK) << PID_SHIFT) | phase
}

/// The word of a box just created by `pid`: held by it, ticket 0.
pub(crate) fn created(pid: u32) -> u64 {
    make(HELD, pid, 0)
}

/// True if `pid` fits the word's pid field (every Linux pid does).
pub(crate) fn pid_fits(pid: u32) -> bool {
    pid != 0 && u64::from(pid) <= PID_MASK
}

#[inline]
fn cas(word: &AtomicU64, from: u64, to: u64) -> bool {
    word.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// The creator's allocator takes the segment whose word it read as `seen`
/// for a new box held by `me`: FREE(t) → HELD(t+1, me). The new word, or
/// `None` if `seen` is not FREE or another taker won. Acquires the last
/// holder's writes (its [`release`]).
#[inline]
pub(crate) fn take_free(word: &AtomicU64, seen: u64, me: u32) -> Option<u64> {
    let to = make(HELD, me, ticket(seen) + 1);
    (phase(seen) == FREE && cas(word, seen, to)).then_some(to)
}

/// The holder sends the box: HELD(t, me) → SENT(t+1). `held` is the word its
/// handle holds. The word the token carries, or `None` if the box is not held
/// as `held` says (the handle was copied by `fork` into another process, or
/// its holder was declared dead). Releases the holder's writes to the
/// receiver.
#[inline]
pub(crate) fn send(word: &AtomicU64, held: u64) -> Option<u64> {
    let to = make(SENT, 0, ticket(held) + 1);
    (phase(held) == HELD && cas(word, held, to)).then_some(to)
}

/// A receiver `me` claims the box for the token `sent`: SENT(t) → HELD(t+1,
/// me). Exactly one claim of a token succeeds (a receiver's, or the sender's
/// own taking it back after a failed send), and none of a token older than
/// the word: a replayed token, or one of an earlier round of a recycled
/// segment, is refused. The new word, or `None`.
#[inline]
pub(crate) fn claim(word: &AtomicU64, sent: u64, me: u32) -> Option<u64> {
    let to = make(HELD, me, ticket(sent) + 1);
    (phase(sent) == SENT && cas(word, sent, to)).then_some(to)
}

/// The holder drops its box and gives the segment back to its creator's
/// pool: HELD(t, me) → FREE(t+1). False if the box is not held as `held`
/// says (a `fork` copy of the handle: the parent still holds it).
#[inline]
pub(crate) fn release(word: &AtomicU64, held: u64) -> bool {
    phase(held) == HELD && cas(word, held, make(FREE, 0, ticket(held) + 1))
}

/// The box's holder died holding it (`alive(holder)` is false): FREE it, as
/// its drop would have. `seen` is the word as read. True if this call freed
/// it.
pub(crate) fn reclaim_dead(word: &AtomicU64, seen: u64, alive: impl FnOnce(u32) -> bool) -> bool {
    phase(seen) == HELD && !alive(holder(seen)) && cas(word, seen, make(FREE, 0, ticket(seen) + 1))
}

/// Retires a segment read as `seen` (FREE, or HELD as the dropping owner of
/// a box that is not pooled): it is never used again, and whoever retired it
/// unlinks it. True if this call retired it.
pub(crate) fn retire(word: &AtomicU64, seen: u64) -> bool {
    matches!(phase(seen), FREE | HELD) && cas(word, seen, RETIRED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_moves_the_ticket_on_and_old_tokens_fail() {
        let w = AtomicU64::new(created(7));
        let sent = send(&w, created(7)).unwrap();
        assert!(claim(&w, sent, 9).is_some() && claim(&w, sent, 8).is_none());
        let held = w.load(Ordering::Relaxed);
        assert_eq!((phase(held), holder(held), ticket(held)), (HELD, 9, 2));
        assert!(release(&w, held) && !release(&w, held));
        let again = take_free(&w, w.load(Ordering::Relaxed), 7).unwrap();
        assert_eq!(ticket(again), 4);
        assert!(claim(&w, sent, 9).is_none(), "a token of an earlier round");
        assert!(!reclaim_dead(&w, again, |_| true), "a live holder keeps it");
        assert!(reclaim_dead(&w, again, |_| false));
        assert!(retire(&w, w.load(Ordering::Relaxed)));
        assert!(take_free(&w, RETIRED, 7).is_none() && claim(&w, RETIRED, 7).is_none());
    }
}
