#!/usr/bin/env python3
"""CPython `multiprocessing` figures for `cargo xtask bench`.

The same cases as mproc's criterion groups (BENCHMARKS.md), measured with the
standard library only. Each case prints one line, tab-separated:

    name<TAB>figure<TAB>unit

Lines starting with `#` are metadata (interpreter version, start method). A cost
curve prints one line per point, named `curve/x` (x: bytes or processes).

Usage: python3 mp_bench.py [--quick] [case ...]
       python3 mp_bench.py --manager ADDRESS:AUTHKEY --ops N manager_call_py
  --quick   about a tenth of the operations per case (a smoke run for CI)
  --manager run manager_call_py against a running manager server (mproc's bench does)
  --ops     operations for that run
  case      any of the names in CASES; all of them when none is given
"""
import array
import multiprocessing as mp
import os
import platform
import sys
import time

# Operations per case in a normal run; --quick divides by QUICK_DIV (never below MIN_OPS).
OPS = {
    "pipe_rtt": 20_000,
    "queue_tput": 100_000,
    "queue_bytes_tput": 20_000,
    "queue_large_1m": 500,
    "queue_large_16m": 40,
    "payload_bytes_4k": 40_000,
    "payload_bytes_64k": 4_000,
    "payload_bytes_1m": 300,
    "payload_f64_4k": 40_000,
    "payload_f64_64k": 4_000,
    "payload_f64_1m": 300,
    "lock_uncontended": 1_000_000,
    "value_contended": 100_000,
    "pool_map": 200_000,
    "pool_apply_async": 20_000,
    "proc_fork": 50,
    "proc_spawn": 10,
    "manager_call": 10_000,
    "manager_call_socket": 10_000,
    "manager_call_oversubscribed": 2_000,
    "manager_call_py": 10_000,
    "pickle_codec": 100_000,
    "mpi_pool_map": 100_000,
    # The curves: operations at each point up to 1 KiB (fewer for larger items, see _per_size).
    "pipe_rtt_curve": 20_000,
    "queue_curve": 20_000,
    "queue_procs": 100_000,
    "handoff_16mib": 2_000,
}
QUICK_DIV = 10
MIN_OPS = 5


def _echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def pipe_rtt(n):
    """One 64-byte round trip through a Pipe to another process."""
    here, there = mp.Pipe()
    child = mp.Process(target=_echo, args=(there, n))
    child.start()
    payload = bytes(64)
    start = time.perf_counter()
    for _ in range(n):
        here.send_bytes(payload)
        here.recv_bytes()
    elapsed = time.perf_counter() - start
    child.join()
    return elapsed / n * 1e6, "us/round-trip (64 B bytes)"


def _drain(q, n):
    for _ in range(n):
        q.get()


def queue_tput(n):
    """Small items (ints) from this process to one consumer process."""
    q = mp.Queue()
    consumer = mp.Process(target=_drain, args=(q, n))
    consumer.start()
    start = time.perf_counter()
    for i in range(n):
        q.put(i)
    consumer.join()
    elapsed = time.perf_counter() - start
    return n / elapsed, "msgs/s (int, 1 producer -> 1 consumer)"


def queue_bytes_tput(n, size=4096):
    """4 KiB byte strings from this process to one consumer process."""
    q = mp.Queue(maxsize=1024)
    consumer = mp.Process(target=_drain, args=(q, n))
    consumer.start()
    payload = b"\x5a" * size
    start = time.perf_counter()
    for _ in range(n):
        q.put(payload)
    consumer.join()
    elapsed = time.perf_counter() - start
    return n * size / elapsed / 1e6, "MB/s (4 KiB bytes messages)"


def queue_large_1m(n, size=1 << 20):
    """1 MiB byte strings from this process to one consumer process."""
    return _queue_large(n, size, "MB/s (1 MiB bytes messages)")


def queue_large_16m(n, size=16 << 20):
    """16 MiB byte strings from this process to one consumer process."""
    return _queue_large(n, size, "MB/s (16 MiB bytes messages)")


def _queue_large(n, size, unit, maxsize=0):
    q = mp.Queue(maxsize=maxsize)
    consumer = mp.Process(target=_drain, args=(q, n))
    consumer.start()
    payload = b"\x5a" * size
    start = time.perf_counter()
    for _ in range(n):
        q.put(payload)
    consumer.join()
    elapsed = time.perf_counter() - start
    return n * size / elapsed / 1e6, unit


