//! Type-erased tasks: how a Rust function and its serde argument reach a worker.
//!
//! A task is a `fn` item (or a closure without captures, which coerces to one).
//! It crosses into the worker as two code addresses — a *trampoline*
//! monomorphised for the argument and result types, and the function itself —
//! each sent as an offset from [`anchor`], a function of this crate. In a forked
//! worker every address is the same as in the parent; the offsets keep the
//! format valid for a re-exec of the same binary too, whose image may be loaded
//! at another base (ASLR shifts the whole image by one amount), as the
//! [`StartMethod::Spawn`](crate::StartMethod::Spawn) workers are (the process
//! crate checks that the child runs the parent's very executable). An
//! initializer travels the same way, its argument encoded by
//! [`Initializer`] when a spawned worker is started.
//!
//! The trampoline decodes the argument (postcard), calls the function under
//! `catch_unwind`, and encodes the result; a panic becomes a [`Failure`] carrying
//! the message, and the worker lives on.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use mproc_shm::sys;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ArgumentError, PoolError};

/// What a trampoline reports when the call did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The panic message (or, for an argument that did not decode, the error's).
    pub(crate) message: String,
    /// Index of the failing item within the chunk, for chunked calls.
    pub(crate) item: Option<usize>,
    /// Set when the argument did not decode: the call never ran.
    pub(crate) argument: Option<Box<BadArgument>>,
}

/// A task's argument that did not decode in the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadArgument {
    /// The task's name ([`PoolError::BadArgument`]'s `task`).
    pub(crate) task: String,
    /// The length of the encoded argument (or chunk).
    pub(crate) len: usize,
    pub(crate) cause: ArgumentError,
}

impl Failure {
    /// A panic of the call (of the chunk's `item`).
    pub(crate) fn panic(message: String, item: Option<usize>) -> Failure {
        Failure { message, item, argument: None }
    }

    /// `len` bytes of argument for `task` that did not decode (item `item` of
    /// a chunk): postcard's `e`, or the [`PayloadError`](mproc_ipc::PayloadError)
    /// behind it.
    fn decode(task: &str, len: usize, item: Option<usize>, e: postcard::Error) -> Failure {
        let cause = match mproc_ipc::payload::take_decode_error() {
            Some(p) => ArgumentError::Payload(p),
            None => ArgumentError::Format(e.to_string()),
        };
        let message = format!("cannot decode the argument in the worker: {cause}");
        Failure { message, item, argument: Some(Box::new(BadArgument { task: task.to_owned(), len, cause })) }
    }

    fn encode(e: postcard::Error) -> Failure {
        Failure::panic(format!("cannot encode the result in the worker: {e}"), None)
    }

    /// The caller's error; `item` is the failing input's index in the whole call.
    pub(crate) fn into_error(self, item: Option<usize>) -> PoolError {
        match self.argument.map(|a| *a) {
            Some(BadArgument { task, len, cause }) => PoolError::BadArgument { task, item, len, cause },
            None => PoolError::TaskPanicked { message: self.message, item },
        }
    }
}

/// Decodes one `A` for `task` from all of `input`.
fn decode_arg<A: DeserializeOwned>(task: &str, input: &[u8]) -> Result<A, Failure> {
    mproc_ipc::payload::clear_decode_error();
    postcard::from_bytes(input).map_err(|e| Failure::decode(task, input.len(), None, e))
}

/// Decodes a chunk (`Vec<A>`) for `task` item by item, so that a failure names
/// the item that did not decode.
fn decode_chunk<A: DeserializeOwned>(task: &str, input: &[u8]) -> Result<Vec<A>, Failure> {
    let fail = |item, e| Failure::decode(task, input.len(), item, e);
    mproc_ipc::payload::clear_decode_error();
    // postcard writes a sequence as its length (a varint) and the elements.
    let (n, mut rest) = postcard::take_from_bytes::<u64>(input).map_err(|e| fail(None, e))?;
    let mut args = Vec::with_capacity((n as usize).min(rest.len()));
    for i in 0..n as usize {
        let (a, r) = postcard::take_from_bytes::<A>(rest).map_err(|e| fail(Some(i), e))?;
        args.push(a);
        rest = r;
    }
    Ok(args)
}

