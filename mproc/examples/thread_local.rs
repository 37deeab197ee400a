//! Twin of seed 003 "ThreadLocal": each thread binds its own `student`; a
//! function deep in the call chain reads it without a parameter. Python's
//! `threading.local()` is Rust's `thread_local!`.
//!
//! Run: `cargo run -p mproc --example thread_local`.

use std::cell::RefCell;
use std::thread;

thread_local! {
    /// The tutorial's `local_school.student`.
    static STUDENT: RefCell<String> = const { RefCell::new(String::new()) };
}

fn process_student() {
    let std = STUDENT.with(|s| s.borrow().clone());
    println!("Hello, {std} (in {})", thread::current().name().unwrap_or("?"));
}

fn process_thread(name: &str) {
    STUDENT.with(|s| *s.borrow_mut() = name.to_owned());
    process_student();
}

fn main() -> std::io::Result<()> {
    let t1 = thread::Builder::new().name("Thread-A".into()).spawn(|| process_thread("Alice"))?;
    // Joined before the second starts, so the lines come in a fixed order.
    t1.join().expect("Thread-A panicked");
    let t2 = thread::Builder::new().name("Thread-B".into()).spawn(|| process_thread("Bob"))?;
    t2.join().expect("Thread-B panicked");
    Ok(())
}
