//! Twin of seed 000 §1.4 "进程退出状态": the exit-code table.
//!
//! - 0: the target returned (its return value is ignored, as in Python);
//! - \>0: the process exited with that code (`sys.exit(1)` is [`mproc::exit`]`(1)`);
//!   a panic (Python's uncaught exception) gives 1, its message on stderr;
//! - \<0: killed by signal −N (`terminate()` sends SIGTERM: −15).
//!
//! `terminated` would sleep 3 s; it is terminated at once.
//! Run: `cargo run -p mproc --example exit_codes`.

use std::time::Duration;

use mproc::prelude::*;

fn exit_error() {
    mproc::exit(1);
}

fn exit_ok() {}

fn return_value() -> i32 {
    1
}

fn raise_error() {
    panic!("sdfsdfsdf");
}

fn terminated() {
    std::thread::sleep(Duration::from_secs(3));
}

fn main() -> mproc::Result<()> {
    let funcs: [(&str, fn()); 5] = [
        ("exit_error", exit_error),
        ("exit_ok", exit_ok),
        ("return_value", || {
            let _ = return_value(); // a return value is ignored, as in Python
        }),
        ("raise_error", raise_error),
        ("terminated", terminated),
    ];
    let mut jobs = Vec::new();
    for (name, f) in funcs {
        println!("Starting process {name}");
        let mut p = Process::builder().name(name).target(f).build();
        p.start()?;
        jobs.push(p);
    }
    if let Some(last) = jobs.last_mut() {
        last.terminate()?;
    }
    for j in &mut jobs {
        j.join()?;
        let code = j.exitcode().map_or("None".into(), |c| c.to_string());
        println!("process_name: {}, exit_code: {code}", j.name());
    }
    Ok(())
}
