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
//!
//! ConvNet-4 is `[conv3x3 kernel → fused BN/ReLU/pool] × 4 → linear`. Also:
//! `check_embeddings` (unusable embeddings blamed on the weights, the input row or an overflow;
//! shared by `margin embed` and `margin.Model`). `text`: a sentence-transformers folder (BERT +
//! pooling + normalise) loaded by Hugging Face key names and tokenised by Hugging Face's
//! `tokenizers`. `resnet`: torchvision ResNet-18/34/50 (blocks, stages, backbone to the pooled
//! features, embedding head, freezing) loaded from torchvision `state_dict`s (`.pth` through
//! burn-store's PyTorch reader, `.safetensors`) by torchvision key names, pinned by torchvision
//! golden features.
//!
//! A pretrained text encoder is not a `ModelConfig` (its architecture is the folder's
//! `config.json`): `margin_models::text::SentenceEncoder::load(folder)` reads a
//! sentence-transformers folder (`modules.json`: Transformer → Pooling → optional Normalize); a
//! new module type or architecture is one file in `margin-models/src/text/` plus its arm in
//! `sentence.rs`, pinned by golden outputs of sentence-transformers (`tests/text_golden.rs`). A
//! fine-tuned text encoder is saved back as a sentence-transformers folder (`text/export.rs`:
//! burn-store's PyTorch adapter + key remapping to Hugging Face names, pinned by a bit-exact round
//! trip through the loader), with margin-data's `TextModelCard` (`text_model.json`) beside it
//! instead of `model.json`.
//!
//! A pretrained image backbone is a `ModelConfig` variant holding its own section
//! (`ModelConfig::Resnet(ResnetConfig)`, in `margin-data/src/backbone.rs`: depth, `weights`,
//! `head`, `freeze`): `BuildEncoder::init` builds the architecture (what a saved model's weights
//! load into), `init_pretrained` also reads `weights` (how a run starts). Its module
//! (`margin-models/src/resnet/`) keeps torchvision's field names, so one walk over it (`keys.rs`)
//! gives the expected `state_dict` keys, the loader's assignments and the export; every conv →
//! BatchNorm (→ ReLU) goes through `resnet/ops.rs`, the one place for a faster kernel. The budget
//! (`margin_train::budget`) counts its parameters and activations, the head's learning-rate
//! multiplier is a Burn parameter group (`margin-train/src/head_lr.rs`). Pinned by torchvision
//! golden features (`margin-models/tests/resnet_golden.rs`).

#![warn(missing_docs)]

mod embed;
mod encoder;
mod finite;
pub mod kernels;
pub mod resnet;
pub mod text;
pub mod weights;

pub use embed::{embed, embed_views, l2_normalize_rows};
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
