//! The model card (`model.json` in a run folder): what `margin embed`, search and the
//! Python bindings need to rebuild and use a trained model, without Burn.
//!
//! [`ModelConfig`] is the network's architecture as data (margin-models builds it);
//! [`ModelCard`] adds the input shape and whether embeddings are L2-normalised. Every
//! card has a `version`; a loader refuses a newer one with a message.

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
        }
        Ok(())
    }

}

/// The model-card format this release writes; a card with a larger `version` is refused.
pub const MODEL_CARD_VERSION: u32 = 1;

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
}

impl ModelCard {
    /// A card of the current version.
    pub fn new(model: ModelConfig, sample_shape: Vec<usize>, normalize_output: bool) -> Self {
        ModelCard { version: MODEL_CARD_VERSION, model, sample_shape, normalize_output }
    }

    /// Reads `model.json`, refusing a newer format.
    pub fn read(path: &std::path::Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let card: ModelCard = serde_json::from_slice(&bytes).map_err(|e| DataError::format(path, format!("not a model card: {e}")))?;
        if card.version > MODEL_CARD_VERSION {
            return Err(DataError::format(
                path,
                format!("model card version {} is newer than this margin reads ({MODEL_CARD_VERSION}); upgrade margin", card.version),
            ));
        }
        Ok(card)
    }
}
