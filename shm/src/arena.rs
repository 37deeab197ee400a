//! A shared arena: small objects carved out of a few large segments.
//!
//! Like CPython's `multiprocessing.heap`, so that ten thousand locks do not cost
//! ten thousand fds and mappings. Blocks come in power-of-two size classes from
//! 64 bytes (one cache line, so no two objects share a line) to 64 KiB, bump
//! allocated from 1 MiB memfd segments and aligned to their class size; larger
//! requests get a segment of their own. A freed block goes on its class's free
//! list and is zeroed when it is handed out again.
//!
//! # Who frees a block
//! The arena is per process. A block is returned to the arena only by the
//! process that allocated it, when that process drops its [`Block`]. A child
//! that inherits a block (fork) or imports it (spawn) uses it but never frees it,
//! and a child that allocates gets an arena of its own (the state is rebuilt
//! when the pid changes), so parent and child never hand out the same bytes.
//! Hence the rule, the same as CPython's: **keep an object alive in the process
//! that created it for as long as children use it** (join them first). The
//! memory itself can never dangle — each holder keeps the segment mapped — but a
//! block the creator freed may be reused for another object.
//!
//! # Fork
//! The arena's lock is a word holding the pid of the process whose thread
//! holds it. A child forked while another thread of the parent was inside the
//! arena inherits the word held, but that thread does not exist in the child:
//! the child sees a holder pid that is not its own and takes the lock over, and
//! since the state belongs to another pid it starts an arena of its own,
//! leaking (never dropping) the inherited state, which may be half-updated. So
//! a fork never leaves a child unable to allocate, unlike a plain mutex.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::pidlock::{PidGuard, PidLock};
use crate::sys::pid;
use crate::{Exports, Result, Segment, SegmentToken, Share, ShmError, CACHE_LINE};

/// Size of each arena segment.
pub const ARENA_SEGMENT: usize = 1 << 20;
/// Requests above this get a segment of their own.
pub const MAX_CLASS: usize = 64 << 10;
const CLASSES: usize = (MAX_CLASS / CACHE_LINE).trailing_zeros() as usize + 1;

/// A block of shared memory from the arena (or a dedicated segment).
///
/// Dropping it in the process that allocated it returns it to the arena.
#[derive(Debug)]
pub struct Block {
    seg: Segment,
    offset: usize,
    len: usize,
    /// (pid of the allocating process, segment index, size class) when the block
    /// came from the arena and this process allocated it; `None` otherwise.
    owner: Option<(u32, u32, u8)>,
}

struct State {
    pid: u32,
    segments: Vec<Segment>,
    /// Next free byte in the last segment.
    bump: usize,
    free: [Vec<(u32, usize)>; CLASSES],
    in_use: usize,
}

/// The arena's state behind its lock (see "Fork" above): `None` until the
/// first allocation, and after a fork until the child's first one.
static ARENA: PidLock<Option<State>> = PidLock::new(None);

/// Takes the arena lock as process `me`.
fn lock(me: u32) -> PidGuard<'static, Option<State>> {
    let (mut guard, taken_over) = ARENA.lock(me);
    if taken_over {
        // A parent thread was inside the arena at fork: its state may be
        // half-updated. Forget it rather than drop it.
        std::mem::forget(guard.take());
    }
    guard
}

