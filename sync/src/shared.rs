//! Where a primitive lives: a checked header and a body in shared memory.
//!
//! Every primitive is a `#[repr(C)]` body of atomics placed in a [`Segment`]
//! behind a [`Header`] (magic, version, kind, body offset and size, and for
//! `Synchronized<T>` a hash of `T`). The header is written when the object is
//! placed and checked whenever another process attaches to it, so attaching a
//! `Lock` to a `Semaphore`, or to foreign bytes, is an error instead of undefined
//! behaviour. Nothing in the body is a pointer: each process maps the segment at
//! its own address.
//!
//! By default a primitive is carved from `mproc-shm`'s arena (so ten thousand
//! locks share a few segments and fds); `new_in(segment, offset)` places one
//! where the caller says.

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::Arc;

use mproc_shm::sys::magic::{self, Attach, Magic};
use mproc_shm::sys::Deadline;
use mproc_shm::{arena, Block, Exports, Segment, SegmentToken, Share, ShmError};
use serde::{Deserialize, Serialize};

use crate::Result;

/// The header's identity; its version is kept in 16 bits.
const KIND: Magic = magic::SYNC_PRIMITIVE;
const _: () = assert!(KIND.version <= u16::MAX as u32);

/// The header in front of every primitive placed in shared memory.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    magic: u32,
    version: u16,
    kind: u16,
    /// Offset of the body from the header.
    body: u32,
    /// Size of the body in bytes.
    size: u32,
    /// Kind-specific check value (the hash of `T` for `Synchronized<T>`).
    aux: u64,
}
const _: () = assert!(size_of::<Header>() == 24 && align_of::<Header>() == 8);

/// A body type that can be placed in shared memory.
pub(crate) trait Object: Sized {
    /// The kind tag written in the header.
    const KIND: u16;
    /// The type's name for errors.
    const NAME: &'static str;
    /// The header's check value.
    fn aux() -> u64 {
        0
    }
    /// Whether a header of `kind`/`aux` holds a body this type may attach to at
    /// the body offset (a `Lock` attaches to the lock inside a `Synchronized`).
    fn accepts(kind: u16, aux: u64) -> bool {
        kind == Self::KIND && aux == Self::aux()
    }
}

/// The kind tags.
pub(crate) mod kind {
    pub const LOCK: u16 = 1;
    pub const RLOCK: u16 = 2;
    pub const SEMAPHORE: u16 = 3;
    pub const CONDITION: u16 = 4;
    pub const EVENT: u16 = 5;
    pub const BARRIER: u16 = 6;
    pub const SYNCHRONIZED: u16 = 7;
}

fn body_offset<R>() -> usize {
    size_of::<Header>().next_multiple_of(align_of::<R>())
}

/// Bytes an object of body `R` takes in a segment, header included.
pub(crate) fn footprint<R>() -> usize {
    body_offset::<R>() + size_of::<R>()
}

/// Alignment an object of body `R` needs.
pub(crate) fn align<R>() -> usize {
    align_of::<Header>().max(align_of::<R>())
}

#[derive(Debug)]
struct Region {
    seg: Segment,
    /// Offset of the header.
    offset: usize,
    /// Keeps an arena block from being reused while handles exist.
    _block: Option<Block>,
}

/// A handle on a body `R` in shared memory; clones share one mapping.
pub(crate) struct Place<R> {
    region: Arc<Region>,
    raw: NonNull<R>,
    _r: PhantomData<R>,
}

// SAFETY: the body is made of atomics (and, for `Synchronized`, Pod data reached
// only under its lock); the mapping lives as long as `region`.
unsafe impl<R: Sync> Send for Place<R> {}
// SAFETY: as for Send: `&Place` hands out `&R`, which is Sync.
unsafe impl<R: Sync> Sync for Place<R> {}

impl<R> Clone for Place<R> {
    fn clone(&self) -> Self {
        Place { region: self.region.clone(), raw: self.raw, _r: PhantomData }
    }
}

impl<R: Object> Place<R> {
    /// Places `init` in the shared arena.
    pub(crate) fn new(init: R) -> Result<Place<R>> {
        let block = arena::alloc(footprint::<R>(), align::<R>())?;
        let (seg, offset) = (block.segment().clone(), block.offset());
        Self::put(seg, offset, init, Some(block))
    }

    /// Places `init` in `seg` at `offset`.
    pub(crate) fn new_in(seg: &Segment, offset: usize, init: R) -> Result<Place<R>> {
        Self::put(seg.clone(), offset, init, None)
    }

    fn put(seg: Segment, offset: usize, init: R, block: Option<Block>) -> Result<Place<R>> {
        let base = seg.check_range(R::NAME, offset, footprint::<R>(), align::<R>())?;
        let header = Header {
            magic: KIND.word,
            version: KIND.version as u16,
            kind: R::KIND,
            body: body_offset::<R>() as u32,
            size: size_of::<R>() as u32,
            aux: R::aux(),
        };
        // SAFETY: [1] the range was checked to lie in the segment, aligned for the
        // header and for R; [2] placing claims those bytes: the arena block is ours
        // alone, and a caller of `new_in` promises no live object uses them.
        let raw = unsafe {
            let raw = base.as_ptr().add(body_offset::<R>()).cast::<R>();
            raw.write(init);
            base.cast::<Header>().as_ptr().write_volatile(header);
            NonNull::new_unchecked(raw)
        };
        Ok(Place { region: Arc::new(Region { seg, offset, _block: block }), raw, _r: PhantomData })
    }

