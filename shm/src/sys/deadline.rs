//! Deadlines: a timeout turned into a point on the monotonic clock, with one
//! overflow rule for the whole project.
//!
//! The rule: a timeout too large to add to the clock (`Duration::MAX`, or years)
//! means **no deadline** — wait without limit — never a panic and never a
//! made-up far instant. Every blocking call of mproc computes its deadline with
//! [`Deadline::after`] or [`Deadline::within`], and its remaining time or the
//! `Timespec` for `futex(2)`/`poll(2)` from it.

use std::time::{Duration, Instant};

use rustix::time::Timespec;

/// When a wait must end: an instant on the monotonic clock, or never.
///
/// ```
/// use std::time::Duration;
/// use mproc_shm::sys::Deadline;
///
/// let d = Deadline::after(Duration::from_secs(5));
/// assert!(d.remaining().unwrap() <= Duration::from_secs(5));
/// // Too far for the clock: no deadline, not a panic.
/// assert_eq!(Deadline::after(Duration::MAX), Deadline::NEVER);
/// assert_eq!(Deadline::NEVER.remaining(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: wait without limit.
    pub const NEVER: Deadline = Deadline(None);

    /// `timeout` from now; [`NEVER`](Self::NEVER) when `now + timeout` does not
    /// fit the clock.
    #[inline]
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// `timeout` from now, or [`NEVER`](Self::NEVER) for `None` (Python's
    /// `timeout=None`) or a timeout too large for the clock.
    #[inline]
    pub fn within(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, Deadline::after)
    }

    /// At `instant`.
    #[inline]
    pub fn at(instant: Instant) -> Deadline {
        Deadline(Some(instant))
    }

    /// The instant, or `None` for no deadline: the form the blocking calls that
    /// take an `Option<Instant>` expect.
    #[inline]
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// True once the deadline has passed (never for [`NEVER`](Self::NEVER)).
    #[inline]
    pub fn has_passed(self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }

    /// What is left: `None` for no deadline, zero once past.
    #[inline]
    pub fn remaining(self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// What is left as the relative `Timespec` that `futex(2)` and `poll(2)`
    /// take: `None` for no deadline, zero once past.
    #[inline]
    pub fn timespec(self) -> Option<Timespec> {
        self.remaining().map(timespec)
    }
}

impl From<Option<Instant>> for Deadline {
    /// `None` is no deadline.
    #[inline]
    fn from(instant: Option<Instant>) -> Deadline {
        Deadline(instant)
    }
}

/// `d` as a `Timespec`; a duration beyond `i64::MAX` seconds saturates there.
///
/// ```
/// let ts = mproc_shm::sys::timespec(std::time::Duration::from_millis(1500));
/// assert_eq!((ts.tv_sec, ts.tv_nsec), (1, 500_000_000));
/// ```
#[inline]
pub fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), tv_nsec: d.subsec_nanos().into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_large_for_the_clock_is_no_deadline() {
        for huge in [Duration::MAX, Duration::from_secs(u64::MAX), Duration::new(u64::MAX, 999_999_999)] {
            let d = Deadline::after(huge);
            assert_eq!(d, Deadline::NEVER);
            assert_eq!(d.instant(), None);
            assert_eq!(d.remaining(), None);
            assert_eq!(d.timespec(), None);
            assert!(!d.has_passed());
            assert_eq!(Deadline::within(Some(huge)), Deadline::NEVER);
        }
        assert_eq!(Deadline::within(None), Deadline::NEVER);
    }

    #[test]
    fn a_representable_timeout_counts_down_to_zero() {
        let d = Deadline::after(Duration::from_secs(3600));
        let left = d.remaining().unwrap();
        assert!(left > Duration::from_secs(3599) && left <= Duration::from_secs(3600), "{left:?}");
        assert!(!d.has_passed());
        let past = Deadline::after(Duration::ZERO);
        assert!(past.has_passed());
        assert_eq!(past.remaining(), Some(Duration::ZERO));
        let ts = past.timespec().unwrap();
        assert_eq!((ts.tv_sec, ts.tv_nsec), (0, 0));
    }

    #[test]
    fn timespec_saturates_instead_of_wrapping() {
        let ts = timespec(Duration::MAX);
        assert_eq!(ts.tv_sec, i64::MAX);
        assert_eq!(ts.tv_nsec, 999_999_999);
    }
}