def _payload(n, item, what):
    """One item put n times into Queue(maxsize=64) by this process, drained by another."""
    q = mp.Queue(maxsize=64)
    consumer = mp.Process(target=_drain, args=(q, n))
    consumer.start()
    start = time.perf_counter()
    for _ in range(n):
        q.put(item)
    consumer.join()
    elapsed = time.perf_counter() - start
    size = len(item) * getattr(item, "itemsize", 1)
    return n * size / elapsed / 1e6, f"MB/s ({what}, Queue(maxsize=64))"


def _bytes_of(size):
    return b"\x07" * size


def _f64s_of(size):
    return array.array("d", [0.5]) * (size // 8)


def payload_bytes_4k(n):
    """4 KiB `bytes` through Queue(maxsize=64), one producer -> one consumer process."""
    return _payload(n, _bytes_of(4 << 10), "4 KiB bytes")


def payload_bytes_64k(n):
    """64 KiB `bytes` through Queue(maxsize=64)."""
    return _payload(n, _bytes_of(64 << 10), "64 KiB bytes")


def payload_bytes_1m(n):
    """1 MiB `bytes` through Queue(maxsize=64)."""
    return _payload(n, _bytes_of(1 << 20), "1 MiB bytes")


def payload_f64_4k(n):
    """4 KiB `array.array('d')` through Queue(maxsize=64)."""
    return _payload(n, _f64s_of(4 << 10), "4 KiB array('d')")


def payload_f64_64k(n):
    """64 KiB `array.array('d')` through Queue(maxsize=64)."""
    return _payload(n, _f64s_of(64 << 10), "64 KiB array('d')")


def payload_f64_1m(n):
    """1 MiB `array.array('d')` through Queue(maxsize=64)."""
    return _payload(n, _f64s_of(1 << 20), "1 MiB array('d')")


def lock_uncontended(n):
    """Acquire and release a multiprocessing.Lock nobody else touches."""
    lock = mp.Lock()
    start = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - start) / n * 1e9, "ns/acquire+release"


def _increment(value, n):
    for _ in range(n):
        with value.get_lock():
            value.value += 1


def value_contended(n):
    """Two processes each add n to one shared Value under its lock."""
    value = mp.Value("q", 0)
    workers = [mp.Process(target=_increment, args=(value, n)) for _ in range(2)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if value.value != 2 * n:
        raise RuntimeError(f"lost increments: {value.value} != {2 * n}")
    return elapsed / (2 * n) * 1e9, "ns/locked increment (2 processes)"


def _identity(x):
    return x


def pool_map(n):
    """Pool(2).map(identity) over n items with the default chunksize (pool start excluded)."""
    with mp.Pool(2) as pool:
        pool.map(_identity, range(1000))  # workers up and warm
        start = time.perf_counter()
        out = pool.map(_identity, range(n))
        elapsed = time.perf_counter() - start
    if out[-1] != n - 1:
        raise RuntimeError("pool.map returned the wrong items")
    return elapsed / n * 1e6, "us/item (Pool(2).map identity, default chunksize)"


def mpi_pool_map(n):
    """The MPI pool case's CPython row: Pool(2).map(identity) over n items, as pool_map."""
    return pool_map(n)


def pool_apply_async(n):
    """Submit n apply_async calls to Pool(2), then get every result."""
    with mp.Pool(2) as pool:
        start = time.perf_counter()
        pending = [pool.apply_async(_identity, (i,)) for i in range(n)]
        for r in pending:
            r.get()
        elapsed = time.perf_counter() - start
    return elapsed / n * 1e6, "us/task (apply_async + get)"


def _nothing():
    pass


def _start_join(method, n):
    ctx = mp.get_context(method)
    start = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=_nothing)
        p.start()
        p.join()
    return (time.perf_counter() - start) / n * 1e3, f"ms/start+join ({method})"


def proc_fork(n):
    """Start and join a process that does nothing, fork start method."""
    return _start_join("fork", n)


def proc_spawn(n):
    """Start and join a process that does nothing, spawn start method."""
    return _start_join("spawn", n)


def manager_call(n):
    """One list.append through a Manager proxy (a round trip to the manager process)."""
    with mp.Manager() as manager:
        shared = manager.list()
        start = time.perf_counter()
        for i in range(n):
            shared.append(i)
        elapsed = time.perf_counter() - start
    return elapsed / n * 1e6, "us/proxy call (list.append)"


