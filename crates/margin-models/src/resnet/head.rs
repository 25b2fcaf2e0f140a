//! The embedding network on a ResNet: backbone → pooled features → head
//! (`Linear`, optional BatchNorm), and freezing (`margin_data::Freeze`).
//!
//! L2 normalisation, when asked, is applied by [`crate::EmbeddingNet`] (its `normalize`), as
//! for every encoder. Freezing uses Burn's `Module::freeze`: frozen parameters stop requiring
//! gradients and frozen BatchNorm layers normalise with their running statistics without
//! updating them, even on the training (autodiff) device.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use margin_data::{Freeze, ResnetConfig};

use super::error::ResnetError;
use super::net::{ResNet, ResNetConfig};

/// `Linear(F → d)`, then optionally BatchNorm1d over the `d` outputs.
#[derive(Module, Debug)]
pub struct EmbeddingHead {
    /// The projection.
    pub linear: Linear,
    /// Optional BatchNorm after it.
    pub bn: Option<BatchNorm>,
}

impl EmbeddingHead {
    /// `e = bn?(x·W + b)`.
    ///
    /// # Shapes
    /// `[N, F] → [N, d]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = self.linear.forward(x);
        match &self.bn {
            Some(bn) => bn.forward(y),
            None => y,
        }
    }
}

/// A ResNet backbone with an embedding head.
#[derive(Module, Debug)]
pub struct ResnetEncoder {
    /// The backbone (torchvision's layout).
    pub backbone: ResNet,
    /// The head on its pooled features.
    pub head: EmbeddingHead,
}

impl ResnetEncoder {
    /// Builds the encoder of `cfg`: the backbone from `cfg.weights` when `pretrained` and a
    /// file is named, else randomly initialised; a fresh head; the freezing applied.
    pub fn init(cfg: &ResnetConfig, pretrained: bool, device: &Device) -> Result<Self, ResnetError> {
        let backbone = match (&cfg.weights, pretrained) {
            (Some(path), true) => ResNet::from_file(cfg.depth, path, device)?,
            _ => ResNetConfig::new(cfg.depth).init(device),
        };
        let d = cfg.head.embedding_dim;
        let head = EmbeddingHead {
            linear: LinearConfig::new(cfg.depth.feature_dim(), d).init(device),
            bn: cfg.head.batch_norm.then(|| BatchNormConfig::new(d).init(device)),
        };
        Ok(ResnetEncoder { backbone, head }.with_freeze(cfg.freeze))
    }

    /// Freezes what `freeze` names (see the module docs); `Freeze::None` changes nothing.
    pub fn with_freeze(mut self, freeze: Freeze) -> Self {
        let stages = match freeze {
            Freeze::None => return self,
            Freeze::Backbone => {
                self.backbone = self.backbone.freeze();
                return self;
            }
            Freeze::Stages(k) => k.min(4),
        };
        let b = &mut self.backbone;
        b.conv1 = b.conv1.clone().freeze();
        b.bn1 = b.bn1.clone().freeze();
        for s in b.layers.iter_mut().take(stages) {
            *s = s.clone().freeze();
        }
        self
    }

    /// Embeddings before any normalisation.
    ///
    /// # Shapes
    /// `[N, 3, H, W] → [N, d]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward_features(x))
    }
}

