//! The ResNet forward pass of training on `flex` in channels-last layout, on the operations
//! of `train_ops.rs`: `ResNet::forward_features` takes it on the autodiff device when a
//! gradient is wanted (f32, torchvision's convolution geometry).
//!
//! The image batch is permuted to NHWC once; every convolution, BatchNorm (+ReLU, or
//! + residual + ReLU) and the stem's max-pool then reads and writes channels-last buffers, and
//! the global average pool is a mean over the pixel rows. Semantics are those of
//! [`ResNet::forward_features_reference`] (burn-nn's BatchNorm): batch statistics and a
//! running-statistics update in a training-mode BatchNorm, running statistics in a frozen or
//! eval-mode one (an affine map per channel, by Burn's ops). Tested equal to it — output, the
//! gradient of every parameter, the running statistics — below.

use burn::nn::conv::Conv2d;
use burn::nn::BatchNorm;
use burn::backend::Dispatch;
use burn::tensor::activation::relu;
use burn::tensor::Tensor;

use crate::kernels::update_running_statistics;

use super::block::Block;
use super::net::ResNet;
use super::nhwc::square_geometry;
use super::ops::uses_batch_statistics;
use super::train_ops::{NhwcTrainBackend, NormNhwc};

/// What follows a convolution's BatchNorm.
enum Tail {
    /// Nothing (a projection shortcut, a bottleneck's last BatchNorm before the add).
    None,
    /// ReLU.
    Relu,
    /// `relu(· + residual)`, the end of a block.
    AddRelu(Tensor<4>),
}

/// `tail(bn(conv(x)))` on channels-last tensors.
///
/// # Shapes
/// `[N, H, W, C_in] → [N, H', W', C_out]`.
fn conv_bn(x: Tensor<4>, conv: &Conv2d, bn: &BatchNorm, tail: Tail) -> Tensor<4> {
    let (stride, padding) = square_geometry(conv).expect("checked by ResNet::takes_nhwc_training");
    let train = uses_batch_statistics(&x, bn);
    let mut y = Tensor::<4>::from_dispatch(<Dispatch as NhwcTrainBackend>::conv_nhwc(x.into_dispatch(), conv.weight.val().into_dispatch(), stride, padding));
    if let Some(b) = &conv.bias {
        let c = b.dims()[0];
        y = y.add(b.val().reshape([1, 1, 1, c]));
    }
    if !train {
        return eval_norm(y, bn, tail);
    }
    let (gamma, beta, eps) = (bn.gamma.val().into_dispatch(), bn.beta.val().into_dispatch(), bn.epsilon);
    let r: NormNhwc<Dispatch> = match tail {
        Tail::None => <Dispatch as NhwcTrainBackend>::batch_norm_nhwc(y.into_dispatch(), gamma, beta, eps, false),
        Tail::Relu => <Dispatch as NhwcTrainBackend>::batch_norm_nhwc(y.into_dispatch(), gamma, beta, eps, true),
        Tail::AddRelu(res) => <Dispatch as NhwcTrainBackend>::batch_norm_add_relu_nhwc(y.into_dispatch(), res.into_dispatch(), gamma, beta, eps),
    };
    update_running_statistics(bn, Tensor::from_dispatch(r.mean), Tensor::from_dispatch(r.variance));
    Tensor::from_dispatch(r.output)
}

/// BatchNorm with running statistics over the last dimension, then the tail.
fn eval_norm(y: Tensor<4>, bn: &BatchNorm, tail: Tail) -> Tensor<4> {
    let device = y.device();
    let mean = bn.running_mean.value().to_device(&device);
    let var = bn.running_var.value().to_device(&device);
    let c = mean.dims()[0];
    let scale = bn.gamma.val().div(var.add_scalar(bn.epsilon).sqrt());
    let shift = bn.beta.val().sub(mean.mul(scale.clone()));
    let y = y.mul(scale.reshape([1, 1, 1, c])).add(shift.reshape([1, 1, 1, c]));
    match tail {
        Tail::None => y,
        Tail::Relu => relu(y),
        Tail::AddRelu(res) => relu(y.add(res)),
    }
}

impl Block {
    /// [`Block::forward`] on channels-last tensors.
    fn forward_nhwc(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => conv_bn(x.clone(), &d.conv, &d.bn, Tail::None),
            None => x.clone(),
        };
        let out = conv_bn(x, &self.conv1, &self.bn1, Tail::Relu);
        match (&self.conv3, &self.bn3) {
            (Some(c3), Some(b3)) => conv_bn(conv_bn(out, &self.conv2, &self.bn2, Tail::Relu), c3, b3, Tail::AddRelu(identity)),
            _ => conv_bn(out, &self.conv2, &self.bn2, Tail::AddRelu(identity)),
        }
    }

    fn convs(&self) -> impl Iterator<Item = &Conv2d> {
        [Some(&self.conv1), Some(&self.conv2), self.conv3.as_ref(), self.downsample.as_ref().map(|d| &d.conv)].into_iter().flatten()
    }
}

impl ResNet {
    /// Whether every convolution has a geometry the channels-last kernels serve.
    pub(super) fn nhwc_convolutions(&self) -> bool {
        square_geometry(&self.conv1).is_some() && self.layers.iter().flat_map(|s| &s.blocks).all(|b| b.convs().all(|c| square_geometry(c).is_some()))
    }

    /// [`ResNet::forward_features`] in channels-last layout on the training operations.
    ///
    /// # Shapes
    /// `[N, 3, H, W] → [N, F]`.
    pub(super) fn forward_features_nhwc(&self, x: Tensor<4>) -> Tensor<2> {
        let x = conv_bn(x.permute([0, 2, 3, 1]), &self.conv1, &self.bn1, Tail::Relu);
        let mut x = Tensor::<4>::from_dispatch(<Dispatch as NhwcTrainBackend>::max_pool_nhwc(x.into_dispatch()));
        for b in self.layers.iter().flat_map(|s| &s.blocks) {
            x = b.forward_nhwc(x);
        }
        let [n, h, w, c] = x.dims();
        x.reshape([n, h * w, c]).mean_dim(1).reshape([n, c])
    }
}

#[cfg(test)]
#[path = "train_tests.rs"]
mod tests;
