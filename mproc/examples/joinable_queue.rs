//! Twin of seed 000 §3.2 "向进程传递消息": four consumer processes take tasks
//! from a [`JoinableQueue`](mproc::JoinableQueue), mark each `task_done`, and
//! put the answers on a [`Queue`](mproc::Queue); `None` tells a consumer to
//! stop. The parent's `tasks.join()` returns once every task is done.
//!
//! Python puts `Task` objects (pickled, callable); Rust puts a serde struct
//! and calls a method on it. The 0.1 s task nap is 10 ms.
//! Run: `cargo run -p mproc --example joinable_queue`.

use std::fmt;
use std::time::Duration;

use mproc::prelude::*;
use mproc::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "mproc::serde")]
struct Task {
    a: i64,
    b: i64,
}

impl Task {
    /// The tutorial's `__call__`.
    fn call(&self) -> String {
        std::thread::sleep(Duration::from_millis(10));
        format!("{} * {} = {}", self.a, self.b, self.a * self.b)
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} * {}", self.a, self.b)
    }
}

fn f1(tasks: &JoinableQueue<Option<Task>>, result: &Queue<String>) {
    loop {
        let next_task = tasks.get().expect("get a task");
        let Some(task) = next_task else {
            println!("None next_task");
            println!("None: Exiting");
            tasks.task_done().expect("task_done");
            break;
        };
        println!("{task} next_task");
        println!("{task}");
        let answer = task.call();
        tasks.task_done().expect("task_done");
        result.put(answer).expect("put the answer");
    }
}

fn main() -> mproc::Result<()> {
    let tasks = JoinableQueue::<Option<Task>>::new()?;
    let result = Queue::<String>::new()?;
    let mut jobs: Vec<Process> = (0..4)
        .map(|_| {
            let (tasks, result) = (tasks.clone(), result.clone());
            Process::new(move || f1(&tasks, &result))
        })
        .collect();
    for w in &mut jobs {
        w.start()?;
    }
    for i in 0..10 {
        tasks.put(Some(Task { a: i, b: i }))?;
    }
    for _ in 0..4 {
        tasks.put(None)?;
    }
    tasks.join(); // until every task is marked done
    for w in &mut jobs {
        w.join()?;
    }
    for _ in 0..10 {
        println!("{}", result.get()?);
    }
    Ok(())
}