def manager_call_socket(n):
    """mproc's call over its Unix socket; CPython's manager always uses its socket."""
    return manager_call(n)


def _hog(stop):
    x = 0
    while not stop.is_set():
        for _ in range(10_000):
            x += 1


def manager_call_oversubscribed(n):
    """manager_call while a busy-looping process runs on every core (started after the
    manager, stopped after the measurement), as mproc's bench runs a busy thread per core."""
    with mp.Manager() as manager:
        shared = manager.list()
        shared.append(0)
        stop = mp.Event()
        hogs = [mp.Process(target=_hog, args=(stop,)) for _ in range(os.cpu_count() or 2)]
        for h in hogs:
            h.start()
        try:
            start = time.perf_counter()
            for i in range(n):
                shared.append(i)
            elapsed = time.perf_counter() - start
        finally:
            stop.set()
            for h in hogs:
                h.join()
    return elapsed / n * 1e6, "us/proxy call (list.append, every core busy)"


def manager_call_py(n, manager=None):
    """One list.append from this CPython client through a SyncManager proxy: on CPython's
    own manager (on a Unix socket), or (``--manager ADDRESS:AUTHKEY``, as mproc's bench runs
    it) on a
    running server, e.g. mproc's. The same loop either way."""
    from multiprocessing.managers import SyncManager

    if manager is None:
        m = SyncManager()
        m.start()
    else:
        addr, key = manager.rsplit(":", 1)
        if addr.startswith("/"):
            address = addr  # a Unix socket, as CPython's own manager uses
        else:
            host, port = addr.rsplit(":", 1)
            address = (host, int(port))
        m = SyncManager(address=address, authkey=key.encode())
        m.connect()
    shared = m.list()
    shared.append(0)  # the connection is made outside the timed loop
    start = time.perf_counter()
    for i in range(n):
        shared.append(i)
    elapsed = time.perf_counter() - start
    del shared
    if manager is None:
        m.shutdown()
    return elapsed / n * 1e6, "us/proxy call (list.append, CPython client)"


def pickle_codec(n):
    """pickle.dumps + pickle.loads of a 1 KiB dict (the dict mproc's bench uses)."""
    import pickle

    d = {f"k{i:03}": (i * 7919 if i % 3 == 0 else f"value-{i:04}" if i % 3 == 1 else i * 0.5) for i in range(64)}
    dumps, loads = pickle.dumps, pickle.loads
    start = time.perf_counter()
    for _ in range(n):
        loads(dumps(d))
    elapsed = time.perf_counter() - start
    return elapsed / n * 1e6, "us/encode+decode"


# --- Cost curves: one figure per point, returned as a list of (x, figure, unit). ---

SIZES = [64, 1 << 10, 4 << 10, 64 << 10, 1 << 20, 16 << 20]


