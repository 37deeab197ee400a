//! Twin of seed 003 "21days" (the `threading.Thread` basics): threads from a
//! function with arguments, from a type of your own (Python subclasses
//! `Thread`), one thread waiting for another (`thr.join()`), and daemon
//! threads, which Rust threads are: a thread still running when `main`
//! returns is ended with the process.
//!
//! Naps: 20 ms instead of 1–2 s. Run: `cargo run -p mproc --example thread_basics`.

use std::thread::{self, JoinHandle};
use std::time::Duration;

fn thrfun(x: u64, y: u64, sep: char) {
    for i in x..y {
        println!("{}{sep}", i * i);
    }
}

/// The tutorial's `myThread(threading.Thread)` with its `run`.
struct MyThread {
    mynum: u64,
}

impl MyThread {
    fn run(&self) {
        thrfun(self.mynum, self.mynum + 5, ':');
    }

    fn start(self) -> JoinHandle<()> {
        thread::spawn(move || self.run())
    }
}

fn main() {
    // Threads from a function: their lines may interleave.
    let ta = thread::spawn(|| thrfun(1, 6, ':'));
    let tb = thread::spawn(|| thrfun(16, 21, ':'));
    ta.join().expect("ta");
    tb.join().expect("tb");

    // Threads from a type of their own.
    let ma = MyThread { mynum: 1 }.start();
    let mb = MyThread { mynum: 16 }.start();
    ma.join().expect("ma");
    mb.join().expect("mb");

    // tb waits for ta: tb's lines come after all of ta's.
    let ta = thread::spawn(|| {
        thread::sleep(Duration::from_millis(20));
        thrfun(1, 6, ';');
    });
    let tb = thread::spawn(move || {
        ta.join().expect("ta");
        thrfun(16, 19, ';');
    });
    tb.join().expect("tb");

    // Daemon threads: `main` returns before they wake, so they print nothing.
    println!("start....");
    for mynum in [1, 16] {
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(1));
            thrfun(mynum, mynum + 5, ';');
        });
    }
    println!("end....");
}