/// The type-erased form of a task: `func` is the function's address, `input` the
/// encoded argument (or chunk of arguments); the encoded result is appended to
/// `out`.
///
/// # Safety
/// `func` must be an address this trampoline's monomorphisation expects: the
/// address of a `fn` pointer of exactly the types it was instantiated with (or
/// anything, for trampolines that ignore it).
pub(crate) type Trampoline = unsafe fn(func: usize, input: &[u8], out: &mut Vec<u8>) -> Result<(), Failure>;

/// The reference point for code offsets. Never inlined, so it has an address.
#[inline(never)]
fn anchor() {}

/// The offset of a code address from [`anchor`].
pub(crate) fn code_offset(addr: usize) -> i64 {
    addr.wrapping_sub(anchor as fn() as usize) as i64
}

/// The code address at `offset` from [`anchor`] in this process.
pub(crate) fn code_address(offset: i64) -> usize {
    (anchor as fn() as usize).wrapping_add(offset as usize)
}

/// A task's code, ready to be sent: trampoline and function offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Code {
    pub(crate) trampoline: i64,
    pub(crate) func: i64,
}

impl Code {
    /// `f(arg)` with one encoded `A` in, one encoded `R` out.
    pub(crate) fn apply<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> Code {
        Code { trampoline: code_offset(apply_one::<A, R> as Trampoline as usize), func: code_offset(f as usize) }
    }

    /// `f` over an encoded `Vec<A>`, giving an encoded `Vec<R>`.
    pub(crate) fn map<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> Code {
        Code { trampoline: code_offset(map_chunk::<A, R> as Trampoline as usize), func: code_offset(f as usize) }
    }

    /// `f(*args)` over an encoded `Vec<Args>`, giving an encoded `Vec<R>`.
    pub(crate) fn starmap<F: StarFn<Args, R>, Args: DeserializeOwned, R: Serialize>(_f: F) -> Code {
        const { assert!(std::mem::size_of::<F>() == 0, "starmap takes a fn item or a closure without captures") };
        Code { trampoline: code_offset(star_chunk::<F, Args, R> as Trampoline as usize), func: 0 }
    }

    /// An initializer `f(arg)` with one encoded `A` in, nothing out.
    pub(crate) fn init_with<A: DeserializeOwned>(f: fn(A)) -> Code {
        Code { trampoline: code_offset(init_one::<A> as Trampoline as usize), func: code_offset(f as usize) }
    }

    /// An initializer `f()`; its input is ignored.
    pub(crate) fn init(f: fn()) -> Code {
        Code { trampoline: code_offset(init_plain as Trampoline as usize), func: code_offset(f as usize) }
    }

    /// Runs the task in this process (the worker side).
    ///
    /// # Safety
    /// `self` must come from one of the constructors above, in this same binary.
    pub(crate) unsafe fn run(self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Failure> {
        // SAFETY: [1] the trampoline offset came from `code_offset` of a
        // `Trampoline` in this binary (caller's contract), so the address is that
        // function; [2] the function offset was paired with it by the same
        // constructor, which is what the trampoline's own contract asks.
        unsafe {
            let tramp: Trampoline = std::mem::transmute::<usize, Trampoline>(code_address(self.trampoline));
            tramp(code_address(self.func), input, out)
        }
    }
}

/// A function called with its arguments unpacked from a tuple, as in Python's
/// `starmap`: implemented for fn items and closures without captures of one to
/// six arguments.
pub trait StarFn<Args, R>: Copy + Send + Sync + 'static {
    /// Calls the function with the tuple's elements as arguments.
    fn call(self, args: Args) -> R;
}

