//! The one place a ResNet convolution meets its BatchNorm (and ReLU): `relu?(bn(conv(x)))`.
//!
//! Every block calls [`conv_bn`], so a faster path for the pair is a change here and nowhere
//! else. Semantics are burn-nn's BatchNorm: batch statistics on an autodiff device with the
//! layer's training flag on (training), running statistics otherwise (eval mode, frozen
//! layers).
//!
//! With running statistics BatchNorm is an affine map per channel, so it is folded into the
//! convolution: `W' = W · s`, `b' = β − μ · s` with `s = γ / √(σ² + ε)` — one convolution
//! with a bias instead of a convolution and BatchNorm's passes over the activation (the
//! weights are rescaled per call: a weight-sized op, tiny beside the activation; on an
//! autodiff device the fold is made of tensor ops, so gradients still reach `W`, `γ`, `β`).
//! [`conv_bn_unfolded`] is the composition it replaces, the reference it is tested against.

use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

/// Whether `bn` normalises `x` with batch statistics (burn-nn's rule).
pub fn uses_batch_statistics(x: &Tensor<4>, bn: &BatchNorm) -> bool {
    x.device().is_autodiff() && bn.training.is_enabled()
}

/// `relu(bn(conv(x)))` when `with_relu`, else `bn(conv(x))`; BatchNorm folded into the
/// convolution when it uses running statistics and the padding is explicit (as in every
/// ResNet layer; see the module docs).
///
/// # Shapes
/// `[N, C_in, H, W] → [N, C_out, H', W']` (the convolution's output size).
pub fn conv_bn(x: Tensor<4>, conv: &Conv2d, bn: &BatchNorm, with_relu: bool) -> Tensor<4> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return conv_bn_unfolded(x, conv, bn, with_relu);
    };
    if uses_batch_statistics(&x, bn) {
        return conv_bn_unfolded(x, conv, bn, with_relu);
    }
    let y = folded(x, conv, bn, [(top, bottom), (left, right)]);
    if with_relu { relu(y) } else { y }
}

/// Burn's composition `relu?(bn.forward(conv.forward(x)))` (the reference).
pub fn conv_bn_unfolded(x: Tensor<4>, conv: &Conv2d, bn: &BatchNorm, with_relu: bool) -> Tensor<4> {
    let y = bn.forward(conv.forward(x));
    if with_relu { relu(y) } else { y }
}

/// `conv(x) · s + (β − (μ − b₀) · s)` per channel as one biased convolution,
/// `s = γ / √(σ² + ε)`, `b₀` the convolution's own bias (none in a ResNet: 0).
fn folded(x: Tensor<4>, conv: &Conv2d, bn: &BatchNorm, padding: [(usize, usize); 2]) -> Tensor<4> {
    let device = x.device();
    let mut mean = bn.running_mean.value().to_device(&device);
    let var = bn.running_var.value().to_device(&device);
    let scale = bn.gamma.val().div(var.add_scalar(bn.epsilon).sqrt());
    if let Some(b0) = &conv.bias {
        mean = mean.sub(b0.val());
    }
    let c = scale.dims()[0];
    let bias = bn.beta.val().sub(mean.mul(scale.clone()));
    let weight = conv.weight.val().mul(scale.reshape([c, 1, 1, 1]));
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(x, weight, Some(bias), options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::RunningState;
    use burn::tensor::{Device, Distribution};

    /// The fold equals conv → BatchNorm with running statistics (strided, padded, with and
    /// without a conv bias, with ReLU), on a BatchNorm whose statistics are not the identity.
    #[test]
    fn folded_batch_norm_equals_the_composition() {
        let device = Device::flex();
        device.seed(5);
        for (k, stride, bias) in [(3, 2, false), (1, 1, true), (7, 2, false), (1, 2, false)] {
            let p = k / 2;
            let conv = burn::nn::conv::Conv2dConfig::new([5, 6], [k, k])
                .with_stride([stride, stride])
                .with_padding(burn::nn::PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(bias)
                .init(&device);
            let mut bn = burn::nn::BatchNormConfig::new(6).init(&device);
            bn.running_mean = RunningState::new(Tensor::random([6], Distribution::Uniform(-0.5, 0.5), &device));
            bn.running_var = RunningState::new(Tensor::random([6], Distribution::Uniform(0.5, 1.5), &device));
            bn.gamma = burn::module::Param::from_tensor(Tensor::random([6], Distribution::Uniform(0.5, 1.5), &device));
            bn.beta = burn::module::Param::from_tensor(Tensor::random([6], Distribution::Uniform(-0.5, 0.5), &device));
            let x = Tensor::<4>::random([2, 5, 13, 11], Distribution::Normal(0.0, 1.0), &device);
            for relu in [false, true] {
                let a = conv_bn(x.clone(), &conv, &bn, relu).into_data().try_to_vec::<f32>().unwrap();
                let b = conv_bn_unfolded(x.clone(), &conv, &bn, relu).into_data().try_to_vec::<f32>().unwrap();
                let d = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
                assert!(d < 1e-5, "k {k} stride {stride} bias {bias} relu {relu}: {d}");
            }
        }
    }
}