/// Allocates `size` bytes aligned to `align`, zero-filled.
///
/// ```
/// let b = mproc_shm::arena::alloc(24, 8).unwrap();
/// assert!(b.len() >= 24);
/// assert_eq!(b.as_ptr() as usize % 64, 0);
/// ```
pub fn alloc(size: usize, align: usize) -> Result<Block> {
    if size == 0 {
        return Err(ShmError::ZeroSize { what: "arena block" });
    }
    if !align.is_power_of_two() {
        return Err(ShmError::Misaligned { what: "arena block", offset: 0, align });
    }
    let class_size = size.max(align).max(CACHE_LINE).checked_next_power_of_two().unwrap_or(usize::MAX);
    if class_size > MAX_CLASS {
        // Page-aligned at offset 0 of its own segment.
        if align > 4096 {
            return Err(ShmError::Misaligned { what: "arena block", offset: 0, align });
        }
        let seg = Segment::anonymous(size)?;
        return Ok(Block { seg, offset: 0, len: size, owner: None });
    }
    let class = (class_size / CACHE_LINE).trailing_zeros() as usize;
    let me = pid();
    let mut guard = lock(me);
    if guard.as_ref().is_none_or(|s| s.pid != me) {
        *guard =
            Some(State { pid: me, segments: Vec::new(), bump: ARENA_SEGMENT, free: Default::default(), in_use: 0 });
    }
    let st = guard.as_mut().expect("initialised above");
    let (idx, offset) = if let Some(slot) = st.free[class].pop() {
        slot
    } else {
        let start = st.bump.next_multiple_of(class_size);
        if st.segments.is_empty() || start + class_size > ARENA_SEGMENT {
            st.segments.push(Segment::anonymous(ARENA_SEGMENT)?);
            st.bump = 0;
        }
        let start = st.bump.next_multiple_of(class_size);
        st.bump = start + class_size;
        ((st.segments.len() - 1) as u32, start)
    };
    st.in_use += class_size;
    let seg = st.segments[idx as usize].clone();
    drop(guard);
    // SAFETY: [1] offset + class_size <= ARENA_SEGMENT, the segment's length;
    // [2] the block is ours alone: it was just taken from the bump region or the
    // free list under the arena lock.
    unsafe { seg.as_ptr().add(offset).write_bytes(0, class_size) };
    Ok(Block { seg, offset, len: class_size, owner: Some((me, idx, class as u8)) })
}

/// Bytes handed out by this process's arena and not yet freed, and the number
/// of arena segments it has mapped.
pub fn usage() -> (usize, usize) {
    let me = pid();
    let guard = lock(me);
    match guard.as_ref() {
        Some(s) if s.pid == me => (s.in_use, s.segments.len()),
        _ => (0, 0),
    }
}

/// Holds the arena lock until dropped, on this thread: for tests that fork
/// while another thread is inside the arena (see `crate::__testing`).
pub(crate) fn hold_lock() -> impl Drop {
    lock(pid())
}

impl Block {
    /// The segment holding the block.
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The block's offset in its segment.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The block's usable length (at least what was asked for).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: blocks are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The block's address in this process.
    pub fn as_ptr(&self) -> *mut u8 {
        // SAFETY: offset + len lies inside the segment (checked at creation).
        unsafe { self.seg.as_ptr().add(self.offset) }
    }

    /// Wraps a region of a caller's segment as a block that is never freed to the
    /// arena.
    pub fn in_segment(seg: &Segment, offset: usize, len: usize, align: usize) -> Result<Block> {
        seg.check_range("block", offset, len, align)?;
        Ok(Block { seg: seg.clone(), offset, len, owner: None })
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let Some((owner, idx, class)) = self.owner else { return };
        if owner != pid() {
            return; // inherited by fork: the allocating process frees it
        }
        let mut guard = lock(owner);
        if let Some(st) = guard.as_mut().filter(|s| s.pid == owner) {
            st.free[class as usize].push((idx, self.offset));
            st.in_use -= self.len;
        }
    }
}

/// The spawn form of a [`Block`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockToken {
    seg: SegmentToken,
    offset: u64,
    len: u64,
}

impl Share for Block {
    type Token = BlockToken;

    fn export(&self, exports: &mut Exports) -> Result<BlockToken> {
        Ok(BlockToken { seg: self.seg.export(exports)?, offset: self.offset as u64, len: self.len as u64 })
    }

    fn import(token: BlockToken) -> Result<Block> {
        let seg = Segment::import(token.seg)?;
        Block::in_segment(&seg, token.offset as usize, token.len as usize, 1)
    }
}

/// A shared block kept alive by reference counting within one process.
pub type SharedBlock = Arc<Block>;