macro_rules! star_fn {
    ($($a:ident),+) => {
        impl<Func, $($a,)+ R> StarFn<($($a,)+), R> for Func
        where
            Func: Fn($($a),+) -> R + Copy + Send + Sync + 'static,
        {
            #[allow(non_snake_case)]
            fn call(self, ($($a,)+): ($($a,)+)) -> R {
                self($($a),+)
            }
        }
    };
}
star_fn!(A1);
star_fn!(A1, A2);
star_fn!(A1, A2, A3);
star_fn!(A1, A2, A3, A4);
star_fn!(A1, A2, A3, A4, A5);
star_fn!(A1, A2, A3, A4, A5, A6);

thread_local! {
    /// Where the last panic on this thread happened, recorded by the worker's
    /// panic hook so the message sent back can name it.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook of a worker process: record the location instead of
/// printing, since the panic travels back to the parent as an error.
pub(crate) fn install_worker_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let loc = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        PANIC_LOCATION.with(|p| *p.borrow_mut() = loc);
    }));
}

pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    };
    match PANIC_LOCATION.with(|p| p.borrow_mut().take()) {
        Some(loc) => format!("{msg} (at {loc})"),
        None => msg,
    }
}

/// # Safety
/// `func` must be the address of a `fn(A) -> R`.
unsafe fn apply_one<A: DeserializeOwned, R: Serialize>(
    func: usize,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    // SAFETY: `func` is the address of a `fn(A) -> R` (contract), and fn pointers
    // are address-sized.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let arg: A = decode_arg(std::any::type_name::<fn(A) -> R>(), input)?;
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(arg))).map_err(|p| Failure::panic(panic_message(p), None))?;
    *out = postcard::to_extend(&r, std::mem::take(out)).map_err(Failure::encode)?;
    Ok(())
}

/// # Safety
/// `func` must be the address of a `fn(A)`.
unsafe fn init_one<A: DeserializeOwned>(func: usize, input: &[u8], _out: &mut Vec<u8>) -> Result<(), Failure> {
    // SAFETY: `func` is the address of a `fn(A)` (contract).
    let f = unsafe { std::mem::transmute::<usize, fn(A)>(func) };
    let arg: A = decode_arg(std::any::type_name::<fn(A)>(), input)?;
    panic::catch_unwind(AssertUnwindSafe(|| f(arg))).map_err(|p| Failure::panic(panic_message(p), None))
}

/// # Safety
/// `func` must be the address of a `fn()`.
unsafe fn init_plain(func: usize, _input: &[u8], _out: &mut Vec<u8>) -> Result<(), Failure> {
    // SAFETY: `func` is the address of a `fn()` (contract).
    let f = unsafe { std::mem::transmute::<usize, fn()>(func) };
    panic::catch_unwind(f).map_err(|p| Failure::panic(panic_message(p), None))
}

/// A pool's initializer, Python's `initializer` and `initargs`, ready for
/// either start method.
#[derive(Clone)]
pub(crate) struct Initializer {
    /// Makes, in the parent, the call one forked worker runs: the argument is
    /// cloned for it (so shared handles travel as they do into any fork).
    pub(crate) for_fork: Arc<dyn Fn() -> ForkInit + Send + Sync>,
    /// What a spawned worker runs: `code` over the bytes of `encode`.
    pub(crate) code: Code,
    /// Encodes the argument for a spawned worker. Called while the process crate
    /// encodes the spawn request, so that `Shared` handles inside are exported.
    pub(crate) encode: Arc<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>,
}

/// An initializer call for a forked worker; the panic message if it panicked.
pub(crate) type ForkInit = Box<dyn FnOnce() -> Result<(), String> + Send>;

impl Initializer {
    /// `f()`.
    pub(crate) fn plain(f: fn()) -> Initializer {
        Initializer {
            for_fork: Arc::new(move || Box::new(move || panic::catch_unwind(f).map_err(panic_message)) as ForkInit),
            code: Code::init(f),
            encode: Arc::new(|| Ok(Vec::new())),
        }
    }

