//! Payload types that encode and decode as one copy: [`Bytes`] (a byte string)
//! and [`PodVec`] (an array of plain data: `f64`, `u32`, `#[repr(C)]` structs).
//!
//! serde has no notion of "a slice of bytes" for `Vec<u8>` or "a slice of plain
//! numbers" for `Vec<f64>`: it walks them element by element (postcard: about
//! 1.7 ns per byte), so a 1 MiB `Vec<u8>` costs more than a millisecond to
//! encode. `Bytes` goes through serde's `serialize_bytes` /
//! `deserialize_byte_buf` (as `serde_bytes::ByteBuf` does): a length, then one
//! `memcpy`. `PodVec<T>` does the same with the raw little-endian bytes of its
//! elements behind a two-field header, and copies them on receipt into a
//! properly aligned `Vec<T>`.
//!
//! Both are ordinary serde types, so they travel wherever a typed item does:
//! [`Queue`](crate::Queue) and its kin, [`Connection::send`](crate::Connection::send) /
//! [`recv`](crate::Connection::recv), pool arguments and results, manager values.
//!
//! # Wire format (postcard)
//!
//! ```text
//! Bytes      := len varint | bytes[len]
//! PodVec<T>  := elem_size varint | kind u8 | len varint | bytes[len]   (len = n · elem_size)
//! ```
//!
//! `kind` names the element type when it is a primitive (see
//! [`PodVec::element_kind`]; 0 for any other `Pod` type, for which only the
//! size is checked). The element bytes are little-endian. A receiver whose `T`
//! has another size, or another primitive kind, gets a [`PayloadError`] naming
//! both, never reinterpreted bytes.
//!
//! # In Python's terms
//!
//! [`Connection::send_pickle`](crate::Connection::send_pickle) writes `Bytes` as
//! `bytes` and `PodVec<T>` of a primitive as a real `array.array` with the
//! typecode of [`PodVec::array_typecode`] (`'d'` for `f64`, `'I'` for `u32`, …),
//! pickled as CPython pickles one (`array._array_reconstructor(array.array,
//! typecode, format, bytes)`), which NumPy reads with
//! `numpy.frombuffer(a, dtype=a.typecode)`. `recv_pickle` reads such an array
//! back into a `PodVec<T>` (matching the two globals by name, calling nothing);
//! an array of another typecode is a [`PayloadError`] naming both element
//! types. `PodVec`s of `u128`, `i128` and non-primitive types, which have no
//! typecode, reach Python as the `(element size, kind, bytes)` tuple.
//!
//! ```
//! use mproc_ipc::{Bytes, PodVec};
//!
//! let b = Bytes::from(vec![1u8, 2, 3]);
//! let wire = postcard::to_allocvec(&b).unwrap();
//! assert_eq!(wire, [3, 1, 2, 3]); // a length, then the bytes
//! assert_eq!(postcard::from_bytes::<Bytes>(&wire).unwrap(), b);
//!
//! let v = PodVec::from(vec![1.5f64, -2.0]);
//! let wire = postcard::to_allocvec(&v).unwrap();
//! assert_eq!(postcard::from_bytes::<PodVec<f64>>(&wire).unwrap(), v);
//! assert!(postcard::from_bytes::<PodVec<u32>>(&wire).is_err()); // 8-byte elements, not 4
//! ```

use std::any::TypeId;
use std::borrow::{Borrow, BorrowMut};
use std::cell::Cell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod copy;
mod pod_serde;
mod queue;
mod wire;

pub(crate) use copy::SlotWriter;
pub use wire::{KEPT_NAMES, NAME_NOT_KEPT};

