//! Python's pickle for mproc: the codec a Rust process uses to exchange objects with
//! CPython (`Connection.send`/`recv`, the manager protocol).
//!
//! - [`dumps`]/[`loads`] map any serde type to and from a pickle; [`dumps_value`]/
//!   [`loads_value`] do the same for [`Value`], a dynamic "any Python value" with Python's
//!   equality (`1 == 1.0 == True` as a dict key).
//! - Reads protocols 0 to 5 (everything CPython 2.7 and 3.x write); writes protocol 5,
//!   which CPython reads from 3.8 on.
//! - **Safe by construction.** A pickle can name any importable callable (`os.system`) and
//!   ask the reader to call it. This reader imports and calls nothing: the few globals it
//!   accepts — the exception classes in [`ALLOWED_EXCEPTIONS`] and the builtin
//!   reconstructors in [`ALLOWED_RECONSTRUCTORS`], the manager references in
//!   [`ALLOWED_MANAGER_GLOBALS`] (read as data: [`Token`], [`Proxy`]) — are built by code
//!   here, and any other
//!   is [`PickleError::ForbiddenGlobal`] naming it. Persistent ids, the extension registry
//!   and out-of-band buffers are refused too.
//! - **Bounded.** [`loads_value_capped`] refuses an input longer than the cap before
//!   decoding a byte, and then bounds the memory the decoded value may take to 64 bytes
//!   per byte of the cap (at least 1 MiB); [`loads_value`] uses the same bound for the
//!   input's own length. Length fields are checked against the input before anything is
//!   allocated, and nesting is limited to [`MAX_DEPTH`].
//!
//! ```
//! use mproc_pickle::{dumps, loads, loads_value, Value};
//!
//! // CPython: pickle.dumps({'a': [1, 2.5, None]}, protocol=2)
//! let from_python = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00Nes.";
//! let v = loads_value(from_python).unwrap();
//! assert_eq!(v.to_string(), "{\"a\": [1, 2.5, None]}");
//!
//! let bytes = dumps(&(42u64, "answer")).unwrap();
//! let back: (u64, String) = loads(&bytes).unwrap();
//! assert_eq!(back, (42, "answer".to_owned()));
//!
//! // A pickle that would run `os.system('ls')` in CPython:
//! let evil = b"cos\nsystem\n(S'ls'\ntR.";
//! let err = loads_value(evil).unwrap_err();
//! assert_eq!(err.to_string(), "pickle names the global os.system, which is not on the allow-list");
//! ```

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod allow;
mod array;
mod decode;
mod encode;
mod error;
mod managed;
mod serde_value;
mod value;

pub use allow::{ALLOWED_EXCEPTIONS, ALLOWED_MANAGER_GLOBALS, ALLOWED_RECONSTRUCTORS};
pub use array::{ARRAY_FROM_PYTHON, ARRAY_KINDS, ARRAY_NEWTYPE};
pub use decode::{DecodeOptions, MAX_DEPTH};
pub use encode::PROTOCOL;
pub use error::{PickleError, Result};
pub use managed::PROXY_TYPES;
pub use serde_value::{from_value, to_value};
pub use value::{Dict, Proxy, Set, Token, Value};

pub use indexmap;
pub use num_bigint;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Pickles any serde value (protocol 5; see [`to_value`] for the type mapping).
pub fn dumps<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    dumps_value(&to_value(value)?)
}

/// Unpickles into any serde type (see [`from_value`] for the type mapping).
pub fn loads<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    from_value(loads_value(bytes)?)
}

/// Unpickles into any serde type, refusing inputs longer than `cap` before decoding.
pub fn loads_capped<T: DeserializeOwned>(bytes: &[u8], cap: usize) -> Result<T> {
    from_value(loads_value_capped(bytes, cap)?)
}

/// Pickles a [`Value`] (protocol 5).
pub fn dumps_value(value: &Value) -> Result<Vec<u8>> {
    value.to_pickle()
}

/// Unpickles a [`Value`], with the memory bound of [`DecodeOptions::for_len`].
pub fn loads_value(bytes: &[u8]) -> Result<Value> {
    decode::decode(bytes, DecodeOptions::for_len(bytes.len()))
}

/// Unpickles a [`Value`], refusing an input longer than `cap` bytes before decoding it
/// ([`PickleError::TooLarge`]), with the memory bound of [`DecodeOptions::capped`].
pub fn loads_value_capped(bytes: &[u8], cap: usize) -> Result<Value> {
    decode::decode(bytes, DecodeOptions::capped(cap))
}

/// Unpickles a [`Value`] with explicit limits.
pub fn loads_value_with(bytes: &[u8], options: DecodeOptions) -> Result<Value> {
    decode::decode(bytes, options)
}
