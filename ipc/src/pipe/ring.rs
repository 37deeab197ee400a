//! The ring transport under a [`pipe`](fn@crate::pipe): one end's shared-memory
//! rings, doorbells and doorbell socket. It knows nothing of the connection
//! that carries it; a connection holds a [`RingEnd`] and calls into it.
//!
//! # Layout
//! One memfd segment per pipe: a control page, then one [`SpscRing`] per
//! direction (one for a one-way pipe). Ring 0 carries messages *to* the first
//! end, ring 1 (duplex only) to the second. The control page holds, per ring,
//! two [`Bell`]s on their own cache lines: `data` (rung by the ring's producer
//! after each record) and `room` (rung by its consumer after each release).
//!
//! # Waiting
//! A reader that finds its ring empty may spin, then sleeps on the `data` bell
//! (`FUTEX_WAIT`) for at most [`SLEEP_SLICE`] at a time; a writer that finds
//! the ring full does the same on the `room` bell. The wake-up protocol is in
//! [`crate::doorbell`]; it costs the other side one atomic add per message and
//! a system call only when someone sleeps.
//!
//! Whether to spin is decided from the peer's **presence word** (one per end
//! in the control page, see [`Presence`]): the waiter spins only while the
//! peer may answer — it does not sleep in the kernel, and it did not last
//! wait on the waiter's own CPU (then it is not running now). Each end reads
//! its CPU afresh at every wait and after every `poll(2)` sleep, so an end the
//! scheduler moved is seen where it runs; async waits publish the same (the
//! async receive's short spin is gated like the blocking one, and an end
//! parked in the reactor, for a message or for room, is asleep). A peer woken by
//! a ring is marked awake by the ringer, since it will run soon. While it
//! spins, the waiter looks at the clock and the peer's word every 32 tries and
//! stops when the peer falls asleep, when the budget is spent, or when two
//! looks at the clock are [`PREEMPTED`] apart: it was itself descheduled, so
//! there are more runnable threads than CPUs and spinning only steals time
//! slices. It never calls `sched_yield`: beside a CPU hog a yield hands the
//! hog a whole slice (milliseconds: the old pipe took 5–10 ms per round trip
//! with a hog on each core), while a futex sleeper is woken at once.
//!
//! The spin budget is adaptive, as in adaptive mutexes: it starts at [`SPIN`],
//! doubles (up to [`MAX_SPIN`]) each time the news came while spinning and
//! halves (down to [`MIN_SPIN`]) each time the spin gave up; every 512th wait
//! spins [`MAX_SPIN`] again, so that two ends that fell back to sleeping under
//! load return to spinning when the load is gone.
//!
//! # Cost of a round trip, and the gap to the limit
//! `pipe_rtt`'s limit row is two processes bumping one shared counter in turn:
//! a handful of instructions and one cache-line transfer each way. A pipe
//! message costs, counted with `valgrind --tool=callgrind` on both ends in one
//! process (a 64 B `send_bytes` + `recv_bytes_into`, the message always
//! there, so no waiting is counted):
//!
//! | per 64 B message | instructions |
//! | --- | ---: |
//! | before (eager error values built and dropped on the hot path, a generic receive path, a clock read and an atomic add on every wait) | 566 |
//! | now: whole message, `send_bytes` + `recv_bytes_into` | 309 |
//! | of which `SpscRing` `reserve` + `peek` (record header, bounds checks against shared memory) | 58 + 64 |
//! | of which the two 64 B copies (into and out of the ring) | 2 × 11 |
//! | of which the `Connection` and ring-end layers (dispatch, the `data` and `room` bell adds) | ≈ 165 |
//!
//! The rest of the gap is memory traffic on the critical path of each
//! message: the reader first sees the ring's `tail` word move (one line from
//! the writer's cache), then reads the record (a 72-byte record spans two
//! more lines), where the limit moves one line; and each end's bell add is a
//! locked instruction that waits for its own stores to drain. A spinning
//! reader prefetches the line where the next record will start
//! ([`SpscRing::is_empty_prefetch_next`]), so that the record's first line
//! mostly travels alongside `tail` rather than after it: in eight alternating
//! 1.5 s runs of `pipe_rtt/mproc` on an idle 2-core VM the median went from
//! 260 to 245 ns (5 of the 8 pairs faster, 2 lost to the VM's regime
//! changes). Prefetching the record's second line as well (a 64 B message
//! and its header span two) took it from 249 to 236 ns, the medians of 25
//! alternating 0.5 s runs (faster in 15 of the 25 pairs; a run of 12 pairs
//! gave 265 against 240). A ring whose reader polls the record header itself (the header
//! doubling as the publish flag, the producer zeroing the next header word
//! before it publishes, so flag and payload share a line) was built and
//! model-checked with loom, and was no faster: 249 against 247 ns, the medians
//! of 25 alternating 0.5 s runs of `pipe_rtt/mproc`. Neither was dropping the
//! `room` bell's atomic add (240 ns both ways). Nor is it the layers' instructions:
//! with both ends in one process on one core, where every line is local, a
//! 64 B `send_bytes` + `recv_bytes_into` takes 17 ns (about 200 instructions,
//! `callgrind`), so at most 2 × 17 ns of a round trip's ≈ 185 ns over the
//! ping-pong is code. The rest is the cache lines each message moves between
//! the cores (the limit moves one per hop) and the VM: on this machine the
//! ping-pong limit itself ranges from 30 to 450 ns between runs. Two counters
//! on separate lines, each written by one side and spun on by the other (the
//! pattern of the pipe's two `tail` words), ping-pong at about 115 ns where
//! one shared counter takes 72 (a C program, same run); but a pipe whose ring 1
//! keeps its `tail` in ring 0's `tail` line, so that a round trip's two signal
//! words share one line as the limit's counter does, was no faster (242
//! against 230 ns, 16 alternating runs; kept on the branch `duplex-tail`).
//!
//! # The doorbell socket
//! Beside the rings each pipe keeps a `socketpair`, one end per connection.
//! It carries no messages, only liveness and wake-ups for `poll(2)`:
//! - when every copy of the peer's end is closed — or its process died, even by
//!   `SIGKILL` — the kernel closes its socket, and this end reads end of file.
//!   A sleeper looks at the socket each time it wakes without news (at least
//!   every [`SLEEP_SLICE`]), so `recv` returns [`IpcError::Eof`] once the ring is
//!   drained, and never hangs on a dead peer. Closing an end rings both bells,
//!   so a live peer notices at once.
//! - [`wait`](crate::wait) over several connections sleeps in `poll(2)`: it
//!   announces that on the `data` bell, and the producer then writes one byte to
//!   the socket.
//!
//! # Messages larger than a ring record
//! A ring holds records of up to `capacity / 2 - 8` bytes (`M`). A message of
//! fewer than `M` bytes is one record. A longer one is sent **in chunks**,
//! transparently: a first record of exactly `M` bytes holding the total length
//! (8 bytes, little-endian) and the first `M - 8` bytes of the message, then
//! records of up to `M` bytes until the total is reached. The writer blocks
//! while the ring is full, as on a socket, so a message may be far larger than
//! the ring; the reader reassembles it before returning it.

