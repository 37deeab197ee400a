//! loom model of `RawBarrier`: every party gets through each pass, and exactly
//! one gets index 0 per pass.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use mproc_sync::RawBarrier;

#[test]
fn two_parties_pass_with_one_zero() {
    loom::model(|| {
        let passes = if std::env::var_os("MPROC_LOOM_QUICK").is_some() { 1 } else { 2 };
        let shared = Arc::new((RawBarrier::new(2, None).unwrap(), AtomicUsize::new(0)));
        let s = shared.clone();
        let other = thread::spawn(move || {
            for _ in 0..passes {
                if s.0.wait(None, None).unwrap() == 0 {
                    s.1.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        for _ in 0..passes {
            if shared.0.wait(None, None).unwrap() == 0 {
                shared.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        other.join().unwrap();
        assert_eq!(shared.1.load(Ordering::SeqCst), passes);
        assert!(!shared.0.broken());
    });
}