    /// `f(arg.clone())`.
    pub(crate) fn with<A>(f: fn(A), arg: A) -> Initializer
    where
        A: Serialize + DeserializeOwned + Clone + Send + 'static,
    {
        // The lock is taken only in the parent, to clone or encode the argument.
        let arg = Arc::new(Mutex::new(arg));
        let for_enc = arg.clone();
        Initializer {
            for_fork: Arc::new(move || {
                let a = sys::lock(&arg).clone();
                Box::new(move || panic::catch_unwind(AssertUnwindSafe(|| f(a))).map_err(panic_message)) as ForkInit
            }),
            code: Code::init_with(f),
            encode: Arc::new(move || {
                let a = sys::lock(&for_enc);
                postcard::to_allocvec(&*a).map_err(|e| format!("cannot encode the initializer's argument: {e}"))
            }),
        }
    }
}

impl std::fmt::Debug for Initializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initializer").field("code", &self.code).finish_non_exhaustive()
    }
}

/// Runs `call` over a decoded chunk, reporting which item panicked.
fn run_chunk<A: DeserializeOwned, R: Serialize>(
    task: &str,
    input: &[u8],
    out: &mut Vec<u8>,
    call: impl Fn(A) -> R,
) -> Result<(), Failure> {
    let args: Vec<A> = decode_chunk(task, input)?;
    let mut done = 0usize;
    let results = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut results = Vec::with_capacity(args.len());
        for a in args {
            results.push(call(a));
            done += 1;
        }
        results
    }))
    .map_err(|p| Failure::panic(panic_message(p), Some(done)))?;
    *out = postcard::to_extend(&results, std::mem::take(out)).map_err(Failure::encode)?;
    Ok(())
}

/// # Safety
/// `func` must be the address of a `fn(A) -> R`.
unsafe fn map_chunk<A: DeserializeOwned, R: Serialize>(
    func: usize,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    // SAFETY: `func` is the address of a `fn(A) -> R` (contract).
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    run_chunk(std::any::type_name::<fn(A) -> R>(), input, out, f)
}