use std::io;
use std::mem::{align_of, size_of};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::time::{Duration, Instant};

use mproc_shm::ring::{Consumer, Producer, RingError};
use mproc_shm::sys::magic::{self, Attach};
use mproc_shm::sys::Deadline;
use mproc_shm::{Segment, SegmentToken, Share, ShmError, SpscRing};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

use crate::doorbell::{Bell, Presence};
use crate::error::{IpcError, Result};

#[cfg(feature = "tokio")]
#[path = "../asyncio/pipe.rs"]
mod asyncio;

/// How long a reader (or a writer facing a full ring) first spins, while its
/// peer may answer, before it sleeps; the spin then adapts between
/// [`MIN_SPIN`] and [`MAX_SPIN`].
pub const SPIN: Duration = Duration::from_micros(20);
/// Every this many waits, the spin lasts [`MAX_SPIN`].
const PROBE: u32 = 512;
/// A gap this long between two looks at the clock while spinning means the
/// spinner was descheduled: it stops spinning.
const PREEMPTED: Duration = Duration::from_micros(30);

/// The shortest adaptive spin.
pub const MIN_SPIN: Duration = Duration::from_micros(1);
/// The longest adaptive spin.
pub const MAX_SPIN: Duration = Duration::from_micros(100);

/// The longest single futex sleep; after it the sleeper looks at the doorbell
/// socket, so the death of a peer that rang nothing is seen within about this.
pub const SLEEP_SLICE: Duration = Duration::from_millis(20);

/// Bytes before the first ring: the control block, padded to a page.
const CONTROL: usize = 4096;
const DATA: usize = 0;
const ROOM: usize = 1;

/// A bell on a cache line of its own.
#[repr(C, align(64))]
struct Line(Bell);

/// A presence word on a cache line of its own.
#[repr(C, align(64))]
struct PresenceLine(Presence);

/// The control block at offset 0 of a pipe's segment.
#[repr(C)]
struct Control {
    magic: u32,
    version: u32,
    /// Capacity of each ring.
    capacity: u64,
    /// 1 (one-way) or 2 (duplex).
    rings: u32,
    _pad: u32,
    /// `bells[ring][DATA | ROOM]`.
    bells: [[Line; 2]; 2],
    /// `presence[end]`: written by that end, read by its peer (a hint for
    /// the spin decision; zero, "awake nowhere", in a fresh segment and in
    /// one made before the field existed).
    presence: [PresenceLine; 2],
}
#[cfg(not(loom))]
const _: () = assert!(size_of::<Control>() <= CONTROL && CONTROL % SpscRing::ALIGN == 0);

