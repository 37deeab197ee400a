//! Hooks for this crate's own tests, outside the API: re-exported, hidden from
//! the docs, as `mproc_process::__testing`.

use crate::process::Job;
use crate::spawn::{EntryDef, SpawnJob};
use crate::{Process, ProcessError};

/// Starts a spawn child naming `entry` with raw argument bytes, bypassing the type
/// check: only for testing the child's refusal of unknown entries and bad bytes.
/// With `forge_exe` the parent records an identity that is not this binary's.
pub fn spawn_unchecked(
    name: &str,
    entry: &'static str,
    args: Vec<u8>,
    forge_exe: bool,
) -> Result<Process, ProcessError> {
    let def: &'static EntryDef = Box::leak(Box::new(EntryDef { name: entry, decode: |_| Err(String::new()) }));
    let job = SpawnJob::raw(def, args, forge_exe);
    let mut p = Process::builder().name(name).job(Job::Spawn(job)).build();
    p.start()?;
    Ok(p)
}
