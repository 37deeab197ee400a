//! Helpers shared by the process tests: the deadline and looks at /proc
//! (watchdogs, joining with a deadline and clocks are `mproc-testkit`'s).
#![allow(dead_code)]

use std::time::Duration;

/// The longest any test waits for a child before killing it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// True if `pid` still has a /proc entry (running or a zombie).
pub fn proc_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The state letter of `pid` from /proc/<pid>/stat (`Z` for a zombie).
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// The pids of this process's children that are zombies.
pub fn my_zombies() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let mut f = stat[close + 2..].split(' ');
        let state = f.next();
        let ppid = f.next().and_then(|s| s.parse::<u32>().ok());
        if state == Some("Z") && ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}
