//! The ResNet backbone's part of the model configuration (`[model] kind = "resnet"`): which
//! depth, where its pretrained weights come from, the embedding head on its pooled features,
//! and what training leaves frozen.
//!
//! These are data (no Burn): margin-models builds the network from them, margin-train reads
//! the freezing and the head's learning rate, and Burn-free readers of a model card parse
//! them too. The weights path is used once, when a run starts from pretrained weights; a
//! trained model's own weights are in its `model.safetensors`, so a model card whose
//! `weights` file is gone still loads.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::DataError;

/// A torchvision ResNet depth. Written as the number (`depth = 50`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum ResnetDepth {
    /// ResNet-18: basic blocks, stages of [2, 2, 2, 2], 512 features.
    R18,
    /// ResNet-34: basic blocks, stages of [3, 4, 6, 3], 512 features.
    R34,
    /// ResNet-50: bottleneck blocks, stages of [3, 4, 6, 3], 2048 features.
    R50,
}

impl ResnetDepth {
    /// Every supported depth.
    pub const ALL: [ResnetDepth; 3] = [ResnetDepth::R18, ResnetDepth::R34, ResnetDepth::R50];

    /// The depth as a number (18, 34, 50).
    pub fn number(self) -> u32 {
        match self {
            ResnetDepth::R18 => 18,
            ResnetDepth::R34 => 34,
            ResnetDepth::R50 => 50,
        }
    }

    /// torchvision's name (`resnet50`).
    pub fn name(self) -> String {
        format!("resnet{}", self.number())
    }

    /// Blocks per stage.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            ResnetDepth::R18 => [2, 2, 2, 2],
            ResnetDepth::R34 | ResnetDepth::R50 => [3, 4, 6, 3],
        }
    }

    /// Whether the blocks are bottlenecks (1×1 → 3×3 → 1×1, expansion 4).
    pub fn bottleneck(self) -> bool {
        matches!(self, ResnetDepth::R50)
    }

    /// Width of the pooled features (the input of torchvision's `fc`).
    pub fn feature_dim(self) -> usize {
        if self.bottleneck() { 2048 } else { 512 }
    }
}

impl TryFrom<u32> for ResnetDepth {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        ResnetDepth::ALL.into_iter().find(|d| d.number() == n).ok_or_else(|| format!("ResNet depth {n} is not supported (18, 34 or 50)"))
    }
}

impl From<ResnetDepth> for u32 {
    fn from(d: ResnetDepth) -> u32 {
        d.number()
    }
}

impl std::str::FromStr for ResnetDepth {
    type Err = String;
    /// `resnet50` or `50`.
    fn from_str(s: &str) -> Result<Self, String> {
        let n = s.strip_prefix("resnet").unwrap_or(s);
        let n: u32 = n.parse().map_err(|_| format!("`{s}` is not a ResNet (resnet18, resnet34 or resnet50)"))?;
        ResnetDepth::try_from(n)
    }
}

/// The embedding head on the pooled features: `Linear(features → embedding_dim)`, then
/// optionally BatchNorm1d, then optionally L2 normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Output embedding dimension.
    #[serde(default = "default_head_dim")]
    pub embedding_dim: usize,
    /// BatchNorm over the embedding after the linear map.
    #[serde(default)]
    pub batch_norm: bool,
    /// L2-normalise the output.
    #[serde(default)]
    pub normalize: bool,
    /// The head's learning rate as a multiple of `train.lr` (a fresh head on a pretrained
    /// backbone usually learns 10× faster).
    #[serde(default = "default_lr_multiplier")]
    pub lr_multiplier: f64,
}

fn default_head_dim() -> usize {
    128
}
fn default_lr_multiplier() -> f64 {
    1.0
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig { embedding_dim: default_head_dim(), batch_norm: false, normalize: false, lr_multiplier: default_lr_multiplier() }
    }
}

/// What of the backbone training leaves unchanged (frozen parameters; frozen BatchNorm
/// layers normalise with their running statistics and do not update them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Freeze {
    /// Everything trains.
    #[default]
    None,
    /// The whole backbone is frozen: only the head trains.
    Backbone,
    /// The stem (`conv1`, `bn1`) and the first k of the four stages are frozen
    /// (`freeze = { stages = 2 }`; 0 freezes the stem alone).
    Stages(usize),
}