    /// Attaches to an object placed at `offset` by another process, checking
    /// its header.
    pub(crate) fn attach(seg: &Segment, offset: usize) -> Result<Place<R>> {
        let at = Attach::new(seg, offset, R::NAME);
        let base = at.range(size_of::<Header>(), align::<R>())?;
        // SAFETY: the header range is in bounds and aligned; any bit pattern is a
        // valid Header (integers only).
        let h = unsafe { base.cast::<Header>().as_ptr().read_volatile() };
        at.identity(KIND, h.magic, h.version.into())?;
        at.layout(R::accepts(h.kind, h.aux), || {
            format!(
                "kind {} (check value {:#x}), expected kind {} (check value {:#x})",
                h.kind,
                h.aux,
                R::KIND,
                R::aux()
            )
        })?;
        let body = h.body as usize;
        at.layout(
            body >= size_of::<Header>() && body % align_of::<R>() == 0 && h.size as usize >= size_of::<R>(),
            || format!("body at +{body} of {} bytes cannot hold a {}", h.size, R::NAME),
        )?;
        at.range(body + size_of::<R>(), align::<R>())?;
        // SAFETY: the body range was checked to lie in the segment and is aligned
        // for R (offset and body are multiples of its alignment).
        let raw = unsafe { NonNull::new_unchecked(base.as_ptr().add(body).cast::<R>()) };
        Ok(Place { region: Arc::new(Region { seg: seg.clone(), offset, _block: None }), raw, _r: PhantomData })
    }

    /// The spawn token.
    pub(crate) fn token(&self, exports: &mut Exports) -> Result<PlaceToken> {
        Ok(PlaceToken { seg: self.region.seg.export(exports)?, offset: self.region.offset as u64 })
    }

    /// Rebuilds a handle from a spawn token.
    pub(crate) fn import(token: PlaceToken) -> Result<Place<R>> {
        let seg = Segment::import(token.seg)?;
        let offset = usize::try_from(token.offset)
            .map_err(|_| ShmError::BadToken { what: R::NAME, detail: format!("offset {} overflows", token.offset) })?;
        Self::attach(&seg, offset)
    }
}

impl<R> Place<R> {
    /// What keeps the body mapped: for the async waits' registrations.
    #[cfg(feature = "tokio")]
    pub(crate) fn keep_alive(&self) -> crate::asyncio::KeepAlive {
        self.region.clone()
    }

    /// The body.
    #[inline]
    pub(crate) fn raw(&self) -> &R {
        // SAFETY: the body was initialised at placement (or checked on attach) and
        // stays mapped while `region` lives; R is accessed through shared refs only.
        unsafe { self.raw.as_ref() }
    }

    /// The segment and header offset.
    pub(crate) fn location(&self) -> (&Segment, usize) {
        (&self.region.seg, self.region.offset)
    }

    /// A handle on a part of this body, sharing its mapping.
    pub(crate) fn project<U>(&self, f: impl FnOnce(&R) -> &U) -> Place<U> {
        let part = NonNull::from(f(self.raw()));
        Place { region: self.region.clone(), raw: part, _r: PhantomData }
    }
}

/// How a primitive is named in a spawned child: its segment and header offset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaceToken {
    seg: SegmentToken,
    offset: u64,
}

/// Implements the location API and `Share` for a handle `$ty` whose field
/// `place` is a `Place<$raw>`.
macro_rules! placed {
    ($ty:ident, $raw:ty) => {
        impl $ty {
            /// Bytes this primitive takes when placed with `new_in`, header included.
            pub fn footprint() -> usize {
                crate::shared::footprint::<$raw>()
            }

            /// Alignment an offset given to `new_in` must have.
            pub fn align() -> usize {
                crate::shared::align::<$raw>()
            }

            /// Attaches to a primitive another process placed in `seg` at `offset`
            /// (with `new_in`); checks its header.
            pub fn attach(seg: &mproc_shm::Segment, offset: usize) -> crate::Result<$ty> {
                Ok($ty::from_place(crate::shared::Place::attach(seg, offset)?))
            }

            /// The segment holding the primitive and its offset there.
            pub fn location(&self) -> (&mproc_shm::Segment, usize) {
                self.place.location()
            }
        }

        impl mproc_shm::Share for $ty {
            type Token = crate::shared::PlaceToken;

            fn export(&self, exports: &mut mproc_shm::Exports) -> mproc_shm::Result<Self::Token> {
                Ok(self.place.token(exports)?)
            }

            fn import(token: Self::Token) -> mproc_shm::Result<Self> {
                Ok($ty::from_place(crate::shared::Place::import(token)?))
            }
        }
    };
}
pub(crate) use placed;

/// A deadline `d` from now; `None` when it is too far to represent (no limit):
/// the OS layer's [`Deadline`] rule, in the `Option<Instant>` form the
/// primitives' `lock`/`acquire`/`wait` take.
pub(crate) fn deadline(d: Duration) -> Option<Instant> {
    Deadline::after(d).instant()
}

/// What is left until `deadline`: `None` (no limit), or `Some(remaining)`, zero
/// once past.
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    Deadline::from(deadline).remaining()
}

use std::time::{Duration, Instant};
