//! The residual blocks of torchvision's ResNet (v1.5: a bottleneck's stride is on its 3×3
//! convolution), with torchvision's field names so that `state_dict` keys map one to one
//! (`layer2.0.conv1.weight`, `layer2.0.downsample.0.weight`, `layer2.0.downsample.1.running_var`).
//!
//! One struct holds both block kinds: a basic block (3×3 → 3×3) has no `conv3`, a bottleneck
//! (1×1 → 3×3 → 1×1, expansion 4) has one. Every convolution is bias-free and followed by a
//! BatchNorm, as in torchvision.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::ops;

/// torchvision's convolution initialisation: Kaiming normal, fan-out, ReLU gain.
fn kaiming_fan_out() -> Initializer {
    Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: true }
}

/// A bias-free `k×k` convolution with stride `stride` and padding `k / 2` (torchvision's `conv1x1`,
/// `conv3x3` and the 7×7 stem), initialised as torchvision does.
pub fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .with_initializer(kaiming_fan_out())
        .init(device)
}

/// BatchNorm2d as torchvision's (ε = 1e-5, momentum 0.1, γ = 1, β = 0).
pub fn batch_norm(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).with_epsilon(1e-5).with_momentum(0.1).init(device)
}

/// The projection shortcut of a block that changes width or resolution: 1×1 convolution
/// (stride s) → BatchNorm. Keys `downsample.0.*` and `downsample.1.*`.
#[derive(Module, Debug)]
pub struct Downsample {
    /// `downsample.0`.
    pub conv: Conv2d,
    /// `downsample.1`.
    pub bn: BatchNorm,
}

/// A residual block (basic without `conv3`, bottleneck with it).
#[derive(Module, Debug)]
pub struct Block {
    /// Basic: 3×3 (stride s); bottleneck: 1×1.
    pub conv1: Conv2d,
    /// After `conv1`.
    pub bn1: BatchNorm,
    /// 3×3 (basic: stride 1; bottleneck: stride s).
    pub conv2: Conv2d,
    /// After `conv2`.
    pub bn2: BatchNorm,
    /// Bottleneck only: the expanding 1×1.
    pub conv3: Option<Conv2d>,
    /// Bottleneck only: after `conv3`.
    pub bn3: Option<BatchNorm>,
    /// The projection shortcut, when width or stride change.
    pub downsample: Option<Downsample>,
}

impl Block {
    /// A basic block `c_in → c_out` (expansion 1).
    pub fn basic(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Self {
        Block {
            conv1: conv(c_in, c_out, 3, stride, device),
            bn1: batch_norm(c_out, device),
            conv2: conv(c_out, c_out, 3, 1, device),
            bn2: batch_norm(c_out, device),
            conv3: None,
            bn3: None,
            downsample: (stride != 1 || c_in != c_out).then(|| Downsample { conv: conv(c_in, c_out, 1, stride, device), bn: batch_norm(c_out, device) }),
        }
    }

    /// A bottleneck `c_in → 4·width` (1×1 to `width`, 3×3 of stride `stride`, 1×1 to `4·width`).
    pub fn bottleneck(c_in: usize, width: usize, stride: usize, device: &Device) -> Self {
        let c_out = 4 * width;
        Block {
            conv1: conv(c_in, width, 1, 1, device),
            bn1: batch_norm(width, device),
            conv2: conv(width, width, 3, stride, device),
            bn2: batch_norm(width, device),
            conv3: Some(conv(width, c_out, 1, 1, device)),
            bn3: Some(batch_norm(c_out, device)),
            downsample: (stride != 1 || c_in != c_out).then(|| Downsample { conv: conv(c_in, c_out, 1, stride, device), bn: batch_norm(c_out, device) }),
        }
    }

    /// `relu(F(x) + shortcut(x))`, with `F` = conv-BN-ReLU-conv-BN (basic) or
    /// conv-BN-ReLU-conv-BN-ReLU-conv-BN (bottleneck) and `shortcut` the identity or the
    /// projection.
    ///
    /// # Shapes
    /// `[N, C_in, H, W] → [N, C_out, ⌈H/s⌉, ⌈W/s⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => ops::conv_bn(x.clone(), &d.conv, &d.bn, false),
            None => x.clone(),
        };
        let out = ops::conv_bn(x, &self.conv1, &self.bn1, true);
        let out = match (&self.conv3, &self.bn3) {
            (Some(c3), Some(b3)) => ops::conv_bn(ops::conv_bn(out, &self.conv2, &self.bn2, true), c3, b3, false),
            _ => ops::conv_bn(out, &self.conv2, &self.bn2, false),
        };
        relu(out.add(identity))
    }
}

/// One of the four stages (`layer1` … `layer4`).
#[derive(Module, Debug)]
pub struct Stage {
    /// The blocks, `layerK.0`, `layerK.1`, …
    pub blocks: Vec<Block>,
}

impl Stage {
    /// The blocks in order.
    ///
    /// # Shapes
    /// `[N, C_in, H, W] → [N, C_out, ⌈H/s⌉, ⌈W/s⌉]` (s = 2 for stages 2–4).
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for b in &self.blocks {
            x = b.forward(x);
        }
        x
    }
}
