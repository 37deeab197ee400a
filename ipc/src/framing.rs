//! CPython's `multiprocessing.connection` framing, and a buffered frame reader.
//!
//! A frame is a 4-byte big-endian *signed* length followed by that many bytes.
//! Lengths above `0x7fff_ffff` are written as `-1` followed by an 8-byte
//! big-endian unsigned length (CPython ≥ 3.8; the form is byte-identical in
//! 3.12). Any other negative length is a protocol error.
//!
//! As CPython's `multiprocessing.connection` does it: `Connection._send_bytes`
//! and `Connection._recv_bytes`.
//!
//! [`FrameReader`] keeps a userspace read buffer: one `read(2)` pulls in as many
//! small frames as the kernel has queued, so a burst of small messages costs one
//! system call, not two per message. The announced length is checked against
//! the cap *before* anything is allocated for the payload.

use std::io::{self, Read};

use crate::error::{IpcError, Result};

/// The largest length that fits in the short (4-byte) header.
pub const SHORT_MAX: u64 = 0x7fff_ffff;

/// The longest header: `-1` then an 8-byte length.
pub const MAX_HEADER: usize = 12;

/// Size of the userspace read buffer of a connection.
pub const READ_BUFFER: usize = 64 * 1024;

/// Payload remainders at least this large are read straight into their
/// destination instead of through the read buffer.
const DIRECT_READ: usize = READ_BUFFER / 2;

/// Writes the header for a payload of `len` bytes into `out`; returns how many
/// bytes of `out` it used (4 or 12).
#[inline]
pub fn encode_header(len: u64, out: &mut [u8; MAX_HEADER]) -> usize {
    if len <= SHORT_MAX {
        out[..4].copy_from_slice(&(len as i32).to_be_bytes());
        4
    } else {
        out[..4].copy_from_slice(&(-1i32).to_be_bytes());
        out[4..12].copy_from_slice(&len.to_be_bytes());
        12
    }
}

/// Parses a header at the start of `buf`: `Ok(Some((payload_len, header_len)))`,
/// `Ok(None)` when `buf` holds only part of a header, or [`IpcError::BadHeader`].
#[inline]
pub fn decode_header(buf: &[u8]) -> Result<Option<(u64, usize)>> {
    let Some(short) = buf.get(..4) else { return Ok(None) };
    let n = i32::from_be_bytes([short[0], short[1], short[2], short[3]]);
    match n {
        0.. => Ok(Some((n as u64, 4))),
        -1 => match buf.get(4..12) {
            Some(long) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(long);
                Ok(Some((u64::from_be_bytes(b), 12)))
            }
            None => Ok(None),
        },
        _ => Err(IpcError::BadHeader { len: n }),
    }
}

/// The read half of a framed byte stream: a read buffer plus the stream state.
///
/// Generic over the byte source so that the decoder can be tested on plain
/// byte slices; a [`Connection`](crate::Connection) feeds it from its socket.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// `buf[start..end]` is data read from the source and not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The source returned end of file.
    eof: bool,
    /// Set when a rejected frame left the stream position unknown.
    unreadable: Option<String>,
}

impl FrameReader {
    /// An empty reader; its buffer is allocated on first use.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Bytes read from the source and not yet consumed.
    #[inline]
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// True once the source reported end of file (there may still be buffered
    /// frames to read).
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads one whole frame of at most `max` bytes into a new vector.
    pub fn read_vec<R: Read>(&mut self, src: &mut R, max: usize) -> Result<Vec<u8>> {
        let len = self.read_header(src, max)?;
        // The cap was checked by read_header: this allocation is bounded by `max`.
        let mut out = vec![0u8; len];
        self.read_payload(src, &mut out, len)?;
        Ok(out)
    }

    /// Reads one frame of at most `max` bytes and hands its payload to `f`,
    /// borrowing it from the read buffer when the whole frame is already there.
    pub fn with_frame<R: Read, T>(&mut self, src: &mut R, max: usize, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let len = self.read_header(src, max)?;
        if len <= self.buffered() {
            let start = self.start;
            self.consume(len);
            return Ok(f(&self.buf[start..start + len]));
        }
        let mut out = vec![0u8; len];
        self.read_payload(src, &mut out, len)?;
        Ok(f(&out))
    }

    /// Reads one frame of at most `max` bytes into `dst`; returns its length.
    /// A frame longer than `dst` is read whole and returned in
    /// [`IpcError::BufferTooShort`].
    pub fn read_into<R: Read>(&mut self, src: &mut R, dst: &mut [u8], max: usize) -> Result<usize> {
        let len = self.read_header(src, max)?;
        if len > dst.len() {
            let mut message = vec![0u8; len];
            self.read_payload(src, &mut message, len)?;
            return Err(IpcError::BufferTooShort { capacity: dst.len(), message });
        }
        self.read_payload(src, &mut dst[..len], len)?;
        Ok(len)
    }

