//! A tokio program that fans CPU work out to other processes and awaits it
//! (cargo feature `tokio`): a `Pool`'s results are futures and its `imap` a
//! stream; worker processes of our own put their results into a `Queue` that
//! the program awaits (`get_async`); their ends are awaited with `join_async`. No `spawn_blocking` anywhere: the runtime's one thread
//! stays free (a ticker task keeps ticking while the work runs).
//! Run: `cargo run -p mproc --features tokio --example async_pool`.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use mproc::pool::Stream;
use mproc::prelude::*;

/// CPU work: the number of primes below `n`.
fn primes_below(n: u64) -> u64 {
    (2..n).filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0)).count() as u64
}

async fn run() -> mproc::Result<()> {
    let ticker = tokio::spawn(async {
        let mut ticks = 0u32;
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            ticks += 1;
            if ticks == 1 {
                println!("the runtime is free while the work runs");
            }
        }
    });

    // A pool: one awaited result, a whole map awaited, an imap stream.
    let pool = Pool::new(3)?;
    let one = pool.apply_async(primes_below, 20_000)?;
    let many = pool.map_async(primes_below, [10, 100, 1_000, 10_000])?;
    println!("apply_async: {}", one.await?);
    println!("map_async: {:?}", many.await?);
    let mut stream = pool.imap(primes_below, [50u64, 500, 5_000])?;
    while let Some(r) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        println!("imap: {}", r?);
    }
    drop(stream);
    pool.close();
    pool.join()?;

    // Processes of our own putting their results into a Queue that this task
    // awaits (get_async), then awaited to their end (join_async).
    let results = Queue::<(usize, u64)>::new()?;
    let mut workers = Vec::new();
    for (i, n) in [30_000u64, 40_000].into_iter().enumerate() {
        let q = results.clone();
        let mut p = Process::new(move || {
            q.put((i, primes_below(n))).expect("put");
            0
        });
        p.start()?;
        workers.push(p);
    }
    let mut got = Vec::new();
    for _ in 0..workers.len() {
        got.push(results.get_async().await?);
    }
    got.sort_unstable();
    for (i, primes) in got {
        println!("worker {i}: {primes}");
    }
    for p in &mut workers {
        p.join_async().await?;
    }
    println!("workers joined");
    ticker.abort();
    Ok(())
}

fn main() -> mproc::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    rt.block_on(run())
}
