//! `Value<T>` and `Array<T>`: plain-data views in shared memory.
//!
//! Python's `multiprocessing.Value(typecode, v, lock=False)` and
//! `Array(typecode, n, lock=False)`. The data sits behind a [`ViewHeader`]
//! (magic, version, element size, alignment, count and a hash of the type's
//! name) that is checked on every attach, so attaching with the wrong type or to
//! a foreign segment is an error instead of undefined behaviour.
//!
//! Accesses are plain volatile loads and stores: they are not synchronised
//! between processes. Guard them with a lock (`mproc_sync::Synchronized` is the
//! locked form) or use types whose torn reads do not matter.

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::Arc;

use bytemuck::Pod;
use serde::{Deserialize, Serialize};

use crate::sys::magic::{self, Attach};
use crate::{arena, Block, Exports, Result, Segment, SegmentToken, Share, ShmError};

/// The layout header in front of every `Value` and `Array`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewHeader {
    magic: u32,
    version: u32,
    elem_size: u32,
    elem_align: u32,
    len: u64,
    type_hash: u64,
}
const _: () = assert!(size_of::<ViewHeader>() == 32 && align_of::<ViewHeader>() == 8);

impl ViewHeader {
    fn of<T>(len: usize) -> ViewHeader {
        ViewHeader {
            magic: magic::VIEW.word,
            version: magic::VIEW.version,
            elem_size: size_of::<T>() as u32,
            elem_align: align_of::<T>() as u32,
            len: len as u64,
            type_hash: fnv1a(std::any::type_name::<T>().as_bytes()),
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn data_offset<T>() -> usize {
    size_of::<ViewHeader>().next_multiple_of(align_of::<T>())
}

/// Bytes a view of `len` elements of `T` takes, header included.
pub fn footprint<T>(len: usize) -> Option<usize> {
    size_of::<T>().checked_mul(len)?.checked_add(data_offset::<T>())
}

/// Where a view's bytes live, and what keeps them alive.
#[derive(Debug)]
struct Region {
    seg: Segment,
    /// Offset of the header.
    offset: usize,
    /// Keeps an arena block from being freed while views of it exist.
    _block: Option<Block>,
}

/// Writes a fresh header + `len` elements at `offset`.
pub(crate) fn place<T: Pod>(seg: &Segment, offset: usize, len: usize, what: &'static str) -> Result<NonNull<T>> {
    let bytes =
        footprint::<T>(len).ok_or(ShmError::TooLarge { what, size: len, limit: usize::MAX / size_of::<T>().max(1) })?;
    let base = seg.check_range(what, offset, bytes, align_of::<ViewHeader>().max(align_of::<T>()))?;
    // SAFETY: [1] the range was checked to lie in the segment and be aligned for
    // the header and for T; [2] placing a view claims those bytes for it: the
    // caller of `new_in` promises no other live object uses them.
    unsafe {
        base.cast::<ViewHeader>().as_ptr().write_volatile(ViewHeader::of::<T>(len));
        Ok(NonNull::new_unchecked(base.as_ptr().add(data_offset::<T>()).cast::<T>()))
    }
}

/// Checks the header at `offset` and returns the element count and data address.
pub(crate) fn attach<T: Pod>(seg: &Segment, offset: usize, what: &'static str) -> Result<(usize, NonNull<T>)> {
    let at = Attach::new(seg, offset, what);
    let base = at.range(size_of::<ViewHeader>(), align_of::<ViewHeader>())?;
    // SAFETY: the header range was checked to be in bounds and aligned; any bit
    // pattern is a valid ViewHeader (integers only).
    let found = unsafe { base.cast::<ViewHeader>().as_ptr().read_volatile() };
    let want = ViewHeader::of::<T>(found.len as usize);
    at.identity(magic::VIEW, found.magic, found.version)?;
    if found != want {
        return Err(at.mismatch(format!(
            "element of {} bytes (align {}, type hash {:#x}), expected {} ({} bytes, align {}, type hash {:#x})",
            found.elem_size,
            found.elem_align,
            found.type_hash,
            std::any::type_name::<T>(),
            want.elem_size,
            want.elem_align,
            want.type_hash
        )));
    }
    let len = found.len as usize;
    let bytes = footprint::<T>(len).ok_or_else(|| at.mismatch(format!("length {len} overflows")))?;
    at.range(bytes, align_of::<T>())?;
    // SAFETY: the whole view was checked to be inside the segment.
    Ok((len, unsafe { NonNull::new_unchecked(base.as_ptr().add(data_offset::<T>()).cast::<T>()) }))
}

/// The spawn form of a [`Value`] or [`Array`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewToken {
    seg: SegmentToken,
    offset: u64,
}

/// A single plain-data value in shared memory.
///
/// ```
/// use mproc_shm::Value;
/// let v = Value::new(41_i64).unwrap();
/// v.set(v.get() + 1);
/// assert_eq!(v.get(), 42);
/// ```
#[doc(alias = "multiprocessing.Value")]
pub struct Value<T: Pod> {
    region: Arc<Region>,
    ptr: NonNull<T>,
    _t: PhantomData<T>,
}

// SAFETY: the view refers to shared memory that lives as long as `region`; T is
// Pod (Copy, no pointers), and every access is a volatile copy of a whole T.
unsafe impl<T: Pod> Send for Value<T> {}
// SAFETY: as for Send; `&Value` only copies T in and out.
unsafe impl<T: Pod> Sync for Value<T> {}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value { region: self.region.clone(), ptr: self.ptr, _t: PhantomData }
    }
}