    /// For readers that must not block (the async adapters): reads what `src`
    /// holds now (it returns [`io::ErrorKind::WouldBlock`] when empty) and says
    /// whether the next frame read of at most `max` bytes will return without
    /// reading: a whole frame is buffered, or end of file, a bad header or a
    /// too-long frame is there to report. A frame longer than the buffer grows
    /// it to the frame's size (bounded by `max`); [`shrink`](Self::shrink) gives
    /// the memory back.
    pub fn fill_nonblocking<R: Read>(&mut self, src: &mut R, max: usize) -> Result<bool> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; READ_BUFFER];
        }
        loop {
            if self.eof || self.unreadable.is_some() {
                return Ok(true);
            }
            let have = self.buffered();
            let need = match decode_header(&self.buf[self.start..self.end]) {
                Ok(Some((len, _))) if len > max as u64 => return Ok(true),
                Ok(Some((len, header))) => header + len as usize,
                Ok(None) if have < 4 => 4,
                Ok(None) => MAX_HEADER,
                Err(_) => return Ok(true),
            };
            if have >= need {
                return Ok(true);
            }
            if self.start + need > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if need > self.buf.len() {
                    self.buf.resize(need, 0);
                }
            }
            match src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(IpcError::os("read", "connection", e)),
            }
        }
    }

    /// Gives back a buffer that [`fill_nonblocking`](Self::fill_nonblocking)
    /// grew past the usual size, once what it holds fits the usual size.
    pub fn shrink(&mut self) {
        if self.buf.len() > READ_BUFFER && self.buffered() <= READ_BUFFER {
            let mut buf = vec![0u8; READ_BUFFER];
            buf[..self.buffered()].copy_from_slice(&self.buf[self.start..self.end]);
            self.end = self.buffered();
            self.start = 0;
            self.buf = buf;
        }
    }

    /// Consumes a header and returns the payload length, which is at most `max`.
    fn read_header<R: Read>(&mut self, src: &mut R, max: usize) -> Result<usize> {
        if let Some(reason) = &self.unreadable {
            return Err(IpcError::Unreadable { reason: reason.clone() });
        }
        let (len, header) = loop {
            match decode_header(&self.buf[self.start..self.end]) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {
                    let have = self.buffered();
                    // A short header is 4 bytes; once 4 are in, only the -1 form is incomplete.
                    let need = if have < 4 { 4 } else { MAX_HEADER };
                    if !self.fill(src, need)? {
                        return Err(if self.buffered() == 0 {
                            IpcError::Eof
                        } else {
                            IpcError::TruncatedMessage { expected: need as u64, got: self.buffered() as u64 }
                        });
                    }
                }
                Err(e) => {
                    self.unreadable = Some(e.to_string());
                    return Err(e);
                }
            }
        };
        if len > max as u64 {
            let e = IpcError::MessageTooLarge { len, max };
            self.unreadable = Some(e.to_string());
            return Err(e);
        }
        self.consume(header);
        Ok(len as usize)
    }

    /// Fills `dst` (exactly `len` bytes long) with the payload that follows a
    /// consumed header.
    fn read_payload<R: Read>(&mut self, src: &mut R, dst: &mut [u8], len: usize) -> Result<()> {
        debug_assert_eq!(dst.len(), len);
        let from_buf = self.buffered().min(len);
        dst[..from_buf].copy_from_slice(&self.buf[self.start..self.start + from_buf]);
        self.consume(from_buf);
        let mut done = from_buf;
        let truncated = |done: usize| IpcError::TruncatedMessage {
            expected: (len + if len as u64 > SHORT_MAX { 12 } else { 4 }) as u64,
            got: (done + if len as u64 > SHORT_MAX { 12 } else { 4 }) as u64,
        };
        if len - done >= DIRECT_READ {
            while done < len {
                match read_retrying(src, &mut dst[done..]) {
                    Ok(0) => {
                        self.eof = true;
                        return Err(truncated(done));
                    }
                    Ok(n) => done += n,
                    Err(e) => return Err(IpcError::os("read", "connection", e)),
                }
            }
        } else if done < len {
            let rest = len - done;
            if !self.fill(src, rest)? {
                let got = done + self.buffered();
                return Err(truncated(got));
            }
            dst[done..].copy_from_slice(&self.buf[self.start..self.start + rest]);
            self.consume(rest);
        }
        Ok(())
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.buffered());
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads from `src` until at least `need` bytes (≤ [`READ_BUFFER`]) are
    /// buffered; false if end of file came first.
    fn fill<R: Read>(&mut self, src: &mut R, need: usize) -> Result<bool> {
        debug_assert!(need <= READ_BUFFER);
        if self.buf.is_empty() {
            self.buf = vec![0u8; READ_BUFFER];
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.buffered() < need {
            if self.eof {
                return Ok(false);
            }
            match read_retrying(src, &mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) => return Err(IpcError::os("read", "connection", e)),
            }
        }
        Ok(true)
    }
}

