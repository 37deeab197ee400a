//! The async tests' runtimes and watchdog (the `tokio` features' tests of
//! sync, ipc and the manager). Not part of the testkit library, which must
//! not depend on tokio (the default build must not compile it): each async
//! test file includes it with `#[path = "../../testkit/src/runtime.rs"] mod
//! runtime;` and uses its own crate's optional tokio.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// The longest any await of an async test may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A current-thread runtime with I/O and time.
pub fn current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A multi-thread runtime of two workers with I/O and time.
pub fn multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Awaits `f` for at most [`LIMIT`]; past it the test fails.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.expect("an await took longer than the watchdog")
}

/// Spawns `tasks` consumer tasks on the current runtime, each taking items
/// with `get` until it takes a 0 (one end mark per task); returns the sum
/// and the number of the items other than the end marks, over all tasks.
pub async fn consume_until_zero<F, Fut, E>(tasks: u64, get: F) -> (u64, u64)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<u64, E>> + Send,
    E: std::fmt::Debug,
{
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let get = get.clone();
            tokio::spawn(async move {
                let (mut sum, mut n) = (0u64, 0u64);
                loop {
                    match within(get()).await.unwrap() {
                        0 => return (sum, n),
                        v => {
                            sum += v;
                            n += 1;
                        }
                    }
                }
            })
        })
        .collect();
    let (mut sum, mut n) = (0, 0);
    for h in handles {
        let (s, c) = within(h).await.unwrap();
        sum += s;
        n += c;
    }
    (sum, n)
}