/// Both ends of a new pipe: each with its half of the doorbell `socketpair`,
/// for [`pipe_with_capacity`](crate::pipe_with_capacity) to wrap in connections.
pub(crate) fn pair(duplex: bool, capacity: usize) -> Result<[(OwnedFd, RingEnd); 2]> {
    let shared = PipeShared::create(duplex, capacity)?;
    let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| IpcError::os("socketpair", "pipe doorbell", e))?;
    Ok([(a, RingEnd::new(shared.clone(), 0)?), (b, RingEnd::new(shared, 1)?)])
}

/// The segment of a pipe and its control block.
#[derive(Clone)]
struct PipeShared {
    seg: Segment,
    ctl: NonNull<Control>,
    capacity: usize,
    rings: usize,
}

// SAFETY: `ctl` points into `seg`'s mapping, kept alive by `seg`; the control
// block is reached only through its atomics and immutable fields.
unsafe impl Send for PipeShared {}
// SAFETY: as for Send.
unsafe impl Sync for PipeShared {}

/// Bytes each ring takes, rounded up to keep the next one aligned.
fn ring_stride(capacity: usize) -> Result<usize> {
    Ok(SpscRing::footprint(capacity)?.next_multiple_of(SpscRing::ALIGN))
}

fn ring_offset(i: usize, capacity: usize) -> Result<usize> {
    Ok(CONTROL + i * ring_stride(capacity)?)
}

impl PipeShared {
    fn create(duplex: bool, capacity: usize) -> Result<PipeShared> {
        let rings = if duplex { 2 } else { 1 };
        let seg = Segment::anonymous(CONTROL + rings * ring_stride(capacity)?)?;
        let mut cap = 0;
        for i in 0..rings {
            cap = SpscRing::new_in(&seg, ring_offset(i, capacity)?, capacity)?.capacity();
        }
        let ctl = seg.check_range("pipe control", 0, size_of::<Control>(), align_of::<Control>())?.cast::<Control>();
        // SAFETY: [1] the range is in bounds and aligned (checked above); [2] the
        // segment was just created and nobody else can see it yet. The bells
        // are zero, as the fresh memfd already is.
        unsafe {
            let c = ctl.as_ptr();
            std::ptr::addr_of_mut!((*c).magic).write(magic::PIPE.word);
            std::ptr::addr_of_mut!((*c).version).write(magic::PIPE.version);
            std::ptr::addr_of_mut!((*c).capacity).write(cap as u64);
            std::ptr::addr_of_mut!((*c).rings).write(rings as u32);
        }
        Ok(PipeShared { seg, ctl, capacity: cap, rings })
    }

    fn attach(seg: Segment) -> Result<PipeShared> {
        let at = Attach::new(&seg, 0, "pipe control");
        let ctl = at.range(size_of::<Control>(), align_of::<Control>())?.cast::<Control>();
        // SAFETY: in bounds and aligned; the fields are plain integers written
        // once before the pipe was shared, any bit pattern is valid.
        let (magic, version, capacity, rings) = unsafe {
            let c = ctl.as_ptr();
            (
                std::ptr::addr_of!((*c).magic).read_volatile(),
                std::ptr::addr_of!((*c).version).read_volatile(),
                std::ptr::addr_of!((*c).capacity).read_volatile(),
                std::ptr::addr_of!((*c).rings).read_volatile(),
            )
        };
        at.identity(magic::PIPE, magic, version)?;
        at.layout((1..=2).contains(&rings) && capacity.is_power_of_two(), || {
            format!("pipe control names {rings} rings of {capacity} bytes")
        })?;
        Ok(PipeShared { seg, ctl, capacity: capacity as usize, rings: rings as usize })
    }

    fn ring(&self, i: usize) -> Result<SpscRing> {
        let ring = SpscRing::attach(&self.seg, ring_offset(i, self.capacity)?)?;
        if ring.capacity() != self.capacity {
            return Err(ShmError::BadToken {
                what: "pipe connection",
                detail: format!("ring {i} has capacity {}, the pipe says {}", ring.capacity(), self.capacity),
            }
            .into());
        }
        Ok(ring)
    }

    #[inline]
    fn bell(&self, ring: usize, which: usize) -> &Bell {
        // SAFETY: `ctl` is valid for as long as `self.seg` is mapped (see the
        // Send impl); `ring < 2` and `which < 2` index the fixed arrays.
        unsafe { &(*self.ctl.as_ptr()).bells[ring][which].0 }
    }

    /// The presence word of `end` (0 or 1).
    #[inline]
    fn presence(&self, end: u8) -> &Presence {
        // SAFETY: as for `bell`; `end < 2` (checked in `RingEnd::new` and on import).
        unsafe { &(*self.ctl.as_ptr()).presence[usize::from(end & 1)].0 }
    }
}

