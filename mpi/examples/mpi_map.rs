//! A `Pool` on the ranks of an MPI job: run it with `mpiexec -n 3 mpi_map [MODE]`.
//!
//! Rank 0 runs the program below; every other rank serves its tasks. MODE picks what it
//! checks (the tests in `mpi/tests/mpiexec.rs` run each):
//! - `map` (default): `map` over 10,000 items, every result checked;
//! - `imap_unordered`, `apply_async`, `starmap`: the other calls, results checked;
//! - `panic`: a task that panics ends its call with `TaskPanicked` naming the item, and
//!   the pool goes on serving;
//! - `kill`: a task SIGKILLs its own rank mid-map; MPI then ends the whole job;
//! - `undecodable`: results that arrive but do not decode end `apply` and `map` with
//!   `Decode` naming the type, the bytes (and, for `map`, the chunk's first item), and
//!   the pool serves on;
//! - `netns`: prints how many network namespaces the workers' tasks ran in (the test
//!   that stands two namespaces in for two hosts expects 2);
//! - `bench N`: times `map` over N small items and prints `ns_per_item <figure>`.

use std::time::Instant;

use mproc_testkit::undecodable;

fn square(x: u64) -> u64 {
    x * x
}

fn fails_on_7(x: u64) -> u64 {
    if x == 7 {
        panic!("item seven is refused");
    }
    x
}

fn kill_self_on_5000(x: u64) -> u64 {
    if x == 5000 {
        // SAFETY: raise(3) with a valid signal number.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    x
}

/// The network namespace this rank runs in, as the kernel names it (`net:[inode]`).
fn net_namespace(_: u64) -> String {
    std::fs::read_link("/proc/self/ns/net").map(|p| p.display().to_string()).unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("map").to_owned();
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let out = mproc_mpi::main(|pool| run(pool, &mode, n)).unwrap_or_else(|e| {
        eprintln!("mpi_map: {e}");
        std::process::exit(2)
    });
    if let Some(Err(e)) = out {
        eprintln!("mpi_map: {e}");
        std::process::exit(1);
    }
}

fn run(pool: &mproc_mpi::MpiPool, mode: &str, n: u64) -> Result<(), String> {
    let workers = pool.processes();
    match mode {
        "map" => {
            let got = pool.map(square, 0..10_000u64).map_err(|e| e.to_string())?;
            let bad = got.iter().enumerate().filter(|(i, r)| **r != (*i as u64) * (*i as u64)).count();
            if got.len() != 10_000 || bad != 0 {
                return Err(format!("map: {} results, {bad} wrong", got.len()));
            }
            println!("map ok: 10000 results on {workers} workers");
        }
        "imap_unordered" => {
            let mut got: Vec<u64> = pool
                .imap_unordered(square, 0..1000u64)
                .map_err(|e| e.to_string())?
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            got.sort_unstable();
            if got != (0..1000u64).map(|x| x * x).collect::<Vec<_>>() {
                return Err("imap_unordered: wrong results".into());
            }
            let ordered: Vec<u64> = pool
                .imap(square, 0..100u64)
                .map_err(|e| e.to_string())?
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            if ordered != (0..100u64).map(|x| x * x).collect::<Vec<_>>() {
                return Err("imap: wrong order".into());
            }
            println!("imap_unordered ok: 1000 results; imap ok: 100 in order");
        }
        "apply_async" => {
            let pending: Vec<_> =
                (0..50u64).map(|i| pool.apply_async(square, i)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
            for (i, r) in pending.into_iter().enumerate() {
                let v = r.get().map_err(|e| e.to_string())?;
                if v != (i as u64) * (i as u64) {
                    return Err(format!("apply_async {i}: got {v}"));
                }
            }
            let v = pool.apply(square, 12).map_err(|e| e.to_string())?;
            println!("apply_async ok: 50 results; apply(square, 12) = {v}");
        }
        "starmap" => {
            fn add(a: u64, b: u64) -> u64 {
                a + b
            }
            let got = pool.starmap(add, (0..1000u64).map(|i| (i, 2 * i))).map_err(|e| e.to_string())?;
            if got != (0..1000u64).map(|i| 3 * i).collect::<Vec<_>>() {
                return Err("starmap: wrong results".into());
            }
            println!("starmap ok: 1000 results");
        }
        "panic" => {
            match pool.map_chunked(fails_on_7, 0..20u64, 3) {
                Err(mproc_pool::PoolError::TaskPanicked { message, item }) => {
                    println!("panic reported: item {item:?}: {message}");
                }
                other => return Err(format!("panic: expected TaskPanicked, got {other:?}")),
            }
            let after = pool.map(square, 0..10u64).map_err(|e| e.to_string())?;
            println!("pool still serves after the panic: {after:?}");
        }
        "kill" => {
            let r = pool.map_chunked(kill_self_on_5000, 0..10_000u64, 100);
            // MPI aborts the job when a rank dies, so this line is not expected to run.
            println!("kill: map returned {:?}", r.map(|v| v.len()));
        }
        "undecodable" => {
            match pool.apply(undecodable, 3) {
                Err(e @ mproc_pool::PoolError::Decode { type_name, len, item, .. }) => {
                    println!("apply: Decode: {len} bytes, item {item:?}, as {type_name}: {e}")
                }
                other => return Err(format!("apply: expected Decode, got {:?}", other.map(|u| u.0))),
            }
            match pool.map_chunked(undecodable, 0..20u64, 5) {
                Err(e @ mproc_pool::PoolError::Decode { type_name, len, item, .. }) => {
                    println!("map: Decode: {len} bytes, item {item:?}, as {type_name}: {e}")
                }
                other => return Err(format!("map: expected Decode, got {:?}", other.map(|v| v.len()))),
            }
            let after = pool.map(square, 0..4u64).map_err(|e| e.to_string())?;
            println!("pool still serves: {after:?}");
        }
        "netns" => {
            let mut seen: Vec<String> = pool.map_chunked(net_namespace, 0..200u64, 1).map_err(|e| e.to_string())?;
            seen.sort();
            seen.dedup();
            println!("worker namespaces: {}", seen.len());
        }
        "bench" => {
            let items: Vec<u64> = (0..n).collect();
            let _ = pool.map(square, items.clone()).map_err(|e| e.to_string())?;
            let t = Instant::now();
            let got = pool.map(square, items).map_err(|e| e.to_string())?;
            let ns = t.elapsed().as_nanos() as f64 / n as f64;
            if got.len() as u64 != n {
                return Err("bench: lost results".into());
            }
            println!("ns_per_item {ns:.3}");
        }
        other => return Err(format!("unknown mode {other:?}")),
    }
    Ok(())
}