def _per_size(n, size):
    """Operations at one size of a curve: n up to 1 KiB, proportionally fewer above."""
    return max(MIN_OPS, min(n, n * 1024 // size))


def pipe_rtt_curve(n):
    """Round trips of 64 B ... 16 MiB through a Pipe to an echoing process."""
    out = []
    for size in SIZES:
        ops = _per_size(n, size)
        here, there = mp.Pipe()
        child = mp.Process(target=_echo, args=(there, ops + 1))
        child.start()
        payload = bytes(size)
        here.send_bytes(payload)  # one round trip to warm up, untimed
        here.recv_bytes()
        start = time.perf_counter()
        for _ in range(ops):
            here.send_bytes(payload)
            here.recv_bytes()
        elapsed = time.perf_counter() - start
        child.join()
        out.append((size, elapsed / ops * 1e6, f"us/round-trip ({size} B bytes)"))
    return out


def queue_curve(n):
    """`bytes` of 64 B ... 16 MiB through Queue(maxsize=min(64, 64 MiB / size)), 1 -> 1."""
    out = []
    for size in SIZES:
        ops = _per_size(n, size)
        maxsize = max(1, min(64, (64 << 20) // size))
        out.append((size, *_queue_large(ops, size, f"MB/s ({size} B bytes)", maxsize)))
    return out


def _produce(q, k, ready):
    ready.wait()
    for i in range(k):
        q.put(i)


def _consume(q, k, ready, done):
    ready.wait()
    for _ in range(k):
        q.get()
    done.put(k)


def queue_procs(n):
    """n ints from p producer processes to p consumer processes through one Queue, p = 1, 2, 4;
    timed from the moment every process is up to the last consumer's report."""
    out = []
    for procs in (1, 2, 4):
        q, done = mp.Queue(), mp.Queue()
        shares = [n // procs + (k < n % procs) for k in range(procs)]
        ready = mp.Barrier(2 * procs + 1)
        workers = [mp.Process(target=_produce, args=(q, k, ready)) for k in shares]
        workers += [mp.Process(target=_consume, args=(q, k, ready, done)) for k in shares]
        for w in workers:
            w.start()
        ready.wait()
        start = time.perf_counter()
        for _ in shares:
            done.get()
        elapsed = time.perf_counter() - start
        for w in workers:
            w.join()
        out.append((procs, n / elapsed, f"msgs/s (int, {procs} producers -> {procs} consumers)"))
    return out


HANDOFF_SIZE = 16 << 20


def _handoff_echo(names, back):
    from multiprocessing import shared_memory

    while True:
        name = names.get()
        if name is None:
            return
        shm = shared_memory.SharedMemory(name=name)
        shm.buf[HANDOFF_SIZE - 1]  # read one byte there
        t1 = time.perf_counter()
        shm.close()
        back.put(t1)


def handoff_16mib(n):
    """A 16 MiB SharedMemory handed to another process by name through a Queue;
    the time runs from the put to the receiver having read one byte of it
    (time.perf_counter is CLOCK_MONOTONIC, one clock for both processes). The
    receiver answers with that time; the answer's trip is not counted."""
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(create=True, size=HANDOFF_SIZE)
    shm.buf[:] = b"\x07" * HANDOFF_SIZE
    names, back = mp.Queue(), mp.Queue()
    child = mp.Process(target=_handoff_echo, args=(names, back))
    child.start()
    total = 0.0
    for _ in range(n):
        t0 = time.perf_counter()
        names.put(shm.name)
        total += back.get() - t0
    names.put(None)
    child.join()
    shm.close()
    shm.unlink()
    return total / n * 1e6, "us/hand-off (16 MiB SharedMemory by name through a Queue, one byte read there)"


CASES = {
    "pipe_rtt": pipe_rtt,
    "queue_tput": queue_tput,
    "queue_bytes_tput": queue_bytes_tput,
    "queue_large_1m": queue_large_1m,
    "queue_large_16m": queue_large_16m,
    "payload_bytes_4k": payload_bytes_4k,
    "payload_bytes_64k": payload_bytes_64k,
    "payload_bytes_1m": payload_bytes_1m,
    "payload_f64_4k": payload_f64_4k,
    "payload_f64_64k": payload_f64_64k,
    "payload_f64_1m": payload_f64_1m,
    "lock_uncontended": lock_uncontended,
    "value_contended": value_contended,
    "pool_map": pool_map,
    "pool_apply_async": pool_apply_async,
    "proc_fork": proc_fork,
    "proc_spawn": proc_spawn,
    "manager_call": manager_call,
    "manager_call_socket": manager_call_socket,
    "manager_call_oversubscribed": manager_call_oversubscribed,
    "manager_call_py": manager_call_py,
    "pickle_codec": pickle_codec,
    "mpi_pool_map": mpi_pool_map,
    "pipe_rtt_curve": pipe_rtt_curve,
    "queue_curve": queue_curve,
    "queue_procs": queue_procs,
    "handoff_16mib": handoff_16mib,
}


def main(argv):
    if "--manager" in argv:
        manager = argv[argv.index("--manager") + 1]
        ops = int(argv[argv.index("--ops") + 1]) if "--ops" in argv else OPS["manager_call_py"]
        figure, unit = manager_call_py(ops, manager)
        print(f"manager_call_py\t{figure:.4f}\t{unit}", flush=True)
        return 0
    quick = "--quick" in argv
    names = [a for a in argv if a != "--quick"] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    print(f"#python\t{platform.python_implementation()} {platform.python_version()}", flush=True)
    print(f"#start_method\t{mp.get_start_method()}", flush=True)
    for name in names:
        n = max(MIN_OPS, OPS[name] // QUICK_DIV) if quick else OPS[name]
        result = CASES[name](n)
        if isinstance(result, list):  # a curve: one line per point, named curve/x
            for x, figure, unit in result:
                print(f"{name}/{x}\t{figure:.4f}\t{unit}", flush=True)
        else:
            figure, unit = result
            print(f"{name}\t{figure:.4f}\t{unit}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