/// The shared-memory side of one end of a [`pipe`](fn@crate::pipe).
pub(crate) struct RingEnd {
    shared: PipeShared,
    /// 0: the first end returned by `pipe`, 1: the second.
    end: u8,
    /// The ring this end reads, and its index.
    rx: Option<(Consumer, usize)>,
    /// The ring this end writes, and its index.
    tx: Option<(Producer, usize)>,
    /// Records of this length or more start a chunked message.
    chunk: usize,
    live: Live,
    /// A long message whose chunks an async receive began to take out of the
    /// ring: its total length and the bytes so far.
    #[cfg(feature = "tokio")]
    rx_partial: Option<(usize, Vec<u8>)>,
}

/// What an end learns while it waits.
#[derive(Debug)]
struct Live {
    /// End of file was read from the doorbell socket: every copy of the peer's
    /// end is closed.
    peer_gone: AtomicBool,
    /// The current spin budget, in nanoseconds.
    spin_ns: AtomicU32,
    /// Waits so far (for the periodic long spin); only the owner of the end
    /// counts, so a load and a store suffice.
    waits: AtomicU32,
}

impl std::fmt::Debug for RingEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingEnd")
            .field("segment", &format_args!("{}", self.shared.seg))
            .field("end", &self.end)
            .field("capacity", &self.shared.capacity)
            .field("readable", &self.rx.is_some())
            .field("writable", &self.tx.is_some())
            .finish()
    }
}

/// What a wait for a ring ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Ready,
    Hup,
    Timeout,
}

/// The spawn form of a ring connection's shared part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RingToken {
    seg: SegmentToken,
    end: u8,
}

impl RingEnd {
    fn new(shared: PipeShared, end: u8) -> Result<RingEnd> {
        // Ring 0 carries messages to end 0; ring 1 (duplex) to end 1.
        let (rx, tx) = match (end, shared.rings) {
            (0, 1) => (Some(0), None),
            (1, 1) => (None, Some(0)),
            (0, _) => (Some(0), Some(1)),
            _ => (Some(1), Some(0)),
        };
        let rx = rx.map(|i| shared.ring(i).map(|r| (r.consumer(), i))).transpose()?;
        let tx = tx.map(|i| shared.ring(i).map(|r| (r.producer(), i))).transpose()?;
        // Both rings have the same capacity, hence the same largest record.
        let chunk =
            rx.as_ref().map(|(c, _)| c.ring()).or(tx.as_ref().map(|(p, _)| p.ring())).map_or(0, |r| r.max_message());
        let live = Live {
            peer_gone: AtomicBool::new(false),
            spin_ns: AtomicU32::new(SPIN.as_nanos() as u32),
            waits: AtomicU32::new(0),
        };
        Ok(RingEnd {
            shared,
            end,
            rx,
            tx,
            chunk,
            live,
            #[cfg(feature = "tokio")]
            rx_partial: None,
        })
    }

    pub(crate) fn readable(&self) -> bool {
        self.rx.is_some()
    }

    pub(crate) fn writable(&self) -> bool {
        self.tx.is_some()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.shared.capacity
    }

    fn peer_gone(&self) -> bool {
        self.live.peer_gone.load(Relaxed)
    }

    /// This end's presence word, which it writes.
    #[inline]
    fn me(&self) -> &Presence {
        self.shared.presence(self.end)
    }

    /// The peer's presence word, which this end reads.
    #[inline]
    fn peer(&self) -> &Presence {
        self.shared.presence(self.end ^ 1)
    }

