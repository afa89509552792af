//! Errors for malformed epoch inputs and test-vector files.

/// Why an epoch input or a vector file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not valid JSON, or a value has the wrong JSON type / is out of range.
    #[error("{context}: {source}")]
    Json {
        /// Where in the document the problem was found.
        context: String,
        /// The underlying parser error (it names the missing field or bad value).
        #[source]
        source: serde_json::Error,
    },
    /// A required top-level member is missing from the vector file.
    #[error("{context}: missing field `{field}`")]
    MissingField {
        /// Where in the document the member was expected.
        context: String,
        /// The member's name.
        field: &'static str,
    },
    /// `meta.kind` is neither `single` nor `sequence`.
    #[error("unknown vector kind `{0}` (expected `single` or `sequence`)")]
    UnknownKind(String),
    /// A per-uid array does not have `n` entries.
    #[error("`{field}` has {actual} entries but n = {expected}")]
    LengthMismatch {
        /// The input field.
        field: &'static str,
        /// `n`.
        expected: usize,
        /// The field's length.
        actual: usize,
    },
    /// A sparse row lists the same column twice (the chain never stores such rows).
    #[error("`{field}` row {row} lists column {column} more than once")]
    DuplicateColumn {
        /// The input field (`weights` or `bonds_prev`).
        field: &'static str,
        /// Row (uid) index.
        row: usize,
        /// The repeated column uid.
        column: u16,
    },
    /// An error inside one step of a `sequence` file.
    #[error("step {step}: {source}")]
    Step {
        /// Index of the step in `steps`.
        step: usize,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
}