fn read_retrying<R: Read>(src: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(payload.len() as u64, &mut h);
        let mut v = h[..n].to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn header_forms_match_cpython() {
        let mut h = [0u8; MAX_HEADER];
        assert_eq!(encode_header(5, &mut h), 4);
        assert_eq!(&h[..4], &[0, 0, 0, 5]);
        assert_eq!(encode_header(SHORT_MAX, &mut h), 4);
        assert_eq!(&h[..4], &[0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(encode_header(SHORT_MAX + 1, &mut h), 12);
        assert_eq!(h, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0]);
        assert_eq!(decode_header(&h).unwrap(), Some((SHORT_MAX + 1, 12)));
        assert_eq!(decode_header(&h[..11]).unwrap(), None);
        assert!(matches!(decode_header(&[0xff, 0xff, 0xff, 0xfe]), Err(IpcError::BadHeader { len: -2 })));
    }

    #[test]
    fn many_frames_one_stream_keep_boundaries() {
        let mut stream = Vec::new();
        for i in 0..1000u32 {
            stream.extend(frame(&vec![i as u8; (i % 7) as usize]));
        }
        let mut src = &stream[..];
        let mut r = FrameReader::new();
        for i in 0..1000u32 {
            assert_eq!(r.read_vec(&mut src, 100).unwrap(), vec![i as u8; (i % 7) as usize]);
        }
        assert!(r.read_vec(&mut src, 100).unwrap_err().is_eof());
        assert!(r.read_vec(&mut src, 100).unwrap_err().is_eof());
    }

    #[test]
    fn long_form_header_is_checked_against_the_cap_before_allocating() {
        // -1 then 2^40: must be refused with no attempt to allocate a terabyte.
        let mut stream = vec![0xff; 4];
        stream.extend((1u64 << 40).to_be_bytes());
        let mut src = &stream[..];
        let mut r = FrameReader::new();
        match r.read_vec(&mut src, 1 << 20) {
            Err(IpcError::MessageTooLarge { len, max }) => {
                assert_eq!(len, 1 << 40);
                assert_eq!(max, 1 << 20);
            }
            other => panic!("expected MessageTooLarge, got {other:?}"),
        }
        assert!(matches!(r.read_vec(&mut src, 1 << 20), Err(IpcError::Unreadable { .. })));
    }

    #[test]
    fn long_form_header_within_the_cap_is_read() {
        // The -1 form is legal for any length; CPython only writes it above
        // 0x7fffffff, but a reader must accept it for small ones too.
        let mut stream = vec![0xff; 4];
        stream.extend(3u64.to_be_bytes());
        stream.extend(b"abc");
        let mut r = FrameReader::new();
        assert_eq!(r.read_vec(&mut &stream[..], 10).unwrap(), b"abc");
    }

    #[test]
    fn eof_mid_header_and_mid_payload_are_truncation_not_eof() {
        let mut r = FrameReader::new();
        assert!(matches!(r.read_vec(&mut &[0u8, 0][..], 10), Err(IpcError::TruncatedMessage { expected: 4, got: 2 })));
        let mut r = FrameReader::new();
        assert!(matches!(
            r.read_vec(&mut &[0u8, 0, 0, 5, 1, 2][..], 10),
            Err(IpcError::TruncatedMessage { expected: 9, got: 6 })
        ));
        let mut big = frame(&vec![7u8; DIRECT_READ * 3]);
        big.truncate(DIRECT_READ * 2);
        let mut r = FrameReader::new();
        match r.read_vec(&mut &big[..], usize::MAX) {
            Err(IpcError::TruncatedMessage { expected, got }) => {
                assert_eq!(expected, (DIRECT_READ * 3 + 4) as u64);
                assert_eq!(got, (DIRECT_READ * 2) as u64);
            }
            other => panic!("expected TruncatedMessage, got {other:?}"),
        }
    }

    #[test]
    fn read_into_short_buffer_returns_the_message_and_keeps_the_stream() {
        let mut stream = frame(b"hello world");
        stream.extend(frame(b"ok"));
        let mut src = &stream[..];
        let mut r = FrameReader::new();
        let mut small = [0u8; 4];
        match r.read_into(&mut src, &mut small, 100) {
            Err(IpcError::BufferTooShort { capacity: 4, message }) => assert_eq!(message, b"hello world"),
            other => panic!("expected BufferTooShort, got {other:?}"),
        }
        assert_eq!(r.read_into(&mut src, &mut small, 100).unwrap(), 2);
        assert_eq!(&small[..2], b"ok");
    }
}
