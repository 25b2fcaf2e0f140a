//! The model card (`model.json` in a run folder): what `margin embed`, search and the
//! Python bindings need to rebuild and use a trained model, without Burn.
//!
//! [`ModelConfig`] is the network's architecture as data (margin-models builds it);
//! [`ModelCard`] adds the input shape, the [`Preprocessing`] that turns raw inputs into
//! it, and whether embeddings are L2-normalised. Every card has a `version`; a loader
//! refuses a newer one with a message, and reads version-1 cards (no preprocessing).

use serde::{Deserialize, Serialize};

use crate::DataError;

/// Which network, with its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelConfig {
    /// Multi-layer perceptron on feature vectors: Linear → ReLU → … → Linear.
    Mlp {
        /// Hidden layer widths (may be empty: a linear map).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// Output embedding dimension.
        #[serde(default = "default_embedding_dim")]
        embedding_dim: usize,
        /// L2-normalise the output.
        #[serde(default)]
        normalize: bool,
    },
    /// ConvNet-4 on `[channels, h, w]` images.
    Convnet4 {
        /// Channels of every conv block.
        #[serde(default = "default_width")]
        width: usize,
        /// Output embedding dimension.
        #[serde(default = "default_embedding_dim")]
        embedding_dim: usize,
        /// L2-normalise the output.
        #[serde(default)]
        normalize: bool,
    },
    /// A torchvision ResNet backbone (18/34/50) with an embedding head, on `[3, h, w]` images
    /// (`crate::backbone`).
    Resnet(crate::backbone::ResnetConfig),
}

fn default_hidden() -> Vec<usize> {
    vec![128]
}
fn default_embedding_dim() -> usize {
    64
}
fn default_width() -> usize {
    64
}

impl ModelConfig {
    /// Output dimension.
    pub fn embedding_dim(&self) -> usize {
        match self {
            ModelConfig::Mlp { embedding_dim, .. } | ModelConfig::Convnet4 { embedding_dim, .. } => *embedding_dim,
            ModelConfig::Resnet(r) => r.head.embedding_dim,
        }
    }

    /// Checks the sizes against the input sample shape.
    pub fn validate(&self, sample_shape: &[usize]) -> Result<(), DataError> {
        let bad = |field: &'static str, value: String, reason: &'static str| Err(DataError::Config { field, value, reason });
        match self {
            ModelConfig::Mlp { hidden, embedding_dim, .. } => {
                if *embedding_dim == 0 || hidden.contains(&0) {
                    return bad("model.hidden/embedding_dim", format!("{hidden:?}/{embedding_dim}"), "sizes must be > 0");
                }
                if sample_shape.len() != 1 {
                    return bad("model.kind", format!("mlp on samples of shape {sample_shape:?}"), "the MLP needs feature vectors; use convnet4 for images");
                }
            }
            ModelConfig::Convnet4 { width, embedding_dim, .. } => {
                if *embedding_dim == 0 || *width == 0 {
                    return bad("model.width/embedding_dim", format!("{width}/{embedding_dim}"), "sizes must be > 0");
                }
                if sample_shape.len() != 3 || sample_shape[1] < 16 || sample_shape[2] < 16 {
                    return bad("model.kind", format!("convnet4 on samples of shape {sample_shape:?}"), "ConvNet-4 needs [channels, h, w] images with h, w >= 16");
                }
            }
            ModelConfig::Resnet(r) => r.validate(sample_shape)?,
        }
        Ok(())
    }

}

/// The model-card format this release writes; a card with a larger `version` is refused.
/// Version 1 (before this release): no `version` field, no `preprocessing`.
/// Version 3 adds `thresholds` (calibrated by `margin train`; absent in version 2).
/// Version 4 adds `tta` (test-time augmentation, `crate::tta`; absent: one view), which a
/// release that ignored it would silently embed differently with: older releases refuse it.
pub const MODEL_CARD_VERSION: u32 = 4;

