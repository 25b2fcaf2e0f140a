//! torchvision's ResNet-18/34/50 up to the global average pool (the input of its `fc`):
//! `conv1` 7×7/2 → `bn1` → ReLU → max-pool 3×3/2 → `layer1` … `layer4` → mean over H×W.
//!
//! The ImageNet classifier `fc` is not part of the backbone: margin puts its own embedding
//! head on the pooled features ([`super::ResnetEncoder`]).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::backend::DispatchDevice;
use burn::tensor::{DType, Device, Tensor, TensorData};
use margin_data::ResnetDepth;

use super::block::{Block, Stage, batch_norm, conv};
use super::ops;

/// Builds a [`ResNet`] (Config → init → Module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNetConfig {
    /// 18, 34 or 50.
    pub depth: ResnetDepth,
}

impl ResNetConfig {
    /// The configuration of `depth`.
    pub fn new(depth: ResnetDepth) -> Self {
        ResNetConfig { depth }
    }

    /// A randomly initialised backbone (torchvision's initialisation: Kaiming-normal
    /// fan-out convolutions, BatchNorm γ = 1, β = 0, running mean 0 and variance 1).
    pub fn init(&self, device: &Device) -> ResNet {
        let widths = [64, 128, 256, 512];
        let mut c_in = 64;
        let mut layers = Vec::with_capacity(4);
        for (s, (&n, &w)) in self.depth.blocks().iter().zip(&widths).enumerate() {
            let stride = if s == 0 { 1 } else { 2 };
            let mut blocks = Vec::with_capacity(n);
            for i in 0..n {
                let st = if i == 0 { stride } else { 1 };
                let b = if self.depth.bottleneck() { Block::bottleneck(c_in, w, st, device) } else { Block::basic(c_in, w, st, device) };
                c_in = if self.depth.bottleneck() { 4 * w } else { w };
                blocks.push(b);
            }
            layers.push(Stage { blocks });
        }
        ResNet {
            conv1: conv(3, 64, 7, 2, device),
            bn1: batch_norm(64, device),
            maxpool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(),
            layers,
            depth: self.depth.number() as usize,
        }
    }
}

/// The backbone. Field names are torchvision's (`layers[k]` is `layer{k+1}`).
#[derive(Module, Debug)]
pub struct ResNet {
    /// The 7×7 stride-2 stem convolution.
    pub conv1: Conv2d,
    /// Its BatchNorm.
    pub bn1: BatchNorm,
    /// 3×3 stride-2 max-pooling, padding 1.
    pub maxpool: MaxPool2d,
    /// `layer1` … `layer4`.
    pub layers: Vec<Stage>,
    /// 18, 34 or 50 (a constant of the module, not a parameter).
    pub depth: usize,
}

impl ResNet {
    /// The depth as margin-data's type.
    pub fn depth(&self) -> ResnetDepth {
        ResnetDepth::try_from(self.depth as u32).expect("built from a ResnetDepth")
    }

    /// The feature map after `layer4`.
    ///
    /// # Shapes
    /// `[N, 3, H, W] → [N, F, ⌈H/32⌉, ⌈W/32⌉]`, F = 512 (18, 34) or 2048 (50).
    pub fn forward_map(&self, x: Tensor<4>) -> Tensor<4> {
        let x = ops::conv_bn(x, &self.conv1, &self.bn1, true);
        let mut x = self.maxpool.forward(x);
        for stage in &self.layers {
            x = stage.forward(x);
        }
        x
    }

