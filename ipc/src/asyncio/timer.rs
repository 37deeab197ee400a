//! A deadline an async call can race against, through the runtime adapter
//! alone: a `timerfd` awaited with [`FdReady`], so it needs no timer driver
//! from the runtime (a tokio runtime built without `enable_time` works).

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use rustix::time::{timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};

use crate::asyncio::FdReady;

/// A one-shot monotonic timer registered with the runtime.
pub(crate) struct Timer {
    // Declared before the fd it borrows, so it is dropped first.
    ready: FdReady,
    _fd: OwnedFd,
}

impl Timer {
    /// A timer that fires `after` from now (`ZERO`: at once).
    pub(crate) fn after(after: Duration) -> io::Result<Timer> {
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK)?;
        // A zero it_value disarms a timerfd: the shortest real one instead.
        let value = mproc_shm::sys::timespec(after.max(Duration::from_nanos(1)));
        let spec = Itimerspec { it_interval: mproc_shm::sys::timespec(Duration::ZERO), it_value: value };
        timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)?;
        Ok(Timer { ready: FdReady::new(fd.as_fd())?, _fd: fd })
    }

    /// Resolves once the timer has fired.
    pub(crate) async fn fired(&self) -> io::Result<()> {
        // Readable once it has fired; a one-shot timer stays readable.
        self.ready.readable().await.map(drop)
    }
}

/// Runs `fut` for at most `limit`: `Ok(None)` if the limit came first (`fut`
/// is dropped then). `Err` only if the timer could not be made.
pub(crate) async fn within<F: Future>(limit: Duration, fut: F) -> io::Result<Option<F::Output>> {
    let timer = Timer::after(limit)?;
    let mut fut = pin!(fut);
    let mut fired = pin!(timer.fired());
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(Some(v)));
        }
        match fired.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|()| None)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
