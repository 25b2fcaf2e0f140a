//! Why a sentence encoder could not be loaded or run. Every variant names the input it is
//! about (the file, the field or tensor key, the input sentence's position), so a user
//! with a broken or unsupported model folder knows which file to look at.

use std::path::PathBuf;

/// Why a sentence-transformers folder could not be loaded, or a sentence not encoded.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A file that could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file that does not parse as what it should hold.
    #[error("{path}: not a valid {what}: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the file should be (`modules.json (a list of modules)`).
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// The folder is not a sentence-transformers model.
    #[error("{folder}: not a sentence-transformers model folder: {reason}")]
    NotSentenceTransformers {
        /// The folder.
        folder: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// `modules.json` names a module this release does not implement, or puts them in an
    /// order it cannot run.
    #[error("{path}: module {module:?} is not supported ({reason})")]
    UnsupportedModule {
        /// `modules.json`.
        path: PathBuf,
        /// The module's `type`.
        module: String,
        /// What is supported.
        reason: String,
    },
    /// A configuration field with a value this release refuses.
    #[error("{path}: field `{field}` = {value}: {reason}")]
    Config {
        /// The file (`config.json`, `1_Pooling/config.json`, …).
        path: PathBuf,
        /// The field as the file spells it.
        field: String,
        /// Its value as written.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// `tokenizer.json` that the tokenizers library cannot read or configure.
    #[error("{path}: not a usable tokenizer: {reason}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// The library's message.
        reason: String,
    },
    /// A weight file that cannot be read.
    #[error("{path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Tensors the configuration needs that the weight file lacks.
    #[error("{path}: missing {} tensor(s) the model in config.json needs: {}", keys.len(), keys.join(", "))]
    MissingKeys {
        /// The weight file.
        path: PathBuf,
        /// The keys, as the file would spell them.
        keys: Vec<String>,
    },
    /// Tensors in the weight file that belong to no part of the model.
    #[error("{path}: {} unexpected tensor(s), not part of a BERT encoder: {}", keys.len(), keys.join(", "))]
    UnexpectedKeys {
        /// The weight file.
        path: PathBuf,
        /// The keys as the file spells them.
        keys: Vec<String>,
    },
    /// A tensor whose shape or type does not match the configuration.
    #[error("{path}: tensor `{key}` has {found}, the model in config.json needs {expected}")]
    Tensor {
        /// The weight file.
        path: PathBuf,
        /// The key as the file spells it.
        key: String,
        /// What the file holds (`shape [384, 384]`, `dtype I64`).
        found: String,
        /// What was expected.
        expected: String,
    },
    /// An argument outside its rule (`batch_size`).
    #[error(transparent)]
    Argument(#[from] margin::MarginError),
    /// An input sentence that could not be encoded.
    #[error("sentence {index}: {reason}")]
    Input {
        /// Its position in the input.
        index: usize,
        /// What went wrong.
        reason: String,
    },
}

impl TextError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TextError::Io { path: path.into(), source }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        TextError::Config { path: path.into(), field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}

/// Reads and parses a JSON file, naming it on failure.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path, what: &'static str) -> Result<T, TextError> {
    let text = std::fs::read_to_string(path).map_err(|e| TextError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| TextError::Json { path: path.to_path_buf(), what, reason: e.to_string() })
}
