//! Twin of seed 000 §2.2.3 "如果管道已经被关闭, 那么recv方法会报EOFError":
//! a message goes through a pipe; once the sending end is closed, `recv`
//! returns the `Eof` error (Python raises `EOFError`).
//!
//! Run: `cargo run -p mproc --example pipe_eof`.

use mproc::IpcError;

fn main() -> mproc::Result<()> {
    // Python's `multiprocessing.Pipe()`: two ends of a duplex connection
    // (here over shared-memory rings; `Connection::pair()` is a socket pair).
    let mut pipe = mproc::pipe(true)?;
    pipe.0.send(&1_i32)?;
    println!("{}", pipe.1.recv::<i32>()?);
    pipe.0.close();
    match pipe.1.recv::<i32>() {
        Err(IpcError::Eof) => println!("EOFError: {}", IpcError::Eof),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