/// Why a payload could not be decoded. Every variant names the sizes or types
/// involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The sender's elements have another size than the receiver's `T`.
    #[error("received a PodVec of {got}-byte elements as {type_name}, whose elements are {expected} bytes")]
    ElementSize {
        /// The receiving type, e.g. `PodVec<u32>`.
        type_name: &'static str,
        /// `size_of::<T>()` on the receiving side.
        expected: usize,
        /// The element size named by the sender.
        got: u64,
    },
    /// Same size, but the sender named another primitive element type.
    #[error("received a PodVec of {got} as {type_name}, whose elements are {expected}")]
    ElementKind {
        /// The receiving type, e.g. `PodVec<u32>`.
        type_name: &'static str,
        /// The receiver's element type, e.g. `u32`.
        expected: &'static str,
        /// The sender's element type, e.g. `f32`.
        got: &'static str,
    },
    /// A Python `array.array` of another typecode than the receiver's element type
    /// (read by [`Connection::recv_pickle`](crate::Connection::recv_pickle)).
    #[error("received an array.array of typecode '{got}' as {type_name}, whose typecode is '{expected}'")]
    ArrayTypecode {
        /// The receiving type, e.g. `PodVec<i32>`.
        type_name: &'static str,
        /// The receiver's typecode, e.g. `'i'`.
        expected: char,
        /// The array's typecode, e.g. `'d'` (`'?'` for a wide-character array).
        got: char,
    },
    /// The element bytes are not a whole number of elements.
    #[error("a PodVec payload of {len} bytes is not a whole number of {elem_size}-byte elements")]
    Length {
        /// The length of the element bytes.
        len: usize,
        /// The element size.
        elem_size: usize,
    },
    /// A big-endian host cannot byte-swap elements of a type that is not a
    /// primitive (it does not know the fields).
    #[error("{type_name}: elements that are not primitives cannot be byte-swapped on a big-endian host")]
    BigEndian {
        /// The type, e.g. `PodVec<MyPoint>`.
        type_name: &'static str,
    },
    /// The encoded bytes are not a postcard encoding of the type.
    #[error("{len} bytes are not an encoded {type_name}: {reason}")]
    Malformed {
        /// The expected type.
        type_name: &'static str,
        /// The length of the bytes given.
        len: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

thread_local! {
    /// The last [`PayloadError`] a decode raised on this thread. serde formats
    /// (postcard among them) keep only that *some* custom error occurred, so
    /// the carriers read the typed cause back from here.
    static LAST_ERROR: Cell<Option<PayloadError>> = const { Cell::new(None) };
}

/// Takes the [`PayloadError`] behind the most recent failed decode of a
/// [`PodVec`] on this thread, if it was not taken yet.
///
/// serde formats such as postcard report a custom decode error without its
/// message; a carrier whose decode failed calls this to name the cause (the
/// sender's element size and the receiver's). [`Connection::recv`](crate::Connection::recv)
/// does so and returns [`IpcError::Payload`](crate::IpcError::Payload).
pub fn take_decode_error() -> Option<PayloadError> {
    LAST_ERROR.with(|c| c.take())
}

/// Forgets any recorded [`PayloadError`] (before a decode whose failure will
/// be looked up with [`take_decode_error`]).
#[inline]
pub fn clear_decode_error() {
    LAST_ERROR.with(|c| c.set(None))
}

fn fail<E: de::Error>(e: PayloadError) -> E {
    LAST_ERROR.with(|c| c.set(Some(e)));
    E::custom(e)
}

// ---------------------------------------------------------------------------
// Bytes

/// A byte string that encodes as one copy: serde's `serialize_bytes`, not a
/// sequence of `u8`s. Use it instead of `Vec<u8>` for byte payloads: through a
/// [`Queue`](crate::Queue) a 64 KiB `Bytes` moves about ten times faster than a
/// `Vec<u8>`.
///
/// A thin wrapper over `Vec<u8>`: it derefs to `[u8]`, converts from and into
/// `Vec<u8>` without copying, and compares with byte slices.
///
/// ```
/// use mproc_ipc::{Bytes, Queue, QueueBuilder};
///
/// let q: Queue<Bytes> = QueueBuilder::new().max_item_bytes(8 << 10).build()?;
/// q.put(Bytes::from(vec![7u8; 4096]))?;
/// let got = q.get()?;
/// assert_eq!(got.len(), 4096);
/// assert_eq!(got[..2], [7, 7]);
/// let v: Vec<u8> = got.into(); // no copy
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(Vec<u8>);

impl Bytes {
    /// An empty byte string.
    pub const fn new() -> Bytes {
        Bytes(Vec::new())
    }

    /// An empty byte string with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Bytes {
        Bytes(Vec::with_capacity(cap))
    }

    /// The bytes as a slice.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The underlying vector, to grow or shrink in place.
    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// The underlying vector (no copy).
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// The byte string inside an encoded `Bytes` (postcard), borrowed: no copy
    /// and no allocation. For receiving in place, e.g. from
    /// [`Connection::recv_bytes_with`](crate::Connection::recv_bytes_with).
    ///
    /// ```
    /// use mproc_ipc::Bytes;
    /// let wire = postcard::to_allocvec(&Bytes::from(&b"abc"[..])).unwrap();
    /// assert_eq!(Bytes::view(&wire)?, b"abc");
    /// assert!(Bytes::view(&wire[..2]).is_err());
    /// # Ok::<(), mproc_ipc::PayloadError>(())
    /// ```
    pub fn view(encoded: &[u8]) -> Result<&[u8], PayloadError> {
        let malformed = |reason| PayloadError::Malformed { type_name: "Bytes", len: encoded.len(), reason };
        match postcard::take_from_bytes::<&[u8]>(encoded) {
            Ok((bytes, [])) => Ok(bytes),
            Ok(_) => Err(malformed("bytes follow the byte string")),
            Err(_) => Err(malformed("the length prefix is bad or longer than the bytes")),
        }
    }
}

