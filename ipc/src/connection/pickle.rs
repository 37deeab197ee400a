//! `Connection`'s pickle calls: objects to and from a CPython `Connection`, whose `send`
//! and `recv` pickle (`mproc_pickle` is the codec; nothing a pickle names is called).

use std::os::fd::AsFd;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Connection, Transport};
use crate::error::{IpcError, Result};

impl Connection {
    /// Sends `v` pickled (protocol 5), as one message: what CPython's `Connection.recv()`
    /// reads. See [`mproc_pickle::to_value`] for how Rust types appear in Python; a
    /// [`Bytes`](crate::Bytes) is a `bytes`, and a [`PodVec`](crate::PodVec) of a primitive
    /// is a real `array.array` (`PodVec<f64>` → typecode `'d'`, see
    /// [`PodVec::array_typecode`](crate::PodVec::array_typecode)).
    ///
    /// ```
    /// use mproc_ipc::Connection;
    ///
    /// let (mut a, mut b) = Connection::pair()?;
    /// a.send_pickle(&(1u32, "two", vec![3.0]))?;
    /// let (one, two, three): (u32, String, Vec<f64>) = b.recv_pickle()?;
    /// assert_eq!((one, two.as_str(), three), (1, "two", vec![3.0]));
    /// # Ok::<(), mproc_ipc::IpcError>(())
    /// ```
    #[doc(alias = "Connection.send")]
    pub fn send_pickle<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let bytes = mproc_pickle::dumps(v).map_err(pickle_error::<T>)?;
        self.send_bytes(&bytes)
    }

    /// Sends a [`Value`](mproc_pickle::Value) pickled, as one message (every Python type
    /// kept: tuple, bytearray, set, exception …).
    pub fn send_pickle_value(&mut self, v: &mproc_pickle::Value) -> Result<()> {
        let bytes = mproc_pickle::dumps_value(v).map_err(pickle_error::<mproc_pickle::Value>)?;
        self.send_bytes(&bytes)
    }

    /// Receives one message — what CPython's `Connection.send(obj)` wrote — and unpickles
    /// it as a `T`. The frame cap ([`max_frame`](Connection::max_frame)) is checked before
    /// the message is read, and the decoded value may take at most 64 bytes of memory per
    /// byte of the cap; a global off `mproc_pickle`'s allow-list is an
    /// [`IpcError::Pickle`] naming it, and nothing a pickle names is ever called. An
    /// `array.array` reads into a [`PodVec`](crate::PodVec) of its element type; another
    /// typecode is [`IpcError::Payload`] with
    /// [`PayloadError::ArrayTypecode`](crate::PayloadError::ArrayTypecode) naming both.
    #[doc(alias = "Connection.recv")]
    pub fn recv_pickle<T: DeserializeOwned>(&mut self) -> Result<T> {
        let value = self.recv_pickle_value_as::<T>()?;
        crate::payload::clear_decode_error();
        mproc_pickle::from_value(value).map_err(|source| match crate::payload::take_decode_error() {
            // A `PodVec` of the wrong element type says so in its own terms.
            Some(e) => IpcError::Payload(e),
            None => pickle_error::<T>(source),
        })
    }

    /// Receives one message and unpickles it as a [`Value`](mproc_pickle::Value): any
    /// Python value, every type kept.
    pub fn recv_pickle_value(&mut self) -> Result<mproc_pickle::Value> {
        self.recv_pickle_value_as::<mproc_pickle::Value>()
    }

    /// Receives one message and unpickles it, decoding in place from the read buffer;
    /// `T` only names the type in errors.
    fn recv_pickle_value_as<T: ?Sized>(&mut self) -> Result<mproc_pickle::Value> {
        let max = self.max_frame;
        let decode = |bytes: &[u8]| mproc_pickle::loads_value_capped(bytes, max).map_err(pickle_error::<T>);
        let fd = self.fd.as_ref().ok_or(IpcError::Closed)?.as_fd();
        if let Transport::Ring(r) = &mut self.transport {
            return r.with_message(fd, max, |msg| decode(msg.as_slice())).and_then(|r| r);
        }
        let (reader, mut src) = self.source()?;
        reader.with_frame(&mut src, max, decode).and_then(|r| r)
    }
}

fn pickle_error<T: ?Sized>(source: mproc_pickle::PickleError) -> IpcError {
    IpcError::Pickle { type_name: std::any::type_name::<T>(), source }
}