impl<T: Pod> Value<T> {
    /// Places `init` in the shared arena.
    pub fn new(init: T) -> Result<Value<T>> {
        let block = arena::alloc(footprint::<T>(1).expect("one element fits"), align_of::<T>().max(8))?;
        let (seg, offset) = (block.segment().clone(), block.offset());
        Self::place(seg, offset, init, Some(block))
    }

    /// Places `init` in `seg` at `offset` (see [`Value::footprint`]), writing the header.
    pub fn new_in(seg: &Segment, offset: usize, init: T) -> Result<Value<T>> {
        Self::place(seg.clone(), offset, init, None)
    }

    fn place(seg: Segment, offset: usize, init: T, block: Option<Block>) -> Result<Value<T>> {
        let ptr = place::<T>(&seg, offset, 1, "Value")?;
        // SAFETY: `place` returned an in-bounds, aligned pointer to room for one T.
        unsafe { ptr.as_ptr().write_volatile(init) };
        Ok(Value { region: Arc::new(Region { seg, offset, _block: block }), ptr, _t: PhantomData })
    }

    /// Attaches to a value placed at `offset` by another process; checks the header.
    pub fn attach(seg: &Segment, offset: usize) -> Result<Value<T>> {
        let (len, ptr) = attach::<T>(seg, offset, "Value")?;
        Attach::new(seg, offset, "Value")
            .layout(len == 1, || format!("an array of {len} elements, not a single value"))?;
        Ok(Value { region: Arc::new(Region { seg: seg.clone(), offset, _block: None }), ptr, _t: PhantomData })
    }

    /// Bytes a `Value<T>` takes in a segment, header included.
    pub fn footprint() -> usize {
        footprint::<T>(1).expect("one element fits")
    }

    /// Reads the value (a volatile copy; not synchronised).
    pub fn get(&self) -> T {
        // SAFETY: ptr is in bounds and aligned for T while `region` lives; T is Pod.
        unsafe { self.ptr.as_ptr().read_volatile() }
    }

    /// Writes the value (a volatile copy; not synchronised).
    pub fn set(&self, v: T) {
        // SAFETY: as in `get`.
        unsafe { self.ptr.as_ptr().write_volatile(v) }
    }

    /// The value's address in this process, for callers that synchronise access
    /// themselves (e.g. under a lock, or through an atomic type of the same size).
    pub fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// The segment and header offset, for placing related objects.
    pub fn location(&self) -> (&Segment, usize) {
        (&self.region.seg, self.region.offset)
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Value").field(&self.get()).finish()
    }
}

impl<T: Pod> Share for Value<T> {
    type Token = ViewToken;
    fn export(&self, exports: &mut Exports) -> Result<ViewToken> {
        Ok(ViewToken { seg: self.region.seg.export(exports)?, offset: self.region.offset as u64 })
    }
    fn import(token: ViewToken) -> Result<Self> {
        Value::attach(&Segment::import(token.seg)?, token.offset as usize)
    }
}