impl fmt::Debug for Bytes {
    /// `b"..."` with non-printable bytes escaped; long strings are cut after
    /// 64 bytes and their length given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        write!(f, "b\"{}\"", shown.escape_ascii())?;
        if self.0.len() > SHOWN {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for Bytes {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Borrow<[u8]> for Bytes {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl BorrowMut<[u8]> for Bytes {
    fn borrow_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(s: &[u8]) -> Bytes {
        Bytes(s.to_vec())
    }
}

impl<const N: usize> From<[u8; N]> for Bytes {
    fn from(a: [u8; N]) -> Bytes {
        Bytes(a.to_vec())
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Bytes {
        Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Bytes {
        Bytes(s.into_bytes())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Vec<u8> {
        b.0
    }
}

impl FromIterator<u8> for Bytes {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Bytes {
        Bytes(iter.into_iter().collect())
    }
}

impl Extend<u8> for Bytes {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl<'a> Extend<&'a u8> for Bytes {
    fn extend<I: IntoIterator<Item = &'a u8>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl IntoIterator for Bytes {
    type Item = u8;
    type IntoIter = std::vec::IntoIter<u8>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Bytes {
    type Item = &'a u8;
    type IntoIter = std::slice::Iter<'a, u8>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl PartialEq<[u8]> for Bytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[u8]> for Bytes {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Bytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Bytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Vec<u8>> for Bytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Bytes> for Vec<u8> {
    fn eq(&self, other: &Bytes) -> bool {
        self == &other.0
    }
}

impl PartialEq<Bytes> for [u8] {
    fn eq(&self, other: &Bytes) -> bool {
        self == other.0
    }
}

impl Serialize for Bytes {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    /// One allocation (not zeroed) and one copy from the format's borrowed
    /// bytes (none from an owned buffer), as `serde_bytes::ByteBuf` does, with
    /// a copy safe from 4K aliasing (`payload/copy.rs`).
    #[inline]
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> de::Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    #[inline]
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(copy::to_vec(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        Ok(Bytes(v.as_bytes().to_vec()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Bytes, E> {
        Ok(Bytes(v.into_bytes()))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        // Formats without a byte-string type (e.g. JSON) write a sequence.
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(Bytes(v))
    }
}

// ---------------------------------------------------------------------------
// PodVec

/// An array of plain data (`T: bytemuck::Pod`: numbers, and `#[repr(C)]`
/// structs of numbers without padding) that encodes as its raw little-endian
/// bytes in one copy, behind a header naming the element size and, for a
/// primitive, the element type.
///
/// Decoding copies the bytes into a properly aligned `Vec<T>` (one copy; the
/// received bytes need not be aligned). A receiver whose `T` has another size,
/// or is another primitive of the same size, gets a [`PayloadError`] naming
/// both (through a carrier: its decode error, e.g.
/// [`IpcError::Payload`](crate::IpcError::Payload) from
/// [`Connection::recv`](crate::Connection::recv)), never reinterpreted bytes.
///
/// ```
/// use mproc_ipc::{Connection, IpcError, PayloadError, PodVec};
///
/// let (mut a, mut b) = Connection::pair()?;
/// a.send(&PodVec::from(vec![0.5f64; 1000]))?;
/// let v: PodVec<f64> = b.recv()?;
/// assert_eq!(v.iter().sum::<f64>(), 500.0);
///
/// a.send(&v)?;
/// let err = b.recv::<PodVec<u32>>().unwrap_err();
/// assert!(matches!(err, IpcError::Payload(PayloadError::ElementSize { expected: 4, got: 8, .. })));
/// # Ok::<(), IpcError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodVec<T: Pod>(Vec<T>);

impl<T: Pod> Default for PodVec<T> {
    fn default() -> PodVec<T> {
        PodVec(Vec::new())
    }
}

/// The primitive element types [`PodVec`] names on the wire, with their
/// `array.array` typecodes. The position + 1 is the kind byte.
const PRIMITIVES: [(&str, Option<char>); 12] = [
    ("u8", Some('B')),
    ("i8", Some('b')),
    ("u16", Some('H')),
    ("i16", Some('h')),
    ("u32", Some('I')),
    ("i32", Some('i')),
    ("u64", Some('Q')),
    ("i64", Some('q')),
    ("u128", None),
    ("i128", None),
    ("f32", Some('f')),
    ("f64", Some('d')),
];

fn kind_of<T: 'static>() -> u8 {
    let t = TypeId::of::<T>();
    let ids = [
        TypeId::of::<u8>(),
        TypeId::of::<i8>(),
        TypeId::of::<u16>(),
        TypeId::of::<i16>(),
        TypeId::of::<u32>(),
        TypeId::of::<i32>(),
        TypeId::of::<u64>(),
        TypeId::of::<i64>(),
        TypeId::of::<u128>(),
        TypeId::of::<i128>(),
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
    ];
    ids.iter().position(|&id| id == t).map_or(0, |i| i as u8 + 1)
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        0 => "a non-primitive type",
        k => PRIMITIVES.get(k as usize - 1).map_or("an unknown element type", |p| p.0),
    }
}

impl<T: Pod> PodVec<T> {
    /// An empty array.
    pub const fn new() -> PodVec<T> {
        PodVec(Vec::new())
    }

    /// An empty array with room for `cap` elements.
    pub fn with_capacity(cap: usize) -> PodVec<T> {
        PodVec(Vec::with_capacity(cap))
    }

    /// The elements as a slice.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The underlying vector, to grow or shrink in place.
    pub fn as_mut_vec(&mut self) -> &mut Vec<T> {
        &mut self.0
    }

    /// The underlying vector (no copy).
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }

    /// The elements' bytes, in this host's byte order.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }

    /// The kind byte written on the wire for `T`: 1..=12 for `u8`, `i8`,
    /// `u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `u128`, `i128`, `f32`, `f64`;
    /// 0 for any other `Pod` type (only its size is checked on receipt).
    pub fn element_kind() -> u8 {
        kind_of::<T>()
    }

    /// The typecode of Python's `array.array` holding the same elements
    /// (`'d'` for `f64`, `'I'` for `u32`, …), for a pickle codec; `None` for
    /// 128-bit integers and non-primitive types.
    ///
    /// ```
    /// use mproc_ipc::PodVec;
    /// assert_eq!(PodVec::<f64>::array_typecode(), Some('d'));
    /// assert_eq!(PodVec::<u32>::array_typecode(), Some('I'));
    /// assert_eq!(PodVec::<[f32; 3]>::array_typecode(), None);
    /// ```
    pub fn array_typecode() -> Option<char> {
        match kind_of::<T>() {
            0 => None,
            k => PRIMITIVES[k as usize - 1].1,
        }
    }

    /// The elements from their little-endian bytes (one copy into an aligned
    /// vector; on a big-endian host, primitives are byte-swapped).
    ///
    /// ```
    /// use mproc_ipc::{PayloadError, PodVec};
    /// let v = PodVec::<u16>::from_le_bytes(&[1, 0, 2, 0])?;
    /// assert_eq!(v, [1u16, 2]);
    /// assert!(matches!(PodVec::<u16>::from_le_bytes(&[1, 0, 2]), Err(PayloadError::Length { len: 3, elem_size: 2 })));
    /// # Ok::<(), PayloadError>(())
    /// ```
    pub fn from_le_bytes(bytes: &[u8]) -> Result<PodVec<T>, PayloadError> {
        const { assert!(size_of::<T>() > 0, "PodVec of a zero-sized type") };
        let size = size_of::<T>();
        if bytes.len() % size != 0 {
            return Err(PayloadError::Length { len: bytes.len(), elem_size: size });
        }
        let n = bytes.len() / size;
        let mut v: Vec<T> = Vec::with_capacity(n);
        // SAFETY: [1] `v` has room for `n` elements, `n * size == bytes.len()`
        // bytes, and a fresh allocation cannot overlap `bytes`; [2] `T: Pod`,
        // so every bit pattern is a valid `T`, and after the copy all `n`
        // elements are initialised.
        unsafe {
            copy::copy(v.as_mut_ptr().cast::<u8>(), bytes.as_ptr(), bytes.len());
            v.set_len(n);
        }
        if cfg!(target_endian = "big") {
            swap_elements::<T>(bytemuck::cast_slice_mut(&mut v))?;
        }
        Ok(PodVec(v))
    }
}

/// Reverses the bytes of each element of a primitive type (for a big-endian
/// host; a no-op for 1-byte elements).
fn swap_elements<T: Pod>(bytes: &mut [u8]) -> Result<(), PayloadError> {
    if kind_of::<T>() == 0 {
        return Err(PayloadError::BigEndian { type_name: std::any::type_name::<PodVec<T>>() });
    }
    bytes.chunks_exact_mut(size_of::<T>()).for_each(<[u8]>::reverse);
    Ok(())
}

impl<T: Pod + fmt::Debug> fmt::Debug for PodVec<T> {
    /// The elements as a list; long arrays are cut after 32 elements and their
    /// length given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        f.debug_list().entries(self.0.iter().take(SHOWN)).finish()?;
        if self.0.len() > SHOWN {
            write!(f, "… ({} elements)", self.0.len())?;
        }
        Ok(())
    }
}

impl<T: Pod> Deref for PodVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Pod> DerefMut for PodVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Pod> AsRef<[T]> for PodVec<T> {
    fn as_ref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Pod> AsMut<[T]> for PodVec<T> {
    fn as_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Pod> Borrow<[T]> for PodVec<T> {
    fn borrow(&self) -> &[T] {
        &self.0
    }
}

impl<T: Pod> From<Vec<T>> for PodVec<T> {
    fn from(v: Vec<T>) -> PodVec<T> {
        PodVec(v)
    }
}

impl<T: Pod> From<&[T]> for PodVec<T> {
    fn from(s: &[T]) -> PodVec<T> {
        PodVec(s.to_vec())
    }
}

impl<T: Pod, const N: usize> From<[T; N]> for PodVec<T> {
    fn from(a: [T; N]) -> PodVec<T> {
        PodVec(a.to_vec())
    }
}

impl<T: Pod> From<PodVec<T>> for Vec<T> {
    fn from(v: PodVec<T>) -> Vec<T> {
        v.0
    }
}

impl<T: Pod> FromIterator<T> for PodVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> PodVec<T> {
        PodVec(iter.into_iter().collect())
    }
}

impl<T: Pod> Extend<T> for PodVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl<T: Pod> IntoIterator for PodVec<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T: Pod> IntoIterator for &'a PodVec<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Pod + PartialEq> PartialEq<[T]> for PodVec<T> {
    fn eq(&self, other: &[T]) -> bool {
        self.0 == other
    }
}

impl<T: Pod + PartialEq, const N: usize> PartialEq<[T; N]> for PodVec<T> {
    fn eq(&self, other: &[T; N]) -> bool {
        self.0 == other
    }
}

impl<T: Pod + PartialEq> PartialEq<Vec<T>> for PodVec<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        &self.0 == other
    }
}
