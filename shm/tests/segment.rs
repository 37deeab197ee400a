//! Segments, the arena, views and the `Share` trait.

use mproc_shm::{arena, Array, Exports, Segment, Share, ShmError, Value};

fn unique(tag: &str) -> String {
    format!("mproc-test-{tag}-{}", std::process::id())
}

#[test]
fn smoke_anonymous() {
    let seg = Segment::anonymous(8192).unwrap();
    assert_eq!(seg.len(), 8192);
    assert!(seg.fd().is_some() && seg.name().is_none());
    // SAFETY: in bounds, and nobody else uses the segment.
    unsafe {
        seg.as_ptr().add(8191).write(9);
        assert_eq!(seg.as_ptr().add(8191).read(), 9);
    }
    assert!(matches!(Segment::anonymous(0), Err(ShmError::ZeroSize { .. })));
    assert!(matches!(Segment::anonymous(usize::MAX), Err(ShmError::TooLarge { size: usize::MAX, .. })));
}

#[test]
fn named_create_open_unlink() {
    let name = unique("named");
    let a = Segment::create(&name, 4096).unwrap();
    assert!(matches!(Segment::create(&name, 4096), Err(ShmError::Exists { name: n }) if n == name));
    let b = Segment::open(&name).unwrap();
    assert_eq!(b.len(), 4096);
    // SAFETY: both map the same 4096 bytes; single-threaded test.
    unsafe {
        a.as_ptr().write(42);
        assert_eq!(b.as_ptr().read(), 42);
    }
    drop(b);
    drop(a); // owner unlinks
    assert!(matches!(Segment::open(&name), Err(ShmError::NotFound { name: n }) if n == name));
    assert!(matches!(Segment::unlink(&name), Err(ShmError::NotFound { .. })));
    assert!(matches!(Segment::create("a/b", 1), Err(ShmError::InvalidName { .. })));
}

#[test]
fn arena_reuses_freed_blocks_and_zeroes_them() {
    let a = arena::alloc(100, 8).unwrap();
    assert_eq!(a.len(), 128);
    let (seg, off) = (a.segment().clone(), a.offset());
    // SAFETY: the block is ours and 128 bytes long.
    unsafe { a.as_ptr().write_bytes(0xAB, 128) };
    drop(a);
    let b = arena::alloc(128, 64).unwrap();
    assert!(b.segment().same(&seg) && b.offset() == off, "the freed block is reused");
    // SAFETY: as above.
    assert!(unsafe { std::slice::from_raw_parts(b.as_ptr(), 128) }.iter().all(|&x| x == 0));
    // A thousand small objects share a handful of segments.
    let many: Vec<_> = (0..1000).map(|_| arena::alloc(64, 64).unwrap()).collect();
    let segs = many.iter().fold(Vec::<Segment>::new(), |mut v, b| {
        if !v.iter().any(|s| s.same(b.segment())) {
            v.push(b.segment().clone());
        }
        v
    });
    assert!(segs.len() <= 2, "1000 blocks used {} segments", segs.len());
    let big = arena::alloc(1 << 20, 8).unwrap();
    assert_eq!(big.offset(), 0);
}

#[test]
fn views_check_their_header() {
    let seg = Segment::anonymous(4096).unwrap();
    let v = Value::new_in(&seg, 64, 7_u64).unwrap();
    v.set(8);
    assert_eq!(Value::<u64>::attach(&seg, 64).unwrap().get(), 8);
    assert!(matches!(Value::<u32>::attach(&seg, 64), Err(ShmError::LayoutMismatch { .. })));
    assert!(matches!(Value::<i64>::attach(&seg, 64), Err(ShmError::LayoutMismatch { .. })));
    assert!(matches!(Value::<u64>::attach(&seg, 1024), Err(ShmError::LayoutMismatch { .. })));
    assert!(matches!(Value::new_in(&seg, 4090, 1_u64), Err(ShmError::OutOfBounds { offset: 4090, .. })));
    assert!(matches!(Value::new_in(&seg, 3, 1_u64), Err(ShmError::Misaligned { offset: 3, .. })));
    let a = Array::<f64>::new_in(&seg, 512, 10).unwrap();
    a.set(9, 1.5).unwrap();
    assert!(matches!(a.set(10, 0.0), Err(ShmError::IndexOutOfRange { index: 10, len: 10 })));
    let b = Array::<f64>::attach(&seg, 512).unwrap();
    assert_eq!(b.len(), 10);
    assert_eq!(b.get(9).unwrap(), 1.5);
    assert!(matches!(Value::<f64>::attach(&seg, 512), Err(ShmError::LayoutMismatch { .. })));
}

#[test]
fn tokens_round_trip_and_stale_tokens_are_refused() {
    let v = Value::new(5_i32).unwrap();
    let mut ex = Exports::new();
    let tok = v.export(&mut ex).unwrap();
    assert_eq!(ex.fds().len(), 1);
    // In-process import finds the fd open and the inode matching.
    let w = Value::<i32>::import(tok.clone()).unwrap();
    w.set(6);
    assert_eq!(v.get(), 6);
    let seg = Segment::anonymous(4096).unwrap();
    let mut ex2 = Exports::new();
    let mproc_shm::SegmentToken::Memfd { fd, len, .. } = seg.export(&mut ex2).unwrap() else { panic!("memfd") };
    let stale = mproc_shm::SegmentToken::Memfd { fd, ino: 1, len };
    assert!(matches!(Segment::import(stale), Err(ShmError::BadToken { .. })));
}
