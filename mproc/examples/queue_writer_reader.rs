//! Twin of seed 000 §2.2.4 "使用进程安全的Queue实现进程之间的数据传递" — a
//! writer process puts 0, 1, 2 on a [`Queue`](mproc::Queue) without blocking
//! (`put(i, block=False)` is `try_put`), a reader process takes them — and of
//! seed 004 "Queue" (one item, put and taken without blocking).
//!
//! The tutorial's reader naps 0.1 s and then takes without waiting
//! (`get(block=False)`), stopping when the queue looks empty: if the writer is
//! slow it stops early or raises `queue.Empty`. The twin's reader waits for
//! each item (`get_timeout`), so it always gets all three; its nap is 10 ms.
//! Run: `cargo run -p mproc --example queue_writer_reader`.

use std::time::Duration;

use mproc::prelude::*;

const PATIENCE: Duration = Duration::from_secs(10);

fn writer_proc(q: &Queue<i32>) {
    for i in 0..3 {
        println!("Send {i}");
        q.try_put(i).expect("the queue has room");
    }
}

fn reader_proc(q: &Queue<i32>) {
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(10));
        let msg = q.get_timeout(PATIENCE).expect("an item within 10 s");
        println!("Receiver msg: {msg}");
    }
}

fn main() -> mproc::Result<()> {
    // Seed 000.
    let q = Queue::<i32>::new()?;
    let mut p1 = Process::new({
        let q = q.clone();
        move || writer_proc(&q)
    });
    let mut p2 = Process::new({
        let q = q.clone();
        move || reader_proc(&q)
    });
    p1.start()?;
    p2.start()?;
    p1.join()?;
    p2.join()?;

    // Seed 004: `q.put(1, block=False)` in one process, `q.get(block=False)` in
    // another. The reader starts after the writer is joined, so the item is
    // there when it looks.
    let q = Queue::<i32>::new()?;
    let mut writer = Process::new({
        let q = q.clone();
        move || q.try_put(1).expect("the queue has room")
    });
    writer.start()?;
    writer.join()?;
    let mut reader = Process::new({
        let q = q.clone();
        move || match q.try_get() {
            Ok(v) => println!("{v}"),
            Err(e) => println!("nothing: {e}"),
        }
    });
    reader.start()?;
    reader.join()?;
    Ok(())
}