    /// Both presence words, for a wait.
    #[inline]
    fn who(&self) -> Who<'_> {
        Who { me: self.me(), peer: self.peer() }
    }

    /// Whether the peer says it sleeps in the kernel (for tests).
    pub(crate) fn peer_asleep(&self) -> bool {
        self.peer().asleep()
    }

    /// The CPU the peer last published (for tests).
    pub(crate) fn peer_cpu(&self) -> Option<u32> {
        self.peer().cpu()
    }

    /// Rings bell `which` of ring `i` after publishing; a peer woken from a
    /// futex sleep is marked awake at once (it will run soon: worth spinning
    /// for), and a peer sleeping in `poll(2)` gets a doorbell byte.
    #[inline]
    fn ring_bell(&self, i: usize, which: usize, fd: BorrowedFd<'_>) -> Result<()> {
        let rang = self.shared.bell(i, which).ring();
        if rang.futex || rang.poll {
            self.peer().wake();
            if rang.poll {
                doorbell(fd)?;
            }
        }
        Ok(())
    }

    /// A message is waiting, or end of file was seen (a read would not block).
    pub(crate) fn ready_now(&self) -> bool {
        self.rx.as_ref().is_some_and(|(c, _)| !c.ring().is_empty()) || self.peer_gone()
    }

    // ---- sending ----------------------------------------------------------

    #[inline]
    pub(crate) fn send_bytes(&mut self, fd: BorrowedFd<'_>, buf: &[u8]) -> Result<()> {
        let m = self.chunk;
        let Some((tx, i)) = self.tx.as_mut() else {
            return Err(IpcError::WrongDirection { op: "send", end: "receive" });
        };
        if buf.len() < m {
            // The common case: one record, and room for it.
            if let Ok(mut grant) = tx.reserve(buf.len()) {
                grant.copy_from_slice(buf);
                grant.commit();
                let i = *i;
                return self.ring_bell(i, DATA, fd);
            }
            return self.push(fd, buf.len(), |dst| dst.copy_from_slice(buf));
        }
        let (first, rest) = buf.split_at(m - 8);
        self.push(fd, m, |dst| {
            dst[..8].copy_from_slice(&(buf.len() as u64).to_le_bytes());
            dst[8..].copy_from_slice(first);
        })?;
        for chunk in rest.chunks(m) {
            self.push(fd, chunk.len(), |dst| dst.copy_from_slice(chunk))?;
        }
        Ok(())
    }

    /// Pushes one record of `len` bytes written by `fill`, waiting for room.
    #[inline(never)]
    fn push(&mut self, fd: BorrowedFd<'_>, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<()> {
        let (tx, i) = self.tx.as_mut().expect("checked by the caller");
        let i = *i;
        let mut fill = Some(fill);
        // Bytes in use, taken after a failed reserve and before retrying it.
        let mut used = None;
        loop {
            match tx.reserve(len) {
                Ok(mut grant) => {
                    if let Some(fill) = fill.take() {
                        fill(&mut grant);
                    }
                    grant.commit();
                    break;
                }
                Err(RingError::Full { .. }) => match used.take() {
                    // Snapshot, then retry: room freed before the snapshot is
                    // seen by the retry, room freed after it by the wait below.
                    None => used = Some(tx.ring().len_bytes()),
                    Some(used) => {
                        let ring = tx.ring();
                        // Room appears when the consumer moves `head`: fewer bytes in use.
                        let who = Who { me: self.shared.presence(self.end), peer: self.shared.presence(self.end ^ 1) };
                        match self.live.wait_for(
                            self.shared.bell(i, ROOM),
                            who,
                            fd,
                            || ring.len_bytes() < used,
                            None,
                        )? {
                            Wait::Ready => {}
                            Wait::Hup | Wait::Timeout => return Err(broken_pipe()),
                        }
                    }
                },
                Err(e) => return Err(ring_error(e)),
            }
        }
        self.ring_bell(i, DATA, fd)
    }

    // ---- receiving --------------------------------------------------------

    /// Waits for the next message (or end of file) up to `deadline`.
    fn wait_rx(&self, fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<Wait> {
        let (rx, i) = self.rx.as_ref().ok_or_else(wrong_receive)?;
        let ring = rx.ring();
        let who = self.who();
        self.live.wait_for(self.shared.bell(*i, DATA), who, fd, || !ring.is_empty_prefetch_next(), deadline)
    }

    /// Receives one message of at most `max` bytes and hands it to `f`: in
    /// place for a one-record message, reassembled for a chunked one. A longer
    /// message stays in the ring and is a [`IpcError::MessageTooLarge`].
    pub(crate) fn with_message<R>(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        f: impl FnOnce(Payload<'_>) -> R,
    ) -> Result<R> {
        #[cfg(feature = "tokio")]
        if self.rx_partial.is_some() {
            return self.finish_partial(fd, f);
        }
        let m = self.chunk;
        // The common case first: a one-record message is already there (no
        // wait, no clock read).
        loop {
            let (rx, i) = self.rx.as_mut().ok_or_else(wrong_receive)?;
            let i = *i;
            match rx.peek().map_err(ring_error)? {
                Some(grant) if grant.len() < m => {
                    if grant.len() > max {
                        return Err(IpcError::MessageTooLarge { len: grant.len() as u64, max });
                    }
                    let r = f(Payload::Slice(&grant));
                    grant.release();
                    self.released(i, fd);
                    return Ok(r);
                }
                Some(_) => return self.with_chunked(fd, max, f),
                None => match self.wait_rx(fd, None)? {
                    Wait::Ready => {}
                    Wait::Hup | Wait::Timeout => return Err(IpcError::Eof),
                },
            }
        }
    }

    /// Receives one message into `buf` and returns its length: `recv_bytes_into`
    /// of a ring connection. If `buf` is too short, the message is consumed
    /// and returned in [`IpcError::BufferTooShort`].
    #[inline]
    pub(crate) fn recv_into(&mut self, fd: BorrowedFd<'_>, max: usize, buf: &mut [u8]) -> Result<usize> {
        // The common case first, without the generic path's `Payload`: a
        // one-record message that fits.
        if let Some((rx, i)) = self.rx.as_mut() {
            if let Ok(Some(grant)) = rx.peek() {
                let n = grant.len();
                if n < self.chunk && n <= max && n <= buf.len() {
                    buf[..n].copy_from_slice(&grant);
                    let i = *i;
                    grant.release();
                    self.released(i, fd);
                    return Ok(n);
                }
            }
        }
        self.with_message(fd, max, |msg| {
            let bytes = msg.as_slice();
            if bytes.len() <= buf.len() {
                buf[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            } else {
                Err(IpcError::BufferTooShort { capacity: buf.len(), message: msg.into_vec() })
            }
        })?
    }

    /// [`with_message`](RingEnd::with_message) for a chunked message, whose
    /// first record waits in the ring.
    #[cold]
    fn with_chunked<R>(&mut self, fd: BorrowedFd<'_>, max: usize, f: impl FnOnce(Payload<'_>) -> R) -> Result<R> {
        let m = self.chunk;
        let (rx, i) = self.rx.as_mut().expect("checked by the caller");
        let i = *i;
        let grant = rx.peek().map_err(ring_error)?.ok_or_else(|| unreadable("the ring emptied under its reader"))?;
        // A chunked message: the first record holds the total length.
        let total = u64::from_le_bytes(grant[..8].try_into().expect("8 bytes"));
        if total > max as u64 {
            return Err(IpcError::MessageTooLarge { len: total, max });
        }
        if total < m as u64 {
            return Err(unreadable(&format!("chunked message of {total} bytes, below the chunk size {m}")));
        }
        let total = total as usize;
        let mut msg = Vec::with_capacity(total);
        msg.extend_from_slice(&grant[8..]);
        grant.release();
        self.released(i, fd);
        while msg.len() < total {
            match self.wait_rx(fd, None)? {
                Wait::Ready => {}
                Wait::Hup | Wait::Timeout => {
                    return Err(IpcError::TruncatedMessage { expected: total as u64 + 8, got: msg.len() as u64 + 8 })
                }
            }
            let (rx, _) = self.rx.as_mut().expect("checked by wait_rx");
            let grant =
                rx.peek().map_err(ring_error)?.ok_or_else(|| unreadable("the ring emptied under its reader"))?;
            if grant.len() > total - msg.len() {
                return Err(unreadable(&format!(
                    "chunk of {} bytes but only {} bytes of a {total}-byte message remain",
                    grant.len(),
                    total - msg.len()
                )));
            }
            msg.extend_from_slice(&grant);
            grant.release();
            self.released(i, fd);
        }
        Ok(f(Payload::Vec(msg)))
    }

    /// Rings the `room` bell of ring `i` after a release; a writer waiting in
    /// `poll(2)` (an async send) gets a doorbell byte.
    #[inline]
    fn released(&self, i: usize, fd: BorrowedFd<'_>) {
        // Fails only when the writer is gone: nobody to wake.
        let _ = self.ring_bell(i, ROOM, fd);
    }

    /// Whether a message or end of file is there, waiting up to `timeout`.
    pub(crate) fn poll(&self, fd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool> {
        let deadline = Deadline::within(timeout).instant();
        Ok(self.wait_rx(fd, deadline)? != Wait::Timeout)
    }

    // ---- `wait` over several connections ----------------------------------

    /// Announces a `poll(2)` sleep on the doorbell socket.
    pub(crate) fn arm_poll(&self) {
        if let Some((_, i)) = &self.rx {
            self.me().fall_asleep();
            self.shared.bell(*i, DATA).arm_poll();
        }
    }

    /// Withdraws the announcement; after `poll(2)` reported the socket
    /// readable (`polled`), drains it and notes end of file. Returns whether a
    /// read would not block now.
    pub(crate) fn disarm_poll(&self, fd: BorrowedFd<'_>, polled: bool) -> Result<bool> {
        if let Some((_, i)) = &self.rx {
            self.shared.bell(*i, DATA).disarm_poll();
            // Awake again, and perhaps on another CPU (or, under an async
            // runtime, on another worker thread) than before the sleep.
            awake_here(self.me());
        }
        if polled && drain(fd)? {
            self.live.peer_gone.store(true, Relaxed);
        }
        Ok(self.ready_now())
    }

    // ---- sharing ----------------------------------------------------------

    pub(crate) fn export(&self, exports: &mut mproc_shm::Exports) -> mproc_shm::Result<RingToken> {
        Ok(RingToken { seg: self.shared.seg.export(exports)?, end: self.end })
    }

    pub(crate) fn import(token: RingToken) -> mproc_shm::Result<RingEnd> {
        let bad = |detail: String| ShmError::BadToken { what: "pipe connection", detail };
        if token.end > 1 {
            return Err(bad(format!("end {} (expected 0 or 1)", token.end)));
        }
        let seg = Segment::import(token.seg)?;
        let to_shm = |e: IpcError| match e {
            IpcError::Shm(e) => e,
            other => bad(other.to_string()),
        };
        let shared = PipeShared::attach(seg).map_err(to_shm)?;
        RingEnd::new(shared, token.end).map_err(to_shm)
    }
}

impl Drop for RingEnd {
    /// Rings both bells the peer may sleep on, so that it looks at the doorbell
    /// socket (closed before this runs: see `Connection`'s field order) and
    /// sees end of file at once, or goes back to sleep if another copy of this
    /// end lives on.
    fn drop(&mut self) {
        if let Some((_, i)) = &self.tx {
            self.shared.bell(*i, DATA).ring();
        }
        if let Some((_, i)) = &self.rx {
            self.shared.bell(*i, ROOM).ring();
        }
    }
}

/// A received message: in the ring, or reassembled from chunks.
pub(crate) enum Payload<'a> {
    Slice(&'a [u8]),
    Vec(Vec<u8>),
}

impl Payload<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Slice(s) => s,
            Payload::Vec(v) => v,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Slice(s) => s.to_vec(),
            Payload::Vec(v) => v,
        }
    }
}

