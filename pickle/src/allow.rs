//! The allow-list: the only globals a pickle may name here, and what each one builds.
//!
//! A pickle names a class or function as `module.name` (opcodes `GLOBAL`, `STACK_GLOBAL`,
//! `INST`) and then calls it (`REDUCE`, `NEWOBJ`, `OBJ`). This codec never imports or calls
//! anything: each allowed name maps to a constructor written here, and any other name is
//! [`PickleError::ForbiddenGlobal`](crate::PickleError::ForbiddenGlobal) before anything
//! after it is read. Python 2 spellings (`__builtin__`, `exceptions`, `Queue`), which
//! CPython writes for protocols 0–2, and `_queue` (where `queue.Empty` is defined) are read
//! as the Python 3 names `builtins` and `queue`.

use crate::managed::{MANAGERS, PROXY_TYPES};

/// Exception classes a pickle may carry, as `(module, name)`: those a manager replies with
/// (`KeyError` from a dict, `IndexError` from a list, `queue.Empty` from `get_nowait` …).
/// Each one decodes to, and encodes from,
/// [`Value::Exception`](crate::Value::Exception).
pub const ALLOWED_EXCEPTIONS: &[(&str, &str)] = &[
    ("builtins", "BaseException"),
    ("builtins", "Exception"),
    ("builtins", "ArithmeticError"),
    ("builtins", "AssertionError"),
    ("builtins", "AttributeError"),
    ("builtins", "BrokenPipeError"),
    ("builtins", "BufferError"),
    ("builtins", "ConnectionError"),
    ("builtins", "ConnectionRefusedError"),
    ("builtins", "ConnectionResetError"),
    ("builtins", "EOFError"),
    ("builtins", "FileExistsError"),
    ("builtins", "FileNotFoundError"),
    ("builtins", "IndexError"),
    ("builtins", "KeyError"),
    ("builtins", "LookupError"),
    ("builtins", "MemoryError"),
    ("builtins", "NameError"),
    ("builtins", "NotImplementedError"),
    ("builtins", "OSError"),
    ("builtins", "OverflowError"),
    ("builtins", "PermissionError"),
    ("builtins", "RuntimeError"),
    ("builtins", "StopIteration"),
    ("builtins", "TimeoutError"),
    ("builtins", "TypeError"),
    ("builtins", "ValueError"),
    ("builtins", "ZeroDivisionError"),
    ("queue", "Empty"),
    ("queue", "Full"),
    // A manager's `Barrier` raises it (a `RuntimeError` subclass).
    ("threading", "BrokenBarrierError"),
];

/// Other allowed globals, as `(module, name)`: the reconstructors CPython writes for
/// builtin types that have no opcode of their own in older protocols.
///
/// - `builtins.set`, `builtins.frozenset` (protocols 0–3: `set([items])`);
/// - `builtins.bytearray` (protocols 0–4: `bytearray(b'…')`, or `bytearray('…', 'latin-1')`);
/// - `builtins.bytes` (protocols 0–2, empty bytes: `bytes()`);
/// - `_codecs.encode` (protocols 0–2, bytes: `_codecs.encode('…', 'latin1')`);
/// - `array._array_reconstructor` with `array.array` as its first argument (protocols
///   3–5, `array.array`: the class is only matched as that argument, never called; see
///   [`Value::Array`](crate::Value::Array)).
pub const ALLOWED_RECONSTRUCTORS: &[(&str, &str)] = &[
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("_codecs", "encode"),
    ("array", "_array_reconstructor"),
    ("array", "array"),
];

/// The globals of `multiprocessing.managers` a pickle may name, as `(module, name)`: the
/// two a manager reference is made of, read into [`Token`](crate::Token) and
/// [`Proxy`](crate::Proxy) without calling either.
///
/// - `Token` (a proxy's target: `NEWOBJ` with no arguments, then `BUILD` with
///   `(typeid, address, id)`);
/// - `RebuildProxy` (a pickled proxy: `RebuildProxy(proxytype, token, serializer, kwds)`);
///
/// and, only as `RebuildProxy`'s first argument, the proxy types in
/// [`PROXY_TYPES`](crate::PROXY_TYPES).
pub const ALLOWED_MANAGER_GLOBALS: &[(&str, &str)] =
    &[("multiprocessing.managers", "Token"), ("multiprocessing.managers", "RebuildProxy")];

/// A resolved allow-listed global.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Global {
    Set,
    FrozenSet,
    ByteArray,
    Bytes,
    CodecsEncode,
    ArrayReconstructor,
    /// `array.array`, only accepted as the first argument of `ArrayReconstructor`.
    ArrayClass,
    /// An exception class, module and name in their Python 3 spelling.
    Exception(&'static str, &'static str),
    /// `multiprocessing.managers.Token`.
    Token,
    /// `multiprocessing.managers.RebuildProxy`.
    RebuildProxy,
    /// A proxy type of `multiprocessing.managers` (only an argument of `RebuildProxy`).
    ProxyType(&'static str),
}

impl Global {
    /// The global's `(module, name)`, for error messages.
    pub(crate) fn name(&self) -> (&'static str, &'static str) {
        match self {
            Global::Set => ("builtins", "set"),
            Global::FrozenSet => ("builtins", "frozenset"),
            Global::ByteArray => ("builtins", "bytearray"),
            Global::Bytes => ("builtins", "bytes"),
            Global::CodecsEncode => ("_codecs", "encode"),
            Global::ArrayReconstructor => ("array", "_array_reconstructor"),
            Global::ArrayClass => ("array", "array"),
            Global::Exception(module, name) => (module, name),
            Global::Token => (MANAGERS, "Token"),
            Global::RebuildProxy => (MANAGERS, "RebuildProxy"),
            Global::ProxyType(name) => (MANAGERS, name),
        }
    }
}

/// The Python 3 spelling of a module CPython may write under its Python 2 name.
fn python3_module(module: &str) -> &str {
    match module {
        "__builtin__" | "exceptions" => "builtins",
        // `queue.Empty` is the C class `_queue.Empty`, and CPython writes it so.
        "Queue" | "_queue" => "queue",
        other => other,
    }
}

/// Resolves `module.name` against the allow-list; `None` when it is not on it.
pub(crate) fn resolve(module: &str, name: &str) -> Option<Global> {
    let module = python3_module(module);
    let global = match (module, name) {
        ("builtins", "set") => Global::Set,
        ("builtins", "frozenset") => Global::FrozenSet,
        ("builtins", "bytearray") => Global::ByteArray,
        ("builtins", "bytes") => Global::Bytes,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("array", "_array_reconstructor") => Global::ArrayReconstructor,
        ("array", "array") => Global::ArrayClass,
        (MANAGERS, "Token") => Global::Token,
        (MANAGERS, "RebuildProxy") => Global::RebuildProxy,
        (MANAGERS, name) => Global::ProxyType(PROXY_TYPES.iter().find(|&&t| t == name)?),
        _ => {
            let &(m, n) = ALLOWED_EXCEPTIONS.iter().find(|&&(m, n)| m == module && n == name)?;
            Global::Exception(m, n)
        }
    };
    Some(global)
}

/// Whether `module.name` is an allowed exception class (the encoder's check).
pub(crate) fn is_allowed_exception(module: &str, name: &str) -> bool {
    ALLOWED_EXCEPTIONS.iter().any(|&(m, n)| m == module && n == name)
}
