//! Twin of seed 003 "进程间通信" (`write` / `read` with a
//! [`Queue`](mproc::Queue)): the parent makes the queue and hands it to two
//! children; one puts 'A', 'B', 'C' with random pauses, the other takes
//! forever, and the parent terminates the reader once the writer is done.
//!
//! The pauses are below 50 ms (the tutorial: below 1 s). The tutorial
//! terminates the reader as soon as the writer ends, which may cut off the last
//! `Get`; this twin waits until the reader has reported all three (it counts
//! them in shared memory) before terminating it.
//! Run: `cargo run -p mproc --example queue_abc`.

use std::time::{Duration, Instant, SystemTime};

use mproc::prelude::*;

fn random_pause() -> Duration {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    Duration::from_micros(u64::from(nanos.wrapping_mul(2_654_435_761) % 50_000))
}

fn write(q: &Queue<char>) {
    println!("Process to write: {}", std::process::id());
    for value in ['A', 'B', 'C'] {
        println!("Put {value} to queue...");
        q.put(value).expect("put");
        std::thread::sleep(random_pause());
    }
}

fn read(q: &Queue<char>, got: &RawValue<u32>) {
    println!("Process to read: {}", std::process::id());
    loop {
        let value = q.get().expect("get");
        println!("Get {value} from queue.");
        got.set(got.get() + 1); // only this process writes it
    }
}

fn main() -> mproc::Result<()> {
    // The parent makes the queue and hands it to each child.
    let q = Queue::<char>::new()?;
    let got = RawValue::new(0_u32)?;
    let mut pw = Process::new({
        let q = q.clone();
        move || write(&q)
    });
    let mut pr = Process::new({
        let (q, got) = (q.clone(), got.clone());
        move || read(&q, &got)
    });
    pw.start()?; // the writer
    pr.start()?; // the reader
    pw.join()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.get() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The reader loops forever: it cannot be joined, only terminated.
    pr.terminate()?;
    pr.join()?;
    Ok(())
}
