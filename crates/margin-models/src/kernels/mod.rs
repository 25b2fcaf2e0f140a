//! Hand-written CPU kernels plugged into Burn through its backend-extension mechanism.
//!
//! [`batch_norm_relu_max_pool`] fuses the post-convolution part of a ConvNet-4 block —
//! BatchNorm2d (training mode) → ReLU → MaxPool 2×2 stride 2 — into two passes forward and two
//! passes backward over the activation, on the Flex backend (`f32`/`f64`). [`gelu`] is BERT's
//! exact GELU in one vectorised pass forward and one backward (f32). Every other device or
//! dtype takes the unfused Burn composition, so the functions never panic for lack of a kernel.

mod bn_relu_pool;
mod conv3x3;
mod gelu;


pub use bn_relu_pool::{BnReluPool, BnReluPoolBackend};
pub use conv3x3::{Conv3x3Backend, conv3x3_options};
pub use gelu::{GeluBackend, erf_f32, gelu_f32};

use burn::backend::{Dispatch, DispatchDevice};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, module::batch_norm_train};

/// Output of [`batch_norm_relu_max_pool_train`].
pub struct BnReluPoolOutput {
    /// `relu(max_pool2d(batch_norm(x), 2×2, stride 2))`, shape `[N, C, ⌊H/2⌋, ⌊W/2⌋]`.
    pub output: Tensor<4>,
    /// Batch mean per channel, `[C]`, detached.
    pub mean: Tensor<1>,
    /// Biased (population) batch variance per channel, `[C]`, without epsilon, detached —
    /// the statistic burn-nn's `BatchNorm` feeds its running variance.
    pub variance: Tensor<1>,
}

/// Whether the fused kernel serves tensors on `x`'s device (Flex, with or without autodiff).
pub fn fused_available(x: &Tensor<4>) -> bool {
    matches!(x.device().without_autodiff().as_dispatch(), DispatchDevice::Flex(_))
}

/// Training-mode BatchNorm (batch statistics, affine `gamma`/`beta`, `epsilon` inside the square
/// root) → ReLU → MaxPool 2×2 stride 2 (no padding, floor), with its gradient with respect to
/// `x`, `gamma` and `beta`. Returns the output and the batch statistics; running statistics are
/// the caller's business (see [`batch_norm_relu_max_pool`]).
///
/// Equals `relu(max_pool2d(batch_norm_train(x, gamma, beta, epsilon).output))` up to rounding.
/// Fused on Flex for `f32`/`f64`; the unfused composition elsewhere.
///
/// # Panics
///
/// If `gamma` or `beta` is not `[C]` for `x: [N, C, H, W]`.
pub fn batch_norm_relu_max_pool_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BnReluPoolOutput {
    let channels = x.dims()[1];
    assert_eq!(gamma.dims(), [channels], "invalid batch norm gamma shape");
    assert_eq!(beta.dims(), [channels], "invalid batch norm beta shape");
    if fused_available(&x) {
        let r = <Dispatch as BnReluPoolBackend>::batch_norm_relu_max_pool_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            epsilon,
        );
        BnReluPoolOutput {
            output: Tensor::from_dispatch(r.output),
            mean: Tensor::from_dispatch(r.mean),
            variance: Tensor::from_dispatch(r.variance),
        }
    } else {
        unfused_train(x, gamma, beta, epsilon)
    }
}

/// The unfused Burn composition of [`batch_norm_relu_max_pool_train`] (reference and fallback).
pub fn unfused_train(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> BnReluPoolOutput {
    let r = batch_norm_train(x, gamma, beta, epsilon);
    let pool = MaxPool2dConfig::new([2, 2]).init();
    BnReluPoolOutput {
        output: relu(pool.forward(r.output)),
        mean: r.mean,
        variance: r.variance,
    }
}

/// Drop-in replacement for `relu(MaxPool2dConfig::new([2, 2]).init().forward(bn.forward(x)))`.
///
/// Same semantics as burn-nn's [`BatchNorm::forward`]: on an autodiff device with the layer's
/// training flag enabled it normalises with the batch statistics and updates `bn.running_mean`
/// and `bn.running_var` in place as `running·(1 − momentum) + batch·momentum`, using the
/// *biased* batch variance (burn-nn 0.22.1's convention); otherwise it normalises with the
/// running statistics (unfused path, nothing updated). The training path is fused on Flex.
pub fn batch_norm_relu_max_pool(x: Tensor<4>, bn: &BatchNorm) -> Tensor<4> {
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    if !training || !fused_available(&x) {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        return relu(pool.forward(bn.forward(x)));
    }
    let r = batch_norm_relu_max_pool_train(x, bn.gamma.val(), bn.beta.val(), bn.epsilon);
    update_running_statistics(bn, r.mean, r.variance);
    r.output
}

/// burn-nn's running-statistics update after a training-mode BatchNorm (0.22.1):
/// `running · (1 − momentum) + batch · momentum`, with the *biased* batch variance `var`.
pub fn update_running_statistics(bn: &BatchNorm, mean: Tensor<1>, var: Tensor<1>) {
    let device = mean.device();
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device).mul_scalar(1.0 - m).add(mean.detach().mul_scalar(m));
    let running_var = bn.running_var.value_sync().to_device(&device).mul_scalar(1.0 - m).add(var.detach().mul_scalar(m));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
}

/// `t` itself when it is contiguous, else a contiguous copy (what the raw-buffer kernels read).
pub(crate) fn contiguous(t: burn::backend::flex::FlexTensor) -> burn::backend::flex::FlexTensor {
    if t.layout().contiguous_offsets().is_some() { t } else { t.to_contiguous() }
}

/// Drop-in replacement for `conv.forward(x)`, with a hand-written Flex kernel (forward and
/// backward, `f32`/`f64`) for the configuration ConvNet-4 uses: 3×3 kernel, stride 1, padding 1
/// on every side (`Explicit(1, 1, 1, 1)` or `Same`), dilation 1, groups 1, with bias. Any other
/// configuration, dtype or device takes `conv.forward(x)` unchanged.
pub fn conv3x3(x: Tensor<4>, conv: &Conv2d) -> Tensor<4> {
    let padding_one = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right] == [1, 1, 1, 1],
        // 3×3 kernel, stride 1, dilation 1: "same" pads one on every side.
        PaddingConfig2d::Same => true,
        PaddingConfig2d::Valid => false,
    };
    let supported = padding_one
        && conv.kernel_size == [3, 3]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && conv.weight.dims()[1] == x.dims()[1]
        && fused_available(&x);
    let Some(bias) = conv.bias.as_ref().filter(|_| supported) else {
        return conv.forward(x);
    };
    let out = <Dispatch as Conv3x3Backend>::conv3x3(x.into_dispatch(), conv.weight.val().into_dispatch(), bias.val().into_dispatch());
    Tensor::from_dispatch(out)
}

/// Drop-in replacement for `burn::tensor::activation::gelu` (exact, erf form): one vectorised
/// pass on Flex for f32 (`kernels::gelu`'s erf is within 5·10⁻⁷ of exact), and one backward
/// pass on Flex's autodiff device; Burn's composition everywhere else.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let flex = matches!(device.without_autodiff().as_dispatch(), DispatchDevice::Flex(_));
    if !flex || x.dtype() != burn::tensor::DType::F32 {
        return burn::tensor::activation::gelu(x);
    }
    let shape = x.shape();
    let flat = x.reshape([shape.num_elements()]);
    Tensor::<1>::from_dispatch(<Dispatch as GeluBackend>::gelu_erf(flat.into_dispatch())).reshape(shape)
}
