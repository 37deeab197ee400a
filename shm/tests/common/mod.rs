//! Helpers shared by the ring tests: self-checking messages (forking and
//! reaping children is `mproc-testkit`'s).
#![allow(dead_code)]

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

fn mix(x: u64) -> u64 {
    let x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Smallest message `make_msg` makes.
pub const MSG_MIN: usize = 16;

/// The length of message `seq` of `producer`, in `MSG_MIN..=max`.
pub fn msg_len(producer: u32, seq: u64, max: usize) -> usize {
    MSG_MIN + (mix(seq ^ ((producer as u64) << 40)) as usize) % (max - MSG_MIN + 1)
}

/// A self-checking message: `[producer u32][seq u64][filler][fnv1a u32]`.
pub fn make_msg(producer: u32, seq: u64, len: usize) -> Vec<u8> {
    assert!(len >= MSG_MIN);
    let mut m = Vec::with_capacity(len);
    fill_msg(producer, seq, len, &mut m);
    m
}

/// As `make_msg`, into `m`.
pub fn fill_msg(producer: u32, seq: u64, len: usize, m: &mut Vec<u8>) {
    m.clear();
    m.extend_from_slice(&producer.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    let seed = mix(seq.wrapping_add(producer as u64));
    m.extend((0..len - MSG_MIN).map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8));
    let sum = fnv1a(m);
    m.extend_from_slice(&sum.to_le_bytes());
}

/// Checks a message: `Some((producer, seq))` if intact.
pub fn check_msg(m: &[u8]) -> Option<(u32, u64)> {
    if m.len() < MSG_MIN {
        return None;
    }
    let (body, sum) = m.split_at(m.len() - 4);
    if fnv1a(body) != u32::from_le_bytes(sum.try_into().unwrap()) {
        return None;
    }
    let producer = u32::from_le_bytes(body[..4].try_into().unwrap());
    let seq = u64::from_le_bytes(body[4..12].try_into().unwrap());
    (make_msg(producer, seq, m.len()) == m).then_some((producer, seq))
}
