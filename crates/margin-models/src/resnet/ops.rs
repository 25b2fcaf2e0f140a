//! The one place a ResNet convolution meets its BatchNorm (and ReLU): `relu?(bn(conv(x)))`.
//!
//! Every block calls [`conv_bn`], so a faster path for the pair (a fused or folded kernel on
//! a device that has one) is a change here and nowhere else; this is Burn's composition,
//! with burn-nn's BatchNorm semantics (batch statistics on an autodiff device with the
//! layer's training flag on; running statistics otherwise — eval mode and frozen layers).

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// `relu(bn(conv(x)))` when `with_relu`, else `bn(conv(x))`.
///
/// # Shapes
/// `[N, C_in, H, W] → [N, C_out, H', W']` (the convolution's output size).
pub fn conv_bn(x: Tensor<4>, conv: &Conv2d, bn: &BatchNorm, with_relu: bool) -> Tensor<4> {
    let y = bn.forward(conv.forward(x));
    if with_relu { relu(y) } else { y }
}