/// The two presence words a wait looks at.
#[derive(Clone, Copy)]
struct Who<'a> {
    /// This end's, which the wait writes.
    me: &'a Presence,
    /// The peer's, which the wait reads.
    peer: &'a Presence,
}

impl Who<'_> {
    /// Whether the peer may answer while this end spins: it is not asleep in
    /// the kernel, and it did not last wait on this end's CPU (then it is not
    /// running now, and spinning would only keep it off the CPU).
    #[inline]
    fn peer_may_run(&self, cpu: Option<u32>) -> bool {
        !self.peer.asleep() && (cpu.is_none() || self.peer.cpu() != cpu)
    }
}

/// Publishes in `me` that this end is awake on the CPU it runs on now, and
/// returns that CPU. Read afresh at every wait, so an end the scheduler moved
/// is seen where it runs: `getcpu` is a vDSO call of a few nanoseconds, and
/// a wait costs at least a spin of 32 `pause`s. The word is written only
/// when the value changes.
#[inline]
fn awake_here(me: &Presence) -> Option<u32> {
    let cpu = Some(rustix::thread::sched_getcpu() as u32);
    me.awake_on(cpu);
    cpu
}

impl Live {
    /// Waits until `ready()`, the peer is gone (`Hup`) or `deadline` passes.
    ///
    /// While the peer may be running (see [`Who::peer_may_run`]) it spins for
    /// the adaptive budget, and stops early when the peer falls asleep or
    /// this end finds it was itself descheduled (a gap of [`PREEMPTED`]
    /// between two looks at the clock: the machine is oversubscribed). Then
    /// it yields its CPU (unless the peer sleeps) and sleeps on `bell` in
    /// slices of at most [`SLEEP_SLICE`], marked asleep in its presence word,
    /// looking at the doorbell socket after each slice that brought no news.
    fn wait_for(
        &self,
        bell: &Bell,
        who: Who<'_>,
        fd: BorrowedFd<'_>,
        mut ready: impl FnMut() -> bool,
        deadline: Option<Instant>,
    ) -> Result<Wait> {
        if ready() {
            return Ok(Wait::Ready);
        }
        if self.peer_gone.load(Relaxed) {
            return Ok(Wait::Hup);
        }
        let waits = self.waits.load(Relaxed).wrapping_add(1);
        self.waits.store(waits, Relaxed);
        let cpu = awake_here(who.me);
        if who.peer_may_run(cpu) {
            // Every PROBE-th wait spins at least MAX_SPIN: two ends that fell
            // back to futex sleeps under load find their way back to spinning
            // once the machine is idle again (a short spin never sees a
            // sleeping peer answer: waking it takes microseconds, tens of them
            // in a virtual machine).
            let stored = self.spin_ns.load(Relaxed);
            let budget = if waits % PROBE == 0 { MAX_SPIN.as_nanos() as u32 } else { stored };
            match spin(&mut ready, who, cpu, budget, deadline) {
                Spun::Ready => {
                    let grown = budget.saturating_mul(2).min(MAX_SPIN.as_nanos() as u32);
                    if grown != stored {
                        self.spin_ns.store(grown, Relaxed);
                    }
                    return Ok(Wait::Ready);
                }
                Spun::Deadline => {}
                Spun::Gave => {
                    let shrunk = (stored / 2).max(MIN_SPIN.as_nanos() as u32);
                    if shrunk != stored {
                        self.spin_ns.store(shrunk, Relaxed);
                    }
                }
            }
        }
        // No `sched_yield` here: with a CPU hog beside it, a yield hands the
        // hog a whole time slice (milliseconds), while a futex sleeper is woken
        // at once and preempts it.
        let slept = self.sleep(bell, who.me, fd, &mut ready, deadline);
        who.me.wake();
        slept
    }

