//! The crate's error type.
//!
//! Every variant that concerns user data names the input it is about (the name
//! given to [`Embeddings::new`](crate::Embeddings::new) or
//! [`Labelled::new`](crate::Labelled::new), e.g. `"--embeddings E.npy"`), and
//! where it applies the offending row, so that a message can be acted on
//! without a debugger. Nothing in this crate panics on user data: bad input is
//! always one of these errors.

use std::path::PathBuf;

/// Everything that can go wrong while evaluating embeddings.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A value is NaN or infinite.
    #[error("{input}: row {row}, column {column} is {value} (all values must be finite)")]
    NonFinite {
        /// Name of the input.
        input: String,
        /// Row (sample) index, 0-based.
        row: usize,
        /// Column (feature) index, 0-based.
        column: usize,
        /// The offending value.
        value: f64,
    },
    /// The squared norm of a row does not fit the floating-point type, so
    /// distances would overflow.
    #[error("{input}: row {row} is too large (its squared norm overflows)")]
    Overflow {
        /// Name of the input.
        input: String,
        /// Row index, 0-based.
        row: usize,
    },
    /// An input has no rows, no columns or no elements of a needed kind.
    #[error("{input} is empty: {what}")]
    Empty {
        /// Name of the input.
        input: String,
        /// What is missing.
        what: String,
    },
    /// A flat buffer's length is not `rows × dim`.
    #[error("{input}: {len} values cannot be split into rows of dimension {dim}")]
    Shape {
        /// Name of the input.
        input: String,
        /// Number of values given.
        len: usize,
        /// Declared dimension.
        dim: usize,
    },
    /// Query and reference have different dimensions.
    #[error(
        "dimension mismatch: {query} has dimension {query_dim} but {reference} has dimension {reference_dim}"
    )]
    DimensionMismatch {
        /// Name of the query input.
        query: String,
        /// Query dimension.
        query_dim: usize,
        /// Name of the reference input.
        reference: String,
        /// Reference dimension.
        reference_dim: usize,
    },
    /// The number of labels differs from the number of embedding rows.
    #[error("{labels} has {n_labels} labels but {embeddings} has {rows} rows")]
    LabelCount {
        /// Name of the labels input.
        labels: String,
        /// Number of labels.
        n_labels: usize,
        /// Name of the embeddings input.
        embeddings: String,
        /// Number of rows.
        rows: usize,
    },
    /// More neighbours were asked for than the reference set can supply.
    #[error("k = {k} is larger than the {available} candidate neighbours in {input}")]
    KTooLarge {
        /// Requested k.
        k: usize,
        /// Number of candidates per query (reference rows, minus one when a
        /// query's own row is excluded).
        available: usize,
        /// Name of the reference input.
        input: String,
    },
    /// A parameter is out of its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The data is valid but too small for what was asked (e.g. fewer
    /// classes than ways in a few-shot episode).
    #[error("{input}: {reason}")]
    NotEnoughData {
        /// Name of the input.
        input: String,
        /// What is lacking.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is not in the expected format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> EvalError {
    EvalError::InvalidParameter {
        name: name.to_string(),
        reason: reason.into(),
    }
}
