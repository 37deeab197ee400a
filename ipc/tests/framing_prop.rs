//! Property tests of the frame decoder: random byte streams never panic and
//! never make it allocate past the frame cap; well-formed streams, delivered
//! in random chunk sizes, decode to exactly the messages that were encoded.
//!
//! A counting global allocator records the largest single allocation made
//! while decoding. This file holds one test so no other test thread allocates
//! meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mproc_ipc::framing::{encode_header, FrameReader, MAX_HEADER, READ_BUFFER};
use mproc_ipc::IpcError;
use proptest::prelude::*;

struct Counting;

/// Records an allocation made while armed; the read buffer (exactly
/// `READ_BUFFER` bytes, allocated once) is left out so that the payload bound
/// can be checked tightly.
fn record(size: usize) {
    if ARMED.load(Ordering::Relaxed) && size != READ_BUFFER {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}

static LARGEST: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

// SAFETY: delegates every call to the system allocator unchanged; it only
// records sizes.
unsafe impl GlobalAlloc for Counting {
    /// # Safety
    /// `GlobalAlloc::alloc`'s contract, passed on to `System` unchanged.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    /// # Safety
    /// `GlobalAlloc::alloc_zeroed`'s contract, passed on to `System` unchanged.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    /// # Safety
    /// `GlobalAlloc::dealloc`'s contract, passed on to `System` unchanged.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    /// # Safety
    /// `GlobalAlloc::realloc`'s contract, passed on to `System` unchanged.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Hands out a byte stream in chunks of the given sizes (cycled), like a
/// socket returning whatever has arrived.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    next: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.next % self.sizes.len()].max(1);
        self.next += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A stream that is mostly random but often holds headers that announce
/// small, huge or negative lengths, in both header forms.
fn hostile_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        any::<i32>().prop_map(|n| n.to_be_bytes().to_vec()),
        (0i32..2048).prop_map(|n| n.to_be_bytes().to_vec()),
        (0u64..2048).prop_map(|n| {
            let mut v = (-1i32).to_be_bytes().to_vec();
            v.extend(n.to_be_bytes());
            v
        }),
        any::<u64>().prop_map(|n| {
            let mut v = (-1i32).to_be_bytes().to_vec();
            v.extend(n.to_be_bytes());
            v
        }),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

fn encode(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(m.len() as u64, &mut h);
        out.extend_from_slice(&h[..n]);
        out.extend_from_slice(m);
    }
    out
}

/// Room for the error messages that name a rejected frame.
const SMALL: usize = 256;

fn check_random_stream(stream: &[u8], sizes: Vec<usize>, cap: usize) -> Result<(), TestCaseError> {
    let mut src = Chunked { data: stream, sizes, next: 0 };
    let mut r = FrameReader::new();
    LARGEST.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for _ in 0..64 {
        match r.read_vec(&mut src, cap) {
            Ok(m) => outcomes.push(m.len() <= cap),
            Err(e) => {
                let end = matches!(
                    e,
                    IpcError::Eof
                        | IpcError::TruncatedMessage { .. }
                        | IpcError::MessageTooLarge { .. }
                        | IpcError::BadHeader { .. }
                        | IpcError::Unreadable { .. }
                );
                outcomes.push(end);
                if matches!(e, IpcError::Eof | IpcError::Unreadable { .. }) {
                    break;
                }
            }
        }
    }
    ARMED.store(false, Ordering::Relaxed);
    let largest = LARGEST.load(Ordering::Relaxed);
    prop_assert!(outcomes.iter().all(|&ok| ok), "an unexpected outcome");
    // Payloads of at most `cap`, and short error strings.
    prop_assert!(largest <= cap.max(SMALL), "allocated {largest} bytes with cap {cap}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if std::env::var_os("CI").is_some() { 512 } else { 256 }))]

    #[test]
    fn decoder_properties(
        stream in hostile_stream(),
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
        sizes in prop::collection::vec(1usize..100, 1..8),
        cap in prop_oneof![Just(0usize), 1usize..512, Just(1 << 20)],
    ) {
        // 1. Random bytes: no panic, only the protocol errors, bounded allocation.
        check_random_stream(&stream, sizes.clone(), cap)?;

        // 2. Well-formed frames in random chunks: exactly the same messages, then Eof.
        let wire = encode(&msgs);
        let mut src = Chunked { data: &wire, sizes, next: 0 };
        let mut r = FrameReader::new();
        for m in &msgs {
            prop_assert_eq!(&r.read_vec(&mut src, 1 << 20).unwrap(), m);
        }
        prop_assert!(r.read_vec(&mut src, 1 << 20).unwrap_err().is_eof());

        // 3. The same stream cut short: every complete message, then a
        //    truncation error (not Eof) unless the cut fell on a boundary.
        if !wire.is_empty() {
            let cut = wire.len() / 2;
            let mut src = &wire[..cut];
            let mut r = FrameReader::new();
            let mut boundaries = vec![0usize];
            for m in &msgs {
                let h = if m.len() as u64 > 0x7fff_ffff { 12 } else { 4 };
                boundaries.push(boundaries.last().unwrap() + h + m.len());
            }
            let whole = boundaries.iter().filter(|&&b| b > 0 && b <= cut).count();
            for m in &msgs[..whole] {
                prop_assert_eq!(&r.read_vec(&mut src, 1 << 20).unwrap(), m);
            }
            let last = r.read_vec(&mut src, 1 << 20).unwrap_err();
            if boundaries.contains(&cut) {
                prop_assert!(last.is_eof(), "{:?}", last);
            } else {
                prop_assert!(matches!(last, IpcError::TruncatedMessage { .. }), "{:?}", last);
            }
        }
    }
}