/// # Safety
/// Always safe to call; `unsafe` only to fit [`Trampoline`]. `F` must be
/// zero-sized (checked at compile time by [`Code::starmap`]).
unsafe fn star_chunk<F: StarFn<Args, R>, Args: DeserializeOwned, R: Serialize>(
    _func: usize,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    const { assert!(std::mem::size_of::<F>() == 0) };
    // SAFETY: `F` is zero-sized, so there are no bytes to be invalid, and it is
    // `Copy`, so making one more value of it is no different from copying the
    // one the parent was given (a fn item or a closure without captures).
    let f: F = unsafe { std::mem::zeroed() };
    run_chunk(std::any::type_name::<F>(), input, out, |args: Args| f.call(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u64) -> u64 {
        x * 2
    }

    fn boom(x: u32) -> u32 {
        if x == 3 {
            panic!("three is right out");
        }
        x
    }

    fn run(code: Code, input: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        // SAFETY: the code came from `Code`'s constructors in this binary.
        unsafe { code.run(input, &mut out) }?;
        Ok(out)
    }

    #[test]
    fn offsets_round_trip() {
        let a = double as fn(u64) -> u64 as usize;
        assert_eq!(code_address(code_offset(a)), a);
    }

    #[test]
    fn apply_round_trip() {
        let out = run(Code::apply(double), &postcard::to_allocvec(&21u64).unwrap()).unwrap();
        assert_eq!(postcard::from_bytes::<u64>(&out).unwrap(), 42);
    }

    #[test]
    fn closure_without_captures_coerces() {
        let out = run(Code::apply::<String, usize>(|s| s.len()), &postcard::to_allocvec("four").unwrap()).unwrap();
        assert_eq!(postcard::from_bytes::<usize>(&out).unwrap(), 4);
    }

    #[test]
    fn map_chunk_round_trip() {
        let input = postcard::to_allocvec(&[1u64, 2, 3][..]).unwrap();
        let out = run(Code::map(double), &input).unwrap();
        assert_eq!(postcard::from_bytes::<Vec<u64>>(&out).unwrap(), vec![2, 4, 6]);
    }

    #[test]
    fn starmap_chunk_round_trip() {
        let input = postcard::to_allocvec(&[(1u64, 2u64), (3, 4)][..]).unwrap();
        let out = run(Code::starmap(|a: u64, b: u64| a * b), &input).unwrap();
        assert_eq!(postcard::from_bytes::<Vec<u64>>(&out).unwrap(), vec![2, 12]);
        let input = postcard::to_allocvec(&[(1u8, 2u16, 3u32)][..]).unwrap();
        let out = run(Code::starmap(|a: u8, b: u16, c: u32| a as u32 + b as u32 + c), &input).unwrap();
        assert_eq!(postcard::from_bytes::<Vec<u32>>(&out).unwrap(), vec![6]);
    }

    #[test]
    fn panic_names_the_item() {
        let input = postcard::to_allocvec(&[1u32, 2, 3, 4][..]).unwrap();
        let err = run(Code::map(boom), &input).unwrap_err();
        assert_eq!(err.item, Some(2));
        assert!(err.message.contains("three is right out"), "{}", err.message);
    }

    fn strict_init(s: String) {
        assert_eq!(s, "go", "wrong argument");
    }

    fn plain_init() {
        panic!("plain init ran");
    }

    #[test]
    fn init_code_runs_with_its_argument() {
        let code = Code::init_with(strict_init);
        assert_eq!(run(code, &postcard::to_allocvec("go").unwrap()), Ok(Vec::new()));
        let err = run(code, &postcard::to_allocvec("stop").unwrap()).unwrap_err();
        assert!(err.message.contains("wrong argument"), "{}", err.message);
        let err = run(Code::init(plain_init), &[]).unwrap_err();
        assert!(err.message.contains("plain init ran"), "{}", err.message);
        let init = Initializer::with(strict_init, "go".to_string());
        assert_eq!((init.for_fork)()(), Ok(()));
        assert_eq!(run(init.code, &(init.encode)().unwrap()), Ok(Vec::new()));
    }

    #[test]
    fn bad_argument_is_a_failure_not_a_panic() {
        let err = run(Code::apply(double), &[0xff]).unwrap_err();
        assert!(err.message.contains("decode"), "{}", err.message);
        let arg = err.argument.expect("an argument failure");
        assert_eq!((arg.task.as_str(), arg.len), ("fn(u64) -> u64", 1));
        assert!(matches!(arg.cause, ArgumentError::Format(_)), "{:?}", arg.cause);
    }

    #[test]
    fn a_chunk_names_the_item_that_does_not_decode() {
        // Three items: 5, 6, then a varint cut short.
        let err = run(Code::map(double), &[3, 5, 6, 0xff]).unwrap_err();
        assert_eq!(err.item, Some(2));
        assert_eq!(err.argument.map(|a| a.len), Some(4));
    }

    #[test]
    fn a_podvec_of_another_element_type_is_a_payload_error() {
        fn sum(v: mproc_ipc::PodVec<u32>) -> u32 {
            v.iter().sum()
        }
        let input = postcard::to_allocvec(&mproc_ipc::PodVec::from(vec![1.5f64, 2.5])).unwrap();
        let err = run(Code::apply(sum), &input).unwrap_err();
        let arg = err.argument.expect("an argument failure");
        assert!(arg.task.contains("PodVec<u32>"), "{}", arg.task);
        assert_eq!(arg.len, input.len());
        assert!(
            matches!(
                arg.cause,
                ArgumentError::Payload(mproc_ipc::PayloadError::ElementSize { expected: 4, got: 8, .. })
            ),
            "{:?}",
            arg.cause
        );
    }
}
