//! Why a ResNet could not be loaded or run: every variant names the file, tensor key or input.

use std::path::PathBuf;

/// A ResNet weights file or input that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResnetError {
    /// The weights file could not be read as a state_dict.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file holds another architecture's weights.
    #[error("{path} holds the weights of {found}, not {expected}: pass --backbone {found} (or train.model.depth) or the {expected} weights")]
    OtherArchitecture {
        /// The file.
        path: PathBuf,
        /// What the keys describe (`resnet50`, or the blocks found).
        found: String,
        /// The architecture asked for (`resnet18`).
        expected: String,
    },
    /// Keys the architecture needs are absent.
    #[error("{path}: {n} tensor(s) of {arch} missing: {}", list(keys))]
    MissingKeys {
        /// The file.
        path: PathBuf,
        /// The architecture.
        arch: String,
        /// How many.
        n: usize,
        /// The missing keys (torchvision's names; the first 10).
        keys: Vec<String>,
    },
    /// Keys that are not part of the architecture (nor its known unused parts).
    #[error("{path}: {n} tensor(s) not part of {arch}: {}", list(keys))]
    UnexpectedKeys {
        /// The file.
        path: PathBuf,
        /// The architecture.
        arch: String,
        /// How many.
        n: usize,
        /// The unexpected keys (the first 10).
        keys: Vec<String>,
    },
    /// A tensor of the wrong shape, dtype or with non-finite values.
    #[error("{path}: tensor `{key}` has {found}, {arch} expects {expected}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The key as the file spells it.
        key: String,
        /// The architecture.
        arch: String,
        /// What the file holds.
        found: String,
        /// What is needed.
        expected: String,
    },
    /// An input batch the backbone cannot take.
    #[error("{what}: shape {shape:?}: {reason}")]
    Input {
        /// The input (file name).
        what: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Why it is refused.
        reason: String,
    },
}

fn list(keys: &[String]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}