/// The `resnet` model kind's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResnetConfig {
    /// 18, 34 or 50.
    pub depth: ResnetDepth,
    /// A torchvision `state_dict` (`.pth` as torchvision downloads it, or `.safetensors`) to
    /// start from; none: random initialisation (torchvision's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// The embedding head.
    #[serde(default)]
    pub head: HeadConfig,
    /// What stays frozen in training.
    #[serde(default)]
    pub freeze: Freeze,
}

impl ResnetConfig {
    /// Checks the fields and the input shape (`[3, h, w]`, h and w ≥ 32: five stride-2 steps).
    pub fn validate(&self, sample_shape: &[usize]) -> Result<(), DataError> {
        let bad = |field: &'static str, value: String, reason: &'static str| Err(DataError::Config { field, value, reason });
        if self.head.embedding_dim == 0 {
            return bad("model.head.embedding_dim", "0".into(), "must be > 0");
        }
        if !(self.head.lr_multiplier.is_finite() && self.head.lr_multiplier > 0.0) {
            return bad("model.head.lr_multiplier", self.head.lr_multiplier.to_string(), "must be finite and > 0");
        }
        if let Freeze::Stages(k) = self.freeze
            && k > 4
        {
            return bad("model.freeze.stages", k.to_string(), "a ResNet has 4 stages (0 freezes the stem alone; use \"backbone\" for everything)");
        }
        if sample_shape.len() != 3 || sample_shape[0] != 3 || sample_shape[1] < 32 || sample_shape[2] < 32 {
            return bad("model.kind", format!("resnet on samples of shape {sample_shape:?}"), "a ResNet needs RGB images [3, h, w] with h, w >= 32");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_parses_as_number_and_name() {
        assert_eq!("resnet50".parse::<ResnetDepth>().unwrap(), ResnetDepth::R50);
        assert_eq!("18".parse::<ResnetDepth>().unwrap(), ResnetDepth::R18);
        assert!("resnet101".parse::<ResnetDepth>().unwrap_err().contains("101"));
        assert!("vgg".parse::<ResnetDepth>().is_err());
        let c: ResnetConfig = toml::from_str("depth = 34\nfreeze = { stages = 2 }\n[head]\nembedding_dim = 64\nnormalize = true").unwrap();
        assert_eq!((c.depth, c.freeze, c.head.embedding_dim, c.head.normalize), (ResnetDepth::R34, Freeze::Stages(2), 64, true));
        assert!(toml::from_str::<ResnetConfig>("depth = 20").unwrap_err().to_string().contains("20"));
        let c: ResnetConfig = toml::from_str("depth = 18\nfreeze = \"backbone\"").unwrap();
        assert_eq!(c.freeze, Freeze::Backbone);
    }

    #[test]
    fn the_model_section_reads_a_resnet_and_refuses_unknown_fields() {
        let m: crate::ModelConfig = toml::from_str("kind = \"resnet\"\ndepth = 50\nweights = \"w.pth\"\nfreeze = { stages = 1 }\n[head]\nembedding_dim = 32\nbatch_norm = true").unwrap();
        let crate::ModelConfig::Resnet(r) = &m else { panic!("{m:?}") };
        assert_eq!((r.depth, r.weights.as_deref(), r.freeze, r.head.batch_norm), (ResnetDepth::R50, Some(std::path::Path::new("w.pth")), Freeze::Stages(1), true));
        assert_eq!(m.embedding_dim(), 32);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<crate::ModelConfig>(&json).unwrap(), m, "the model card round-trips");
        let e = toml::from_str::<crate::ModelConfig>("kind = \"resnet\"\ndepth = 18\nwidth = 3").unwrap_err().to_string();
        assert!(e.contains("width"), "{e}");
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = ResnetConfig { depth: ResnetDepth::R18, weights: None, head: HeadConfig::default(), freeze: Freeze::Stages(5) };
        assert!(c.validate(&[3, 64, 64]).unwrap_err().to_string().contains("model.freeze.stages"));
        c.freeze = Freeze::None;
        assert!(c.validate(&[1, 64, 64]).unwrap_err().to_string().contains("RGB"));
        assert!(c.validate(&[3, 64, 64]).is_ok());
    }
}
