//! `PodVec`'s serde form: the `(element size, kind, little-endian bytes)` triple, under a
//! newtype name the pickle codec turns into an `array.array`, and its checked reading.

use std::fmt;
use std::marker::PhantomData;

use bytemuck::Pod;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{fail, kind_name, kind_of, swap_elements, PayloadError, PodVec, PRIMITIVES};

impl<T: Pod> Serialize for PodVec<T> {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const { assert!(size_of::<T>() > 0, "PodVec of a zero-sized type") };
        // A newtype struct is transparent to postcard (the wire is the triple); the
        // pickle codec recognises the name and writes an `array.array`.
        s.serialize_newtype_struct(mproc_pickle::ARRAY_NEWTYPE, &PodTriple(self))
    }
}

/// The `(element size, kind, little-endian bytes)` triple a [`PodVec`] encodes as.
struct PodTriple<'a, T: Pod>(&'a PodVec<T>);

impl<T: Pod> Serialize for PodTriple<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&(size_of::<T>() as u32))?;
        t.serialize_element(&kind_of::<T>())?;
        if cfg!(target_endian = "big") {
            let mut le = self.0.as_bytes().to_vec();
            swap_elements::<T>(&mut le).map_err(serde::ser::Error::custom)?;
            t.serialize_element(serde_bytes::Bytes::new(&le))?;
        } else {
            t.serialize_element(serde_bytes::Bytes::new(self.0.as_bytes()))?;
        }
        t.end()
    }
}

impl<'de, T: Pod> Deserialize<'de> for PodVec<T> {
    #[inline]
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PodVec<T>, D::Error> {
        d.deserialize_tuple(3, PodVecVisitor::<T>(PhantomData))
    }
}

struct PodVecVisitor<T>(PhantomData<fn() -> T>);

impl<'de, T: Pod> Visitor<'de> for PodVecVisitor<T> {
    type Value = PodVec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} (element size, kind, bytes)", std::any::type_name::<PodVec<T>>())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PodVec<T>, A::Error> {
        let size: u32 = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let kind: u8 = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let type_name = std::any::type_name::<PodVec<T>>();
        if kind & mproc_pickle::ARRAY_FROM_PYTHON != 0 {
            let kind = kind & !mproc_pickle::ARRAY_FROM_PYTHON;
            let mismatch = size as usize != size_of::<T>() || (kind_of::<T>() != 0 && kind != kind_of::<T>());
            if let (true, Some(expected)) = (mismatch, PodVec::<T>::array_typecode()) {
                let got = kind.checked_sub(1).and_then(|k| PRIMITIVES.get(k as usize)).and_then(|p| p.1).unwrap_or('?');
                return Err(fail(PayloadError::ArrayTypecode { type_name, expected, got }));
            }
            return self.check_and_read(size, kind, seq);
        }
        self.check_and_read(size, kind, seq)
    }
}

impl<T: Pod> PodVecVisitor<T> {
    /// Checks the sender's element size and kind against `T`, then reads the bytes.
    fn check_and_read<'de, A: SeqAccess<'de>>(self, size: u32, kind: u8, mut seq: A) -> Result<PodVec<T>, A::Error> {
        let type_name = std::any::type_name::<PodVec<T>>();
        if size as usize != size_of::<T>() {
            return Err(fail(PayloadError::ElementSize { type_name, expected: size_of::<T>(), got: size.into() }));
        }
        let ours = kind_of::<T>();
        if kind != 0 && ours != 0 && kind != ours {
            return Err(fail(PayloadError::ElementKind { type_name, expected: kind_name(ours), got: kind_name(kind) }));
        }
        seq.next_element_seed(PodBytes::<T>(PhantomData))?.ok_or_else(|| de::Error::invalid_length(2, &self))
    }
}

/// The element bytes of a [`PodVec`], copied once into an aligned `Vec<T>`.
struct PodBytes<T>(PhantomData<fn() -> T>);

impl<'de, T: Pod> DeserializeSeed<'de> for PodBytes<T> {
    type Value = PodVec<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PodVec<T>, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de, T: Pod> Visitor<'de> for PodBytes<T> {
    type Value = PodVec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the element bytes of a {}", std::any::type_name::<PodVec<T>>())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PodVec<T>, E> {
        PodVec::from_le_bytes(v).map_err(fail)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PodVec<T>, A::Error> {
        // Formats without a byte-string type (e.g. JSON) write a sequence.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        PodVec::from_le_bytes(&bytes).map_err(fail)
    }
}
