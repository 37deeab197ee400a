//! `PickleError`: what went wrong, naming the bad value.

/// An error from encoding or decoding a pickle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The pickle is longer than the cap the caller set; nothing was decoded.
    #[error("pickle of {len} bytes exceeds the cap of {cap} bytes")]
    TooLarge {
        /// The pickle's length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// The pickle names a global that is not on the allow-list (nothing is ever imported).
    #[error("pickle names the global {module}.{name}, which is not on the allow-list")]
    ForbiddenGlobal {
        /// The global's module, e.g. `os`.
        module: String,
        /// The global's name, e.g. `system`.
        name: String,
    },
    /// An allow-listed global used in a way this codec does not build (e.g. `set` called
    /// with an argument that is not a list).
    #[error("cannot build {module}.{name} from {args}")]
    BadReduce {
        /// The global's module.
        module: String,
        /// The global's name.
        name: String,
        /// A description of the arguments it was given.
        args: String,
    },
    /// A byte that is no pickle opcode.
    #[error("unknown pickle opcode {opcode:#04x} at byte {offset}")]
    UnknownOpcode {
        /// The byte.
        opcode: u8,
        /// Where it is.
        offset: usize,
    },
    /// An opcode this codec refuses (persistent ids, the extension registry, out-of-band
    /// buffers): each would call into code the pickle's writer chose.
    #[error("pickle opcode {opcode} at byte {offset} is not supported")]
    UnsupportedOpcode {
        /// The opcode's name in `pickletools`.
        opcode: &'static str,
        /// Where it is.
        offset: usize,
    },
    /// A protocol newer than 5.
    #[error("pickle protocol {0} is not supported (0 to 5 are)")]
    UnsupportedProtocol(u8),
    /// The pickle ends before its `STOP` opcode or inside an argument.
    #[error("pickle ends early at byte {offset}")]
    Truncated {
        /// The length of the input.
        offset: usize,
    },
    /// A well-formed opcode that makes no sense where it is.
    #[error("malformed pickle at byte {offset}: {reason}")]
    Malformed {
        /// Where.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Decoding would take more memory than the budget (shared references expand when the
    /// tree is built).
    #[error("decoding needs more than the memory budget of {budget} bytes")]
    MemoryBudget {
        /// The budget.
        budget: usize,
    },
    /// Values nested deeper than [`crate::MAX_DEPTH`].
    #[error("pickle nests values deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A structure that contains itself (`l = []; l.append(l)`): a tree cannot hold it.
    #[error("pickle holds a structure that contains itself (memo entry {memo})")]
    Recursive {
        /// The memo entry that refers back to itself.
        memo: u32,
    },
    /// A value that does not fit the Rust type asked for, or a Rust value with no pickle
    /// form, or a message from a `Serialize`/`Deserialize` impl.
    #[error("{0}")]
    Serde(String),
}

/// The crate's result type.
pub type Result<T, E = PickleError> = std::result::Result<T, E>;

impl serde::de::Error for PickleError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        PickleError::Serde(msg.to_string())
    }

    /// serde's message, built without the formatting machinery where it can be: serde's
    /// untagged enums make (and drop) one of these for every variant that does not match,
    /// so its cost shows in every typed decode of one.
    fn invalid_type(unexp: serde::de::Unexpected, exp: &dyn serde::de::Expected) -> Self {
        use std::fmt::Write;
        let mut msg = String::with_capacity(64);
        msg.push_str("invalid type: ");
        match unexp {
            serde::de::Unexpected::Str(s) => {
                msg.push_str("string \"");
                msg.push_str(s);
                msg.push('"');
            }
            other => {
                let _ = write!(msg, "{other}");
            }
        }
        msg.push_str(", expected ");
        let _ = write!(msg, "{exp}");
        PickleError::Serde(msg)
    }
}

impl serde::ser::Error for PickleError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        PickleError::Serde(msg.to_string())
    }
}