/// How raw inputs become the model's input samples: recorded in the model card by
/// `margin train`, applied by `margin embed` (so nobody has to repeat `--invert` or
/// `--scale` by hand, or silently get wrong embeddings for forgetting them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Preprocessing {
    /// Grey images: grey levels in `[0, 1]` (1 = white; 8-bit files divided by 255),
    /// turned into ink `1 − grey` when `invert`, area-resized to `size × size`
    /// (sample shape `[1, size, size]`).
    GreyImage {
        /// Side of the model's input.
        size: usize,
        /// Ink = 1 − grey (dark drawings on light paper; Omniglot).
        invert: bool,
    },
    /// Pictures (photos): decoded, then prepared by the spec
    /// ([`crate::preprocess::ImagePreprocess`]: channels, resize, normalisation), sample
    /// shape `[channels, size, size]`. Cards with it read in every release that has it;
    /// older releases refuse the unknown `kind` by name.
    Image(crate::preprocess::ImagePreprocess),
    /// Feature vectors of `dim` values, each divided by `scale`.
    Features {
        /// Values per sample.
        dim: usize,
        /// Divisor applied to every value (1: none).
        scale: f64,
    },
}

impl Preprocessing {
    /// The sample shape this preprocessing produces.
    pub fn sample_shape(&self) -> Vec<usize> {
        match *self {
            Preprocessing::GreyImage { size, .. } => vec![1, size, size],
            Preprocessing::Image(p) => p.sample_shape(),
            Preprocessing::Features { dim, .. } => vec![dim],
        }
    }
}

fn card_version() -> u32 {
    MODEL_CARD_VERSION
}

/// Description stored next to a saved model (`model.json`) so it can be rebuilt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCard {
    /// Format version ([`MODEL_CARD_VERSION`]; cards written before versioning read as 1).
    #[serde(default = "card_version")]
    pub version: u32,
    /// Network configuration.
    pub model: ModelConfig,
    /// Input sample shape.
    pub sample_shape: Vec<usize>,
    /// Whether embeddings are L2-normalised before evaluation / export.
    pub normalize_output: bool,
    /// How raw inputs were turned into samples in training (`None` in version-1 cards:
    /// then the caller must say, e.g. `margin embed --invert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<Preprocessing>,
    /// Verification thresholds calibrated on held-out classes (version 3; `None` in older
    /// cards and for runs without validation classes: commands then ask for `--threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<crate::thresholds::Thresholds>,
    /// The near-duplicate threshold of `margin dedup`, calibrated on the same held-out
    /// classes (version 3, optional: absent in cards written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<crate::thresholds::DedupThresholds>,
    /// The views every embedding averages (version 4; absent in older cards: one view).
    #[serde(default, skip_serializing_if = "crate::tta::TestTimeAugment::is_none")]
    pub tta: crate::tta::TestTimeAugment,
}

impl ModelCard {
    /// A card of the current version.
    pub fn new(model: ModelConfig, preprocessing: Preprocessing, normalize_output: bool) -> Self {
        ModelCard { version: MODEL_CARD_VERSION, model, sample_shape: preprocessing.sample_shape(), normalize_output, preprocessing: Some(preprocessing), thresholds: None, dedup: None, tta: crate::tta::TestTimeAugment::None }
    }

    /// Reads `model.json`, refusing a newer format.
    pub fn read(path: &std::path::Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses a model card's JSON (`what` names it in errors), refusing a newer format.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::Format { path: what.to_string(), reason };
        let card: ModelCard = serde_json::from_slice(bytes).map_err(|e| bad(format!("not a model card: {e}")))?;
        if card.version > MODEL_CARD_VERSION {
            return Err(bad(format!("model card version {} is newer than this margin reads ({MODEL_CARD_VERSION}); upgrade margin", card.version)));
        }
        card.tta.validate(&card.sample_shape).map_err(|e| bad(format!("tta: {e}")))?;
        Ok(card)
    }
}
