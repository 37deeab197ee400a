//! Twin of seed 002 "Value可以保存数值，Array可以保存数组": a
//! [`Value`](mproc::Value) (shared, with its own lock) and an
//! [`Array`](mproc::Array) (shared, with its own lock) changed by a child and read by
//! the parent — the tutorial describes `Value(typecode, v)` and
//! `Array(typecode, size_or_initializer)` without code; this is the example of
//! Python's documentation, plus a locked counter shared by four processes.
//!
//! Typecodes become Rust types: `'d'` is `f64`, `'i'` is `i32`, `'q'` is `i64`.
//! Run: `cargo run -p mproc --example value_array`.

use mproc::prelude::*;

fn f(n: &Value<f64>, a: &Array<i32>) {
    n.set(std::f64::consts::PI).expect("set"); // the tutorial writes 3.1415927
                                               // `for i in range(len(a)): a[i] = -a[i]`, under the array's lock.
    for x in a.lock().expect("lock").iter_mut() {
        *x = -*x;
    }
}

fn main() -> mproc::Result<()> {
    let num = Value::new(0.0_f64)?;
    let arr = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
    let mut p = Process::new({
        let (num, arr) = (num.clone(), arr.clone());
        move || f(&num, &arr)
    });
    p.start()?;
    p.join()?;
    println!("{}", num.get()?);
    println!("{:?}", arr.to_vec()?);

    // `counter.value += 1` under `with counter.get_lock():`, from four processes.
    let counter = Value::new(0_i64)?;
    let mut workers: Vec<Process> = (0..4)
        .map(|_| {
            let counter = counter.clone();
            Process::new(move || {
                for _ in 0..1000 {
                    *counter.lock().expect("lock") += 1;
                }
            })
        })
        .collect();
    for w in &mut workers {
        w.start()?;
    }
    for w in &mut workers {
        w.join()?;
    }
    println!("counter: {}", counter.get()?);
    Ok(())
}
