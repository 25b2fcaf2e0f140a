//! # margin-models — encoders on Burn
//!
//! The networks margin trains ([`EmbeddingNet`]: ConvNet-4 for images, an MLP for
//! feature vectors), built from their architecture as data ([`margin_data::ModelConfig`],
//! via [`BuildEncoder`]); the fused CPU kernels ConvNet-4 runs on Burn's `flex` backend
//! ([`kernels`]); saving and loading weights ([`weights`]); embedding a dataset
//! ([`embed()`]); pretrained sentence encoders (sentence-transformers folders, BERT) in
//! [`text`].
//!
//! Adding an encoder: a variant of `ModelConfig` (margin-data, `card.rs`), its module
//! here (one file), and its arm in [`BuildEncoder::init`] and [`EmbeddingNet::forward_flat`].

#![warn(missing_docs)]

mod embed;
mod encoder;
mod finite;
pub mod kernels;
pub mod text;
pub mod weights;

pub use embed::{embed, l2_normalize_rows};
pub use finite::{BadParameter, first_non_finite_parameter};
pub use encoder::{BuildEncoder, ConvBlock, ConvNet4, EmbeddingNet, Mlp};

/// Why a model could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration or file error from margin-data.
    #[error(transparent)]
    Data(#[from] margin_data::DataError),
    /// A sentence encoder that cannot be loaded or run.
    #[error(transparent)]
    Text(#[from] text::TextError),
    /// A weight file that cannot be used.
    #[error("{path}: {reason}")]
    Weights {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}