/// A fixed-length array of plain data in shared memory.
///
/// ```
/// use mproc_shm::Array;
/// let a = Array::from_slice(&[1.0_f64, 2.0, 3.0]).unwrap();
/// a.set(1, 5.0).unwrap();
/// assert_eq!(a.to_vec(), vec![1.0, 5.0, 3.0]);
/// assert!(a.get(3).is_err());
/// ```
#[doc(alias = "multiprocessing.Array")]
pub struct Array<T: Pod> {
    region: Arc<Region>,
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: as for Value: Pod elements copied in and out of shared memory kept
// alive by `region`.
unsafe impl<T: Pod> Send for Array<T> {}
// SAFETY: as for Send.
unsafe impl<T: Pod> Sync for Array<T> {}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array { region: self.region.clone(), ptr: self.ptr, len: self.len }
    }
}

impl<T: Pod> Array<T> {
    /// An array of `len` zeroed elements in the shared arena.
    pub fn zeroed(len: usize) -> Result<Array<T>> {
        let bytes = footprint::<T>(len).ok_or(ShmError::TooLarge { what: "Array", size: len, limit: usize::MAX })?;
        let block = arena::alloc(bytes, align_of::<T>().max(8))?;
        let (seg, offset) = (block.segment().clone(), block.offset());
        Self::place(seg, offset, len, Some(block))
    }

    /// An array holding a copy of `items`, in the shared arena.
    pub fn from_slice(items: &[T]) -> Result<Array<T>> {
        let a = Self::zeroed(items.len())?;
        a.copy_from_slice(items)?;
        Ok(a)
    }

    /// Places `len` zeroed elements in `seg` at `offset` (see [`Array::footprint`]).
    pub fn new_in(seg: &Segment, offset: usize, len: usize) -> Result<Array<T>> {
        Self::place(seg.clone(), offset, len, None)
    }

    fn place(seg: Segment, offset: usize, len: usize, block: Option<Block>) -> Result<Array<T>> {
        let ptr = place::<T>(&seg, offset, len, "Array")?;
        // SAFETY: `place` checked room for `len` elements; zero is a valid Pod.
        unsafe { ptr.as_ptr().write_bytes(0, len) };
        Ok(Array { region: Arc::new(Region { seg, offset, _block: block }), ptr, len })
    }

    /// Attaches to an array placed at `offset` by another process; checks the header.
    pub fn attach(seg: &Segment, offset: usize) -> Result<Array<T>> {
        let (len, ptr) = attach::<T>(seg, offset, "Array")?;
        Ok(Array { region: Arc::new(Region { seg: seg.clone(), offset, _block: None }), ptr, len })
    }

    /// Bytes an `Array<T>` of `len` elements takes, header included.
    pub fn footprint(len: usize) -> Option<usize> {
        footprint::<T>(len)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an array of no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, index: usize) -> Result<()> {
        if index < self.len {
            Ok(())
        } else {
            Err(ShmError::IndexOutOfRange { index, len: self.len })
        }
    }

    /// Reads element `index`.
    pub fn get(&self, index: usize) -> Result<T> {
        self.check(index)?;
        // SAFETY: index < len, checked above; the region lives with self.
        Ok(unsafe { self.ptr.as_ptr().add(index).read_volatile() })
    }

    /// Writes element `index`.
    pub fn set(&self, index: usize, v: T) -> Result<()> {
        self.check(index)?;
        // SAFETY: as in `get`.
        unsafe { self.ptr.as_ptr().add(index).write_volatile(v) };
        Ok(())
    }

    /// Copies the whole array out.
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len).map(|i| self.get(i).expect("in range")).collect()
    }

    /// Overwrites the whole array; the lengths must match.
    pub fn copy_from_slice(&self, items: &[T]) -> Result<()> {
        if items.len() != self.len {
            return Err(ShmError::LengthMismatch { expected: self.len, found: items.len() });
        }
        for (i, v) in items.iter().enumerate() {
            self.set(i, *v)?;
        }
        Ok(())
    }

    /// The first element's address in this process.
    pub fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Array").field(&self.to_vec()).finish()
    }
}

impl<T: Pod> Share for Array<T> {
    type Token = ViewToken;
    fn export(&self, exports: &mut Exports) -> Result<ViewToken> {
        Ok(ViewToken { seg: self.region.seg.export(exports)?, offset: self.region.offset as u64 })
    }
    fn import(token: ViewToken) -> Result<Self> {
        Array::attach(&Segment::import(token.seg)?, token.offset as usize)
    }
}
