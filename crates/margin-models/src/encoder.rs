//! Embedding networks: an MLP for feature vectors and ConvNet-4 for images.
//!
//! ConvNet-4 (Vinyals et al. 2016; Snell et al. 2017) is
//! 4 × [Conv 3×3 (64 ch, padding 1) → BatchNorm → ReLU → MaxPool 2] → flatten → Linear.
//! ReLU and 2×2 max-pooling commute (both monotone), so the forward pools first and
//! applies ReLU to a 4× smaller tensor — the same function, less work.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use margin::l2_normalize;
use margin_data::ModelConfig;

use crate::ModelError;
use crate::resnet::ResnetEncoder;

/// Building a network from its [`ModelConfig`] (the architecture as data, in margin-data).
pub trait BuildEncoder {
    /// Builds the network for samples of `sample_shape` (seed the device first for
    /// reproducibility), randomly initialised — the architecture a saved model's weights are
    /// loaded into.
    fn init(&self, sample_shape: &[usize], device: &Device) -> Result<EmbeddingNet, ModelError>;

    /// As [`BuildEncoder::init`], but a backbone whose configuration names pretrained
    /// weights (`model.weights` of a ResNet) starts from them: how a training run starts.
    fn init_pretrained(&self, sample_shape: &[usize], device: &Device) -> Result<EmbeddingNet, ModelError>;
}

impl BuildEncoder for ModelConfig {
    /// Builds the network for samples of `sample_shape` (seed the device first for reproducibility).
    fn init(&self, sample_shape: &[usize], device: &Device) -> Result<EmbeddingNet, ModelError> {
        build(self, sample_shape, false, device)
    }

    fn init_pretrained(&self, sample_shape: &[usize], device: &Device) -> Result<EmbeddingNet, ModelError> {
        build(self, sample_shape, true, device)
    }
}

fn build(cfg: &ModelConfig, sample_shape: &[usize], pretrained: bool, device: &Device) -> Result<EmbeddingNet, ModelError> {
    cfg.validate(sample_shape)?;
    Ok(match cfg {
            ModelConfig::Mlp { hidden, embedding_dim, normalize } => {
                let mut layers = Vec::new();
                let mut d = sample_shape[0];
                for &h in hidden {
                    layers.push(LinearConfig::new(d, h).init(device));
                    d = h;
                }
                layers.push(LinearConfig::new(d, *embedding_dim).init(device));
                EmbeddingNet { mlp: Some(Mlp { layers }), conv: None, resnet: None, normalize: *normalize }
            }
            ModelConfig::Convnet4 { width, embedding_dim, normalize } => {
                let mut blocks = Vec::new();
                let mut c = sample_shape[0];
                for _ in 0..4 {
                    blocks.push(ConvBlock {
                        conv: Conv2dConfig::new([c, *width], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device),
                        bn: BatchNormConfig::new(*width).init(device),
                    });
                    c = *width;
                }
                let (mut h, mut w) = (sample_shape[1], sample_shape[2]);
                for _ in 0..4 {
                    h /= 2;
                    w /= 2;
                }
                let fc = LinearConfig::new(width * h * w, *embedding_dim).init(device);
                EmbeddingNet {
                    mlp: None,
                    conv: Some(ConvNet4 { blocks, pool: MaxPool2dConfig::new([2, 2]).init(), fc }),
                    resnet: None,
                    normalize: *normalize,
                }
            }
            ModelConfig::Resnet(r) => {
                EmbeddingNet { mlp: None, conv: None, resnet: Some(ResnetEncoder::init(r, pretrained, device)?), normalize: r.head.normalize }
            }
        })
}

/// An MLP: `Linear → ReLU → … → Linear`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// `[n, d_in] → [n, d_out]`.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

/// Conv 3×3 → BatchNorm (ReLU and pooling are applied by [`ConvNet4`]).
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution.
    pub conv: Conv2d,
    /// Its batch normalisation.
    pub bn: BatchNorm,
}

/// ConvNet-4.
#[derive(Module, Debug)]
pub struct ConvNet4 {
    /// The four conv blocks.
    pub blocks: Vec<ConvBlock>,
    /// 2×2 max-pooling.
    pub pool: MaxPool2d,
    /// Final projection to the embedding.
    pub fc: Linear,
}

impl ConvNet4 {
    /// `[n, c, h, w] → [n, embedding_dim]`.
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        for b in &self.blocks {
            // BatchNorm → ReLU → MaxPool 2×2 as one fused kernel on flex (two passes forward,
            // two backward; `crate::kernels`), the same function as the Burn composition
            // `relu(self.pool.forward(b.bn.forward(y)))`, which other devices still run.
            x = crate::kernels::batch_norm_relu_max_pool(crate::kernels::conv3x3(x, &b.conv), &b.bn);
        }
        let [n, c, h, w] = x.dims();
        self.fc.forward(x.reshape([n, c * h * w]))
    }
}

/// The embedding network (trained by margin-train).
#[derive(Module, Debug)]
pub struct EmbeddingNet {
    /// Set for feature-vector inputs.
    pub mlp: Option<Mlp>,
    /// Set for image inputs.
    pub conv: Option<ConvNet4>,
    /// Set for a ResNet backbone with its head (RGB images).
    pub resnet: Option<ResnetEncoder>,
    /// L2-normalise the output.
    pub normalize: bool,
}

impl EmbeddingNet {
    /// Folds the last training step's BatchNorm updates into the running statistics.
    ///
    /// burn-nn keeps a BatchNorm's newest running statistics aside, per thread, until a
    /// sync; a record (a checkpoint) reads the synced value only, so without this a
    /// checkpoint would hold the statistics of one step before — and a resumed run would not
    /// equal an uninterrupted one. `valid()` syncs every running state, and clones share
    /// them, so the inference copy it returns is dropped. The trainer calls it before saving.
    pub fn sync_running_statistics(&self) {
        let _ = Module::valid(self);
    }

    /// Embeds a batch given as host samples of `sample_shape`.
    pub fn forward_flat(&self, x: Tensor<2>, sample_shape: &[usize]) -> Tensor<2> {
        let out = match (&self.mlp, &self.conv, &self.resnet) {
            (Some(m), _, _) => m.forward(x),
            (None, Some(c), _) => {
                let n = x.dims()[0];
                c.forward(x.reshape([n, sample_shape[0], sample_shape[1], sample_shape[2]]))
            }
            (None, None, Some(r)) => {
                let n = x.dims()[0];
                r.forward(x.reshape([n, sample_shape[0], sample_shape[1], sample_shape[2]]))
            }
            (None, None, None) => unreachable!("EmbeddingNet is built with one of its networks"),
        };
        if self.normalize { l2_normalize(out) } else { out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn convnet4_and_mlp_shapes() {
        let device = Device::flex().autodiff();
        device.seed(0);
        let cfg = ModelConfig::Convnet4 { width: 8, embedding_dim: 5, normalize: true };
        let net = cfg.init(&[1, 28, 28], &device).unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32; 2 * 784], [2, 784]), &device);
        let e = net.forward_flat(x, &[1, 28, 28]);
        assert_eq!(e.dims(), [2, 5]);
        let mlp = ModelConfig::Mlp { hidden: vec![4], embedding_dim: 3, normalize: false };
        assert!(mlp.init(&[1, 28, 28], &device).unwrap_err().to_string().contains("model.kind"));
        assert!(cfg.init(&[64], &device).is_err());
        let net = mlp.init(&[6], &device).unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.1f32; 18], [3, 6]), &device);
        assert_eq!(net.forward_flat(x, &[6]).dims(), [3, 3]);
    }
}