    /// The sleeping part of [`wait_for`](Live::wait_for).
    fn sleep(
        &self,
        bell: &Bell,
        me: &Presence,
        fd: BorrowedFd<'_>,
        ready: &mut dyn FnMut() -> bool,
        deadline: Option<Instant>,
    ) -> Result<Wait> {
        loop {
            // Said again before every slice: a peer marks this end awake just
            // after its futex wake, which can land after this end has already
            // run, answered and gone back to sleep (the hint would then say
            // "awake" for the whole sleep). Stale now for one slice at most.
            me.fall_asleep();
            let slice = match deadline {
                None => SLEEP_SLICE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        if ready() {
                            return Ok(Wait::Ready);
                        }
                        return Ok(self.hup(fd, ready)?.unwrap_or(Wait::Timeout));
                    }
                    left.min(SLEEP_SLICE)
                }
            };
            if bell.wait_once(&mut *ready, Some(slice)) {
                return Ok(Wait::Ready);
            }
            if let Some(w) = self.hup(fd, ready)? {
                return Ok(w);
            }
        }
    }

    /// Looks at the doorbell socket: `Some` once the peer is gone (`Ready` if
    /// its last messages are still there).
    fn hup(&self, fd: BorrowedFd<'_>, ready: &mut dyn FnMut() -> bool) -> Result<Option<Wait>> {
        if self.peer_gone.load(Relaxed) || drain(fd)? {
            self.peer_gone.store(true, Relaxed);
            // The peer's last messages were published before its socket closed.
            return Ok(Some(if ready() { Wait::Ready } else { Wait::Hup }));
        }
        Ok(None)
    }
}

