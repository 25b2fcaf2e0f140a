//! # margin-models — encoders on Burn
//!
//! The networks margin trains ([`EmbeddingNet`]: ConvNet-4 for images, an MLP for
//! feature vectors), built from their architecture as data ([`margin_data::ModelConfig`],
//! via [`BuildEncoder`]); the fused CPU kernels ConvNet-4 runs on Burn's `flex` backend
//! ([`kernels`]); saving and loading weights ([`weights`]); embedding a dataset
//! ([`embed()`]); pretrained sentence encoders (sentence-transformers folders, BERT) in
//! [`text`]; torchvision ResNet-18/34/50 backbones loaded from `state_dict` files in
//! [`resnet`].
//!
//! Dependencies, and why: Burn (the networks; `store` reads safetensors and, with `pytorch`,
//! PyTorch `.bin` checkpoints by tensor name, so no converter is needed); `gemm` (the same
//! GEMM Burn's flex uses, for the 3×3 convolution kernel); `tokenizers` (Hugging Face's own
//! tokenizer library: it reads `tokenizer.json` exactly as sentence-transformers does, where a
//! hand-written WordPiece would drift on accents, CJK, control characters and special-token
//! text; built without default features, with the pure-Rust `fancy-regex` engine it requires,
//! so no C library (oniguruma) or C++ (esaxx) is compiled and nothing is fetched at run
//! time); `serde_json` (the model folder's JSON files, read field by field to name fields in
//! errors); `thiserror` (the error enums).
//!
//! Adding an encoder: a variant of `ModelConfig` (margin-data, `card.rs`), its module
//! here (one file), and its arm in [`BuildEncoder::init`] and [`EmbeddingNet::forward_flat`].

#![warn(missing_docs)]

mod embed;
mod encoder;
mod finite;
pub mod kernels;
pub mod resnet;
pub mod text;
pub mod weights;

pub use embed::{embed, l2_normalize_rows};
pub use finite::{BadParameter, EmbeddingFault, check_embeddings, first_non_finite_parameter};
pub use encoder::{BuildEncoder, ConvBlock, ConvNet4, EmbeddingNet, Mlp};

/// Why a model could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration or file error from margin-data.
    #[error(transparent)]
    Data(#[from] margin_data::DataError),
    /// A ResNet weights file or input that cannot be used.
    #[error(transparent)]
    Resnet(#[from] resnet::ResnetError),
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
