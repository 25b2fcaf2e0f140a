//! The library's error type: every failure names the input and its shape.

use thiserror::Error;

/// Why a margin operation refused its input.
///
/// Library functions never panic on user data; they return one of these, and
/// the message always names the offending input (`"embeddings"`, `"labels"`,
/// `"anchor"`, ...) together with the shape or index involved.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MarginError {
    /// A value is NaN or infinite.
    #[error("{input} has a non-finite value ({value}) at row {row}, column {col} (shape {shape:?})")]
    NonFinite {
        /// Which input.
        input: &'static str,
        /// Row of the first bad value.
        row: usize,
        /// Column of the first bad value.
        col: usize,
        /// The value itself (NaN, inf or -inf).
        value: f64,
        /// Shape of the input.
        shape: Vec<usize>,
    },
    /// Every value of a row is finite but its squared norm overflows the element type,
    /// so its distances would be inf or NaN.
    #[error("{input}: row {row} is too large for {dtype} (values up to {max_abs:e}; its squared norm overflows, so every distance of it would be inf or NaN; shape {shape:?}): scale the embeddings down, or compute in f64")]
    Overflow {
        /// Which input.
        input: &'static str,
        /// The row.
        row: usize,
        /// Its largest absolute value.
        max_abs: f64,
        /// The element type (`f32`, `f64`).
        dtype: String,
        /// Shape of the input.
        shape: Vec<usize>,
    },
    /// The number of labels differs from the number of embedding rows.
    #[error("{labels_input} has {labels} labels but {input} has {rows} rows (shape {shape:?})")]
    LabelCount {
        /// Name of the embeddings input.
        input: &'static str,
        /// Name of the labels input.
        labels_input: &'static str,
        /// Number of labels given.
        labels: usize,
        /// Number of embedding rows.
        rows: usize,
        /// Shape of the embeddings.
        shape: Vec<usize>,
    },
    /// An input has a zero-sized dimension where at least one element is needed.
    #[error("{input} has an empty dimension (shape {shape:?}): {what}")]
    Empty {
        /// Which input.
        input: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// What was expected.
        what: &'static str,
    },
    /// Two inputs that must agree in shape do not.
    #[error("{input} has shape {got:?} but {expected_from} has shape {expected:?}")]
    ShapeMismatch {
        /// The input whose shape is wrong.
        input: &'static str,
        /// Its shape.
        got: Vec<usize>,
        /// The input it is compared with.
        expected_from: &'static str,
        /// The shape it should have had.
        expected: Vec<usize>,
    },
    /// An index tuple points outside the batch.
    #[error("{input}[{position}] = {index} is out of range for a batch of {bound} rows")]
    IndexOutOfRange {
        /// Which index array (`"triplets.anchor"`, `"similar"`, ...).
        input: &'static str,
        /// Position in that array.
        position: usize,
        /// The offending index.
        index: usize,
        /// Number of rows it indexes into.
        bound: usize,
    },
    /// Index arrays that must have the same length do not.
    #[error("{input} has {got} entries but {expected_from} has {expected}")]
    LengthMismatch {
        /// The array whose length is wrong.
        input: &'static str,
        /// Its length.
        got: usize,
        /// The array it is compared with.
        expected_from: &'static str,
        /// The expected length.
        expected: usize,
    },
    /// A configuration value is outside its domain.
    #[error("invalid configuration: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The field name, as in the config struct.
        field: &'static str,
        /// The value given, printed.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A label is not a class of a loss with per-class parameters (class weights, proxies).
    #[error("{input}[{position}] = {label} is not a class of this loss: it holds parameters for {num_classes} classes, labels 0..{num_classes} (class indices into the training set's class table)")]
    LabelOutOfRange {
        /// Which labels.
        input: &'static str,
        /// Position of the first bad label.
        position: usize,
        /// The label.
        label: i64,
        /// Number of classes the loss holds parameters for.
        num_classes: usize,
    },
    /// A combination of options that has no defined meaning.
    #[error("unsupported combination: {0}")]
    Unsupported(String),
}

/// Shorthand for `Result<T, MarginError>`.
pub type Result<T> = std::result::Result<T, MarginError>;
