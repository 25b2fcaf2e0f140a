//! The crate's error type: every variant about user data names the input (a file, or the
//! name the caller gave a buffer: `"--gallery G.npy"`), and the row, line, field, section or
//! shape at fault, so a message can be acted on without a debugger. Nothing in this crate
//! panics on user data.

use std::path::PathBuf;

/// Everything that can go wrong while building, searching, saving or opening an index.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A value is NaN or infinite.
    #[error("{input}: row {row}, column {column} is {value} (all values must be finite)")]
    NonFinite {
        /// Name of the input.
        input: String,
        /// Row, 0-based.
        row: usize,
        /// Column, 0-based.
        column: usize,
        /// The value.
        value: f64,
    },
    /// Every value is finite but the row's squared norm overflows `f32`.
    #[error("{input}: row {row} is too large (its squared norm overflows f32; largest |value| {max_abs:e})")]
    Overflow {
        /// Name of the input.
        input: String,
        /// Row, 0-based.
        row: usize,
        /// The row's largest absolute value.
        max_abs: f64,
    },
    /// A value does not fit the storage precision (f16: |x| ≤ 65504).
    #[error("{input}: row {row}, column {column} is {value}, beyond {precision}'s range (store the index as f32 or i8)")]
    OutOfRange {
        /// Name of the input.
        input: String,
        /// Row, 0-based.
        row: usize,
        /// Column, 0-based.
        column: usize,
        /// The value.
        value: f64,
        /// The storage precision.
        precision: &'static str,
    },
    /// A flat buffer's length is not a whole number of rows.
    #[error("{input}: {len} values cannot be split into rows of dimension {dim}")]
    Shape {
        /// Name of the input.
        input: String,
        /// Number of values.
        len: usize,
        /// The dimension.
        dim: usize,
    },
    /// An input with nothing in it where something is needed.
    #[error("{input} is empty: {what}")]
    Empty {
        /// Name of the input.
        input: String,
        /// What is missing.
        what: String,
    },
    /// Vectors of another dimension than the index's.
    #[error("dimension mismatch: {input} has dimension {found} but the index has dimension {expected}")]
    DimensionMismatch {
        /// Name of the input (or the index file).
        input: String,
        /// The index's dimension.
        expected: usize,
        /// The input's dimension.
        found: usize,
    },
    /// A bad line in an ids file.
    #[error("{input}: line {line}: {reason}")]
    Ids {
        /// Name of the ids input.
        input: String,
        /// Line, 1-based.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Ids and vectors disagree in number.
    #[error("{ids} has {n_ids} ids but {vectors} has {rows} rows")]
    IdCount {
        /// Name of the ids input.
        ids: String,
        /// Number of ids.
        n_ids: usize,
        /// Name of the vectors input.
        vectors: String,
        /// Number of rows.
        rows: usize,
    },
    /// An id that is already in the index.
    #[error("{input}: id {id:?} (row {row}) is already in the index")]
    DuplicateId {
        /// Name of the input.
        input: String,
        /// The id.
        id: String,
        /// Its row in the input.
        row: usize,
    },
    /// An id to remove that is not in the index.
    #[error("id {id:?} is not in the index")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// More neighbours than candidates.
    #[error("k = {k} is larger than the {available} candidates in {input}")]
    KTooLarge {
        /// Requested k.
        k: usize,
        /// Candidates (live items passing the filter).
        available: usize,
        /// What was searched.
        input: String,
    },
    /// A parameter out of its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A tag filter on an index built without tags, or tags of the wrong count.
    #[error("{input}: {reason}")]
    Tags {
        /// Name of the input.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "rename … to").
        op: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An index file that is truncated, corrupted or not an index file.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong (the section and offset where it applies).
        reason: String,
    },
    /// An index file written by a newer format version.
    #[error("{path}: index format version {found} is newer than this release reads (up to {supported}); upgrade margin")]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// The file's version.
        found: u32,
        /// The newest version this release reads.
        supported: u32,
    },
    /// An index built from another model's vectors.
    #[error("{path}: the index was built by model {found:?}, not {expected:?} (re-index with this model)")]
    ModelMismatch {
        /// The file.
        path: PathBuf,
        /// The caller's fingerprint.
        expected: String,
        /// The index's fingerprint.
        found: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> SearchError {
    SearchError::InvalidParameter { name: name.to_string(), reason: reason.into() }
}