/// How a spin ended.
enum Spun {
    /// `ready()` held.
    Ready,
    /// The deadline passed.
    Deadline,
    /// The budget ran out, the peer could no longer answer, or this end was
    /// descheduled.
    Gave,
}

/// Spins on `ready()` for `budget_ns` nanoseconds at most, looking at the
/// clock and at the peer's presence every 32 tries (the first 32 without a
/// clock read: most answers of a running peer come within them).
#[inline]
fn spin(
    ready: &mut impl FnMut() -> bool,
    who: Who<'_>,
    cpu: Option<u32>,
    budget_ns: u32,
    deadline: Option<Instant>,
) -> Spun {
    let mut tries = || {
        for _ in 0..32 {
            std::hint::spin_loop();
            if ready() {
                return true;
            }
        }
        false
    };
    if tries() {
        return Spun::Ready;
    }
    let start = Instant::now();
    let spin_end = start + Duration::from_nanos(budget_ns.into());
    let (end, why) = match deadline {
        Some(d) if d < spin_end => (d, Spun::Deadline),
        _ => (spin_end, Spun::Gave),
    };
    let mut last = start;
    loop {
        if tries() {
            return Spun::Ready;
        }
        let now = Instant::now();
        if now >= end {
            return why;
        }
        // A long gap since the last look: this end was descheduled, so the
        // machine has more runnable threads than CPUs. Stop burning slices.
        if now - last >= PREEMPTED || !who.peer_may_run(cpu) {
            return Spun::Gave;
        }
        last = now;
    }
}

/// Reads and discards whatever doorbell bytes are queued on `fd`, without
/// blocking; true when the peer's end is closed (end of file or reset).
fn drain(fd: BorrowedFd<'_>) -> Result<bool> {
    let mut buf = [0u8; 64];
    loop {
        match rustix::net::recv(fd, &mut buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) => return Ok(true),
            Ok(_) => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => return Ok(true),
            Err(e) => return Err(IpcError::os("recv", "pipe doorbell", e)),
        }
    }
}

/// Writes one doorbell byte for a reader sleeping in `poll(2)`.
fn doorbell(fd: BorrowedFd<'_>) -> Result<()> {
    loop {
        match rustix::net::send(fd, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            // A full socket buffer already holds bytes that will wake the reader.
            Err(rustix::io::Errno::AGAIN) => return Ok(()),
            Err(rustix::io::Errno::PIPE) | Err(rustix::io::Errno::CONNRESET) => return Err(broken_pipe()),
            Err(e) => return Err(IpcError::os("send", "pipe doorbell", e)),
        }
    }
}

fn wrong_receive() -> IpcError {
    IpcError::WrongDirection { op: "receive", end: "send" }
}

fn broken_pipe() -> IpcError {
    IpcError::os("send", "pipe (the reading end is closed)", io::Error::from(io::ErrorKind::BrokenPipe))
}

fn ring_error(e: RingError) -> IpcError {
    unreadable(&e.to_string())
}

fn unreadable(reason: &str) -> IpcError {
    IpcError::Unreadable { reason: format!("shared-memory ring: {reason}") }
}