    /// Globally average-pooled features, `f[n, c] = (1 / H'W') Σ_{h,w} map[n, c, h, w]`
    /// (torchvision's `avgpool` + `flatten`: the input of its `fc`).
    ///
    /// On the `flex` CPU device, when no gradient is needed (no autodiff, or a fully frozen
    /// backbone and an input that does not require one), this runs the NHWC inference plan
    /// ([`super::NhwcResNet`]); in training on `flex` (f32), the channels-last training
    /// operations (`train_net.rs`); elsewhere Burn's ops ([`Self::forward_features_reference`]).
    ///
    /// # Shapes
    /// `[N, 3, H, W] → [N, F]`, F = 512 (18, 34) or 2048 (50).
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        if self.takes_nhwc_training(&x) {
            return self.forward_features_nhwc(x);
        }
        if !self.takes_nhwc_plan(&x) {
            return self.forward_features_reference(x);
        }
        let Some(plan) = super::NhwcResNet::new(self) else {
            return self.forward_features_reference(x);
        };
        let (device, dims) = (x.device(), x.dims());
        let data = x.into_data().convert::<f32>().try_to_vec::<f32>().expect("converted to f32");
        let f = plan.features(&data, dims);
        Tensor::from_data(TensorData::new(f, [dims[0], plan.feature_dim()]), &device)
    }

    /// [`Self::forward_features`] by Burn's ops on any device (the reference).
    ///
    /// # Shapes
    /// `[N, 3, H, W] → [N, F]`.
    pub fn forward_features_reference(&self, x: Tensor<4>) -> Tensor<2> {
        let map = self.forward_map(x);
        let [n, c, h, w] = map.dims();
        map.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
    }

    /// Whether [`Self::forward_features`] can take the NHWC plan: a `flex` device, `f32`,
    /// the stem's channels, and no gradient wanted (see there).
    pub(super) fn takes_nhwc_plan(&self, x: &Tensor<4>) -> bool {
        self.nhwc_input(x) && (!x.device().is_autodiff() || (!x.is_require_grad() && self.is_frozen()))
    }

    /// An input both channels-last paths serve: on `flex`, `f32`, with the stem's channels.
    fn nhwc_input(&self, x: &Tensor<4>) -> bool {
        let flex = matches!(x.device().without_autodiff().as_dispatch(), DispatchDevice::Flex(_));
        flex && x.dtype() == DType::F32 && x.dims()[1] == self.conv1.weight.val().dims()[1]
    }

    /// Whether [`Self::forward_features`] takes the channels-last training path: `flex` with
    /// autodiff, `f32`, the stem's channels, a gradient wanted, and every convolution one the
    /// kernels serve.
    pub(super) fn takes_nhwc_training(&self, x: &Tensor<4>) -> bool {
        self.nhwc_input(x) && x.device().is_autodiff() && !self.takes_nhwc_plan(x) && self.nhwc_convolutions() && self.torchvision_max_pool()
    }

    /// Whether the stem's max-pool is torchvision's, 3×3 stride 2 padding 1 (floor, no
    /// dilation): the one both channels-last paths implement.
    pub(super) fn torchvision_max_pool(&self) -> bool {
        let p = &self.maxpool;
        p.kernel_size == [3, 3] && p.stride == [2, 2] && p.dilation == [1, 1] && !p.ceil_mode && p.padding == PaddingConfig2d::Explicit(1, 1, 1, 1)
    }

    /// Every parameter frozen and every BatchNorm in eval mode (`Module::freeze`).
    fn is_frozen(&self) -> bool {
        let frozen = |c: &Conv2d, b: &BatchNorm| {
            !c.weight.val().is_require_grad() && !b.gamma.val().is_require_grad() && !b.beta.val().is_require_grad() && !b.training.is_enabled()
        };
        frozen(&self.conv1, &self.bn1)
            && self.layers.iter().flat_map(|s| &s.blocks).all(|b| {
                frozen(&b.conv1, &b.bn1)
                    && frozen(&b.conv2, &b.bn2)
                    && match (&b.conv3, &b.bn3) {
                        (Some(c), Some(n)) => frozen(c, n),
                        _ => true,
                    }
                    && b.downsample.as_ref().is_none_or(|d| frozen(&d.conv, &d.bn))
            })
    }
}
