//! Twin of seed 000 §2.2.3 示例代码 "pipe的使用": one process sends 0, 1, 2
//! down a pipe and closes its end; another receives until the end of the pipe.
//!
//! The tutorial's reader stops when `poll()` finds nothing waiting, which can
//! stop it early; this reader stops at end-of-file, which comes once the
//! writer has closed its end.
//! Run: `cargo run -p mproc --example pipe_processes`.

use mproc::prelude::*;
use mproc::IpcError;

fn proc1(mut pipe: Connection) {
    for i in 0..3 {
        println!("send: {i}");
        pipe.send(&i).expect("send");
    }
    pipe.close();
}

fn proc2(mut pipe: Connection) {
    loop {
        match pipe.recv::<i32>() {
            Ok(v) => println!("proc2 rev: {v}"),
            Err(IpcError::Eof) => break,
            Err(e) => {
                println!("{e}");
                break;
            }
        }
    }
}

fn main() -> mproc::Result<()> {
    let (a, b) = pipe(true)?; // Python's `multiprocessing.Pipe()`
    println!("({a:?}, {b:?})");
    // Each end moves into its process; the parent keeps no copy, so the
    // reader sees end-of-file once the writer closes.
    let mut p1 = Process::new(move || proc1(a));
    let mut p2 = Process::new(move || proc2(b));
    p1.start()?;
    p2.start()?;
    p1.join()?;
    p2.join()?;
    Ok(())
}
