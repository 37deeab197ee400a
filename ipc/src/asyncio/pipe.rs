//! The non-blocking steps a shared-memory pipe end offers the async adapters
//! (feature `tokio`): receiving a long message chunk by chunk into a
//! reassembly buffer kept in the end, pushing a message record by record,
//! the short spin before an async receive parks, and the `room` bell's
//! `poll(2)` announcement. Async waits keep the presence word as blocking ones
//! do: awake on the CPU they spin on, asleep while parked in the reactor.

use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{
    awake_here, broken_pipe, doorbell, drain, ring_error, unreadable, Payload, RingEnd, Wait, DATA, PREEMPTED, ROOM,
    SLEEP_SLICE,
};
use crate::connection::poll_readable;
use crate::error::{IpcError, Result};

impl RingEnd {
    /// Moves the chunks of a long message that are in the ring into the
    /// reassembly buffer, without waiting. True when a receive now returns
    /// without waiting: a one-record message is there, a long one is whole in
    /// the buffer, the peer is gone, or there is an error to report.
    pub(crate) fn rx_progress(&mut self, fd: BorrowedFd<'_>, max: usize) -> Result<bool> {
        let m = self.chunk;
        let Some((rx, i)) = self.rx.as_mut() else {
            return Ok(true); // the receive reports WrongDirection
        };
        let i = *i;
        loop {
            if let Some((total, msg)) = &self.rx_partial {
                if msg.len() == *total {
                    return Ok(true);
                }
            }
            let Some(grant) = rx.peek().map_err(ring_error)? else {
                return Ok(self.live.peer_gone.load(Relaxed));
            };
            match &mut self.rx_partial {
                None => {
                    if grant.len() < m {
                        return Ok(true);
                    }
                    let total = u64::from_le_bytes(grant[..8].try_into().expect("8 bytes"));
                    if total > max as u64 || total < m as u64 {
                        return Ok(true); // with_message reports it
                    }
                    let mut msg = Vec::with_capacity(total as usize);
                    msg.extend_from_slice(&grant[8..]);
                    grant.release();
                    self.rx_partial = Some((total as usize, msg));
                }
                Some((total, msg)) => {
                    if grant.len() > *total - msg.len() {
                        return Err(unreadable(&format!(
                            "chunk of {} bytes but only {} bytes of a {total}-byte message remain",
                            grant.len(),
                            *total - msg.len()
                        )));
                    }
                    msg.extend_from_slice(&grant);
                    grant.release();
                }
            }
            if self.shared.bell(i, ROOM).ring().poll {
                // A writer waiting for room is gone if this fails: nothing to wake.
                let _ = doorbell(fd);
            }
        }
    }

    /// Spins up to `budget` on [`rx_progress`](Self::rx_progress) before an
    /// async receive parks, as the blocking receive does: only while the peer
    /// may answer (see `Who::peer_may_run`), with this end published awake on
    /// its CPU, and no longer once it finds it was descheduled. True when a
    /// receive now returns without waiting.
    pub(crate) fn spin_rx(&mut self, fd: BorrowedFd<'_>, max: usize, budget: Duration) -> Result<bool> {
        let cpu = awake_here(self.me());
        let start = Instant::now();
        let mut last = start;
        while self.who().peer_may_run(cpu) {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
            if self.rx_progress(fd, max)? {
                return Ok(true);
            }
            let now = Instant::now();
            if now - start >= budget || now - last >= PREEMPTED {
                break;
            }
            last = now;
        }
        Ok(false)
    }

    /// Blocking: finishes receiving a long message whose reassembly an async
    /// receive began, and hands it to `f`.
    pub(super) fn finish_partial<R>(&mut self, fd: BorrowedFd<'_>, f: impl FnOnce(Payload<'_>) -> R) -> Result<R> {
        loop {
            let (total, got) = self.rx_partial.as_ref().map(|(t, m)| (*t, m.len())).expect("called with a partial");
            if got == total {
                let (_, msg) = self.rx_partial.take().expect("checked");
                return Ok(f(Payload::Vec(msg)));
            }
            match self.wait_rx(fd, None)? {
                Wait::Ready => {}
                Wait::Hup | Wait::Timeout => {
                    self.rx_partial = None;
                    return Err(IpcError::TruncatedMessage { expected: total as u64 + 8, got: got as u64 + 8 });
                }
            }
            self.rx_progress(fd, usize::MAX)?;
        }
    }

    /// Pushes the records of `msg` from message byte `*sent` on, as many as
    /// fit, without waiting; true once the whole message is in the ring.
    pub(crate) fn push_nowait(&mut self, fd: BorrowedFd<'_>, msg: &[u8], sent: &mut usize) -> Result<bool> {
        let m = self.chunk;
        let Some((tx, i)) = self.tx.as_mut() else {
            return Err(IpcError::WrongDirection { op: "send", end: "receive" });
        };
        let i = *i;
        if self.live.peer_gone.load(Relaxed) {
            return Err(broken_pipe());
        }
        loop {
            // The record that starts at message byte `*sent`: the whole of a
            // short message, or the length-headed first chunk, or a chunk.
            let (len, first) = if msg.len() < m {
                (msg.len(), false)
            } else if *sent == 0 {
                (m, true)
            } else {
                ((msg.len() - *sent).min(m), false)
            };
            match tx.reserve(len) {
                Ok(mut grant) => {
                    if first {
                        grant[..8].copy_from_slice(&(msg.len() as u64).to_le_bytes());
                        grant[8..].copy_from_slice(&msg[..m - 8]);
                        *sent = m - 8;
                    } else {
                        grant.copy_from_slice(&msg[*sent..*sent + len]);
                        *sent += len;
                    }
                    grant.commit();
                }
                Err(mproc_shm::ring::RingError::Full { .. }) => return Ok(false),
                Err(e) => return Err(ring_error(e)),
            }
            if self.shared.bell(i, DATA).ring().poll {
                doorbell(fd)?;
            }
            if msg.len() < m || *sent == msg.len() {
                return Ok(true);
            }
        }
    }

    /// Blocking: pushes the rest of `msg` (see [`push_nowait`](Self::push_nowait)).
    pub(crate) fn push_blocking(&mut self, fd: BorrowedFd<'_>, msg: &[u8], sent: &mut usize) -> Result<()> {
        loop {
            self.arm_room();
            if self.push_nowait(fd, msg, sent)? {
                self.disarm_room(fd, false)?;
                return Ok(());
            }
            let polled = !poll_readable(&[fd], Some(SLEEP_SLICE))?.is_empty();
            self.disarm_room(fd, polled)?;
        }
    }

    /// Announces a `poll(2)` wait for room: the reader's next release writes
    /// a doorbell byte. This end is asleep for its peer until the disarm.
    pub(crate) fn arm_room(&self) {
        if let Some((_, i)) = &self.tx {
            self.me().fall_asleep();
            self.shared.bell(*i, ROOM).arm_poll();
        }
    }

    /// Withdraws the announcement; after the doorbell polled readable, drains
    /// it. A peer that is gone is a broken-pipe error.
    pub(crate) fn disarm_room(&self, fd: BorrowedFd<'_>, polled: bool) -> Result<()> {
        if let Some((_, i)) = &self.tx {
            self.shared.bell(*i, ROOM).disarm_poll();
            awake_here(self.me());
        }
        if polled && drain(fd)? {
            self.live.peer_gone.store(true, Relaxed);
        }
        if self.live.peer_gone.load(Relaxed) {
            return Err(broken_pipe());
        }
        Ok(())
    }
}
