//! The layers of the NHWC training path as Burn operations with their own backward passes on
//! `flex` (with and without autodiff), through Burn's backend-extension mechanism: a
//! channels-last convolution, training-mode BatchNorm fused with its ReLU (or with the
//! residual add and ReLU that end a block), and the stem's max-pool.
//!
//! Tensors here are logically `[N, H, W, C]`; weights stay in Burn's `[C_out, C_in, k, k]`, so
//! the module, its checkpoints and its optimiser state do not change. The kernels are in
//! `train_conv.rs` and `train_norm.rs`; this file holds the autodiff glue. Anything but `f32`
//! takes the composition of Burn's own NCHW operations ([`unfused_conv`] and friends, also the
//! reference of the tests in `train_net.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape};
use margin::flex_element::FlexElement;

use crate::kernels::contiguous;

use super::nhwc::NhwcView;
use super::train_conv::{self, Geometry};
use super::train_norm::{self, NormStats};

/// Output of the BatchNorm operations.
#[derive(ExtensionType)]
pub struct NormNhwc<B: Backend> {
    /// `[N, H, W, C]`.
    pub output: FloatTensor<B>,
    /// Batch mean per channel, `[C]` (detached).
    pub mean: FloatTensor<B>,
    /// Biased batch variance per channel, `[C]`, without `ε` (detached).
    pub variance: FloatTensor<B>,
}

/// Backend extension: the channels-last layers of a ResNet in training.
#[backend_extension(Flex, Autodiff)]
pub trait NhwcTrainBackend: Backend {
    /// `x: [N, H, W, C_in]`, `weight: [C_out, C_in, k, k]` → `[N, H', W', C_out]`, a square
    /// convolution with this stride and symmetric padding, no bias.
    fn conv_nhwc(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self>;
    /// `relu?(batch_norm_train(x))` over the channels (last dimension) of `x: [N, H, W, C]`.
    fn batch_norm_nhwc(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu: bool) -> NormNhwc<Self>;
    /// `relu(batch_norm_train(x) + residual)`, both `[N, H, W, C]` (a residual block's end).
    fn batch_norm_add_relu_nhwc(
        x: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> NormNhwc<Self>;
    /// Max-pool 3×3, stride 2, padding 1 of `x: [N, H, W, C]`.
    fn max_pool_nhwc(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

// ---------------------------------------------------------------------------------------------
// Burn's NCHW composition (other dtypes; the tests' reference)
// ---------------------------------------------------------------------------------------------

fn to_nchw<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_permute(x, &[0, 3, 1, 2])
}

fn to_nhwc<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_permute(x, &[0, 2, 3, 1])
}

/// [`NhwcTrainBackend::conv_nhwc`] by Burn's `conv2d`.
pub fn unfused_conv<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, stride: usize, padding: usize) -> FloatTensor<B> {
    let options = ConvOptions::new([stride, stride], [padding, padding], [1, 1], 1);
    to_nhwc::<B>(B::conv2d(to_nchw::<B>(x), weight, None, options))
}

/// [`NhwcTrainBackend::batch_norm_nhwc`] (with `residual`: `batch_norm_add_relu_nhwc`) by
/// Burn's `batch_norm_train`, `add` and `relu`.
pub fn unfused_norm<B: Backend>(x: FloatTensor<B>, residual: Option<FloatTensor<B>>, gamma: FloatTensor<B>, beta: FloatTensor<B>, epsilon: f64, relu: bool) -> NormNhwc<B> {
    let r = B::batch_norm_train(to_nchw::<B>(x), gamma, beta, epsilon);
    let mut y = to_nhwc::<B>(r.output);
    if let Some(res) = residual {
        y = B::float_add(y, res);
    }
    NormNhwc { output: if relu { B::relu(y) } else { y }, mean: r.mean, variance: r.variance }
}

/// [`NhwcTrainBackend::max_pool_nhwc`] by Burn's `max_pool2d`.
pub fn unfused_max_pool<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    to_nhwc::<B>(B::max_pool2d(to_nchw::<B>(x), [3, 3], [2, 2], [1, 1], [1, 1], false))
}

// ---------------------------------------------------------------------------------------------
// Shapes and buffers
// ---------------------------------------------------------------------------------------------

fn dims4(t: &FlexTensor) -> Option<[usize; 4]> {
    let s = t.layout().shape();
    (s.num_dims() == 4).then(|| [s[0], s[1], s[2], s[3]])
}

fn view(t: &FlexTensor) -> NhwcView<'_> {
    let [n, h, w, c] = dims4(t).expect("rank checked by the caller");
    NhwcView { data: f32::slice(t), n, h, w, c }
}

fn tensor(v: Vec<f32>, dims: [usize; 4]) -> FlexTensor {
    f32::tensor(v, Shape::new(dims))
}

fn vector(v: &[f64]) -> FlexTensor {
    f32::tensor(v.iter().map(|v| *v as f32).collect(), Shape::new([v.len()]))
}

/// The convolution's geometry when the fast kernel serves it (`f32`, rank 4, channels agree,
/// a square kernel that fits the padded input).
fn conv_geometry(x: &FlexTensor, weight: &FlexTensor, stride: usize, padding: usize) -> Option<Geometry> {
    let ([n, h, w, c], ws) = (dims4(x)?, weight.layout().shape());
    let f32s = x.dtype() == DType::F32 && weight.dtype() == DType::F32;
    let non_empty = n > 0 && h > 0 && w > 0 && c > 0;
    let square = non_empty && ws.num_dims() == 4 && ws[1] == c && ws[2] == ws[3] && ws[0] > 0 && ws[2] > 0;
    let g = Geometry { c_out: ws[0], c_in: c, kernel: ws[2], stride, padding };
    (f32s && square && stride > 0 && g.out_size(h).is_some() && g.out_size(w).is_some()).then_some(g)
}

fn norm_fusable(x: &FlexTensor, residual: Option<&FlexTensor>, gamma: &FlexTensor, beta: &FlexTensor) -> bool {
    let Some(d) = dims4(x) else { return false };
    let c = d[3];
    let vec_c = |t: &FlexTensor| t.dtype() == DType::F32 && t.layout().shape().num_dims() == 1 && t.layout().shape()[0] == c;
    x.dtype() == DType::F32 && c > 0 && d.iter().all(|&v| v > 0) && vec_c(gamma) && vec_c(beta) && residual.is_none_or(|r| r.dtype() == DType::F32 && dims4(r) == Some(d))
}

/// `f32`, non-empty, and an image small enough for the arg-max's `u32` pixel index.
fn pool_fusable(x: &FlexTensor) -> bool {
    x.dtype() == DType::F32 && dims4(x).is_some_and(|d| d.iter().all(|&v| v > 0) && d[1] * d[2] <= u32::MAX as usize)
}

fn host(t: &FlexTensor) -> Vec<f32> {
    f32::slice(&contiguous(t.clone())).to_vec()
}

/// The forward pass of the convolution on contiguous operands.
fn conv_forward(x: &FlexTensor, weight: &FlexTensor, g: Geometry) -> FlexTensor {
    let y = train_conv::forward(view(x), f32::slice(weight), g);
    tensor(y.data, [y.n, y.h, y.w, y.c])
}

/// The forward pass of the BatchNorm operations on contiguous operands.
struct NormForward {
    output: FlexTensor,
    stats: NormStats,
    gamma: Vec<f32>,
}

fn norm_forward(x: &FlexTensor, residual: Option<&FlexTensor>, gamma: &FlexTensor, beta: &FlexTensor, epsilon: f64, relu: bool) -> NormForward {
    let d = dims4(x).expect("checked");
    let (gamma, beta) = (host(gamma), host(beta));
    let xs = f32::slice(x);
    let stats = train_norm::stats(xs, d[3], epsilon);
    let out = train_norm::normalize(xs, &stats, &gamma, &beta, residual.map(|r| f32::slice(r)), relu);
    NormForward { output: tensor(out, d), stats, gamma }
}

fn pool_forward(x: &FlexTensor) -> (FlexTensor, Vec<u32>) {
    let (out, arg, d) = train_norm::max_pool_forward(f32::slice(x), dims4(x).expect("checked"));
    (tensor(out, d), arg)
}

// ---------------------------------------------------------------------------------------------
// Flex (no autodiff)
// ---------------------------------------------------------------------------------------------

impl NhwcTrainBackend for Flex {
    fn conv_nhwc(x: FlexTensor, weight: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        match conv_geometry(&x, &weight, stride, padding) {
            Some(g) => conv_forward(&contiguous(x), &contiguous(weight), g),
            None => unfused_conv::<Flex>(x, weight, stride, padding),
        }
    }

    fn batch_norm_nhwc(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64, relu: bool) -> NormNhwc<Self> {
        if !norm_fusable(&x, None, &gamma, &beta) {
            return unfused_norm::<Flex>(x, None, gamma, beta, epsilon, relu);
        }
        let f = norm_forward(&contiguous(x), None, &gamma, &beta, epsilon, relu);
        NormNhwc { output: f.output, mean: vector(&f.stats.mean), variance: vector(&f.stats.var) }
    }

    fn batch_norm_add_relu_nhwc(x: FlexTensor, residual: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> NormNhwc<Self> {
        if !norm_fusable(&x, Some(&residual), &gamma, &beta) {
            return unfused_norm::<Flex>(x, Some(residual), gamma, beta, epsilon, true);
        }
        let f = norm_forward(&contiguous(x), Some(&contiguous(residual)), &gamma, &beta, epsilon, true);
        NormNhwc { output: f.output, mean: vector(&f.stats.mean), variance: vector(&f.stats.var) }
    }

    fn max_pool_nhwc(x: FlexTensor) -> FlexTensor {
        if !pool_fusable(&x) {
            return unfused_max_pool::<Flex>(x);
        }
        pool_forward(&contiguous(x)).0
    }
}

// ---------------------------------------------------------------------------------------------
// Autodiff<Flex>
// ---------------------------------------------------------------------------------------------

impl<C: CheckpointStrategy> NhwcTrainBackend for Autodiff<Flex, C> {
    fn conv_nhwc(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        let Some(g) = conv_geometry(x.primitive(), weight.primitive(), stride, padding) else {
            return unfused_conv::<Self>(x, weight, stride, padding);
        };
        let (xp, wp) = (contiguous(x.primitive().clone()), contiguous(weight.primitive().clone()));
        let out = conv_forward(&xp, &wp, g);
        match ConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(ConvState { x: xp, weight: wp, geometry: g }, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn batch_norm_nhwc(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64, relu: bool) -> NormNhwc<Self> {
        if !norm_fusable(x.primitive(), None, gamma.primitive(), beta.primitive()) {
            return unfused_norm::<Self>(x, None, gamma, beta, epsilon, relu);
        }
        let xp = contiguous(x.primitive().clone());
        let f = norm_forward(&xp, None, gamma.primitive(), beta.primitive(), epsilon, relu);
        let (mean, variance) = (vector(&f.stats.mean), vector(&f.stats.var));
        let output = match NormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = NormState { x: xp, output: relu.then(|| f.output.clone()), stats: f.stats, gamma: f.gamma };
                prep.finish(state, f.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(f.output),
        };
        NormNhwc { output, mean: FloatTensor::<Self>::new(mean), variance: FloatTensor::<Self>::new(variance) }
    }

    fn batch_norm_add_relu_nhwc(
        x: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> NormNhwc<Self> {
        if !norm_fusable(x.primitive(), Some(residual.primitive()), gamma.primitive(), beta.primitive()) {
            return unfused_norm::<Self>(x, Some(residual), gamma, beta, epsilon, true);
        }
        let xp = contiguous(x.primitive().clone());
        let rp = contiguous(residual.primitive().clone());
        let f = norm_forward(&xp, Some(&rp), gamma.primitive(), beta.primitive(), epsilon, true);
        let (mean, variance) = (vector(&f.stats.mean), vector(&f.stats.var));
        let output = match NormAddBackward.prepare::<C>([x.node(), residual.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = NormState { x: xp, output: Some(f.output.clone()), stats: f.stats, gamma: f.gamma };
                prep.finish(state, f.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(f.output),
        };
        NormNhwc { output, mean: FloatTensor::<Self>::new(mean), variance: FloatTensor::<Self>::new(variance) }
    }

    fn max_pool_nhwc(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !pool_fusable(x.primitive()) {
            return unfused_max_pool::<Self>(x);
        }
        let xp = contiguous(x.primitive().clone());
        let (out, arg) = pool_forward(&xp);
        match PoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = PoolState { arg: std::sync::Arc::new(arg), input: dims4(&xp).expect("checked") };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

#[derive(Debug)]
struct ConvBackward;

#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    geometry: Geometry,
}

impl Backward<Flex, 2> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (s, dyv) = (&ops.state, view(&dy));
        if let Some(node) = node_x {
            let [_, h, w, _] = dims4(&s.x).expect("checked");
            let dx = train_conv::backward_input(dyv, f32::slice(&s.weight), s.geometry, (h, w));
            grads.register::<Flex>(node.id, tensor(dx.data, [dx.n, dx.h, dx.w, dx.c]));
        }
        if let Some(node) = node_w {
            let dw = train_conv::backward_weight(view(&s.x), dyv, s.geometry);
            grads.register::<Flex>(node.id, f32::tensor(dw, s.weight.layout().shape().clone()));
        }
    }
}

#[derive(Clone, Debug)]
struct NormState {
    x: FlexTensor,
    /// The output, when it ended in ReLU (its mask).
    output: Option<FlexTensor>,
    stats: NormStats,
    gamma: Vec<f32>,
}

impl NormState {
    /// `g` (the gradient through the final ReLU, if any) and `(∂x, ∂γ, ∂β)`.
    fn grads(&self, dy: FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let d = dims4(&self.x).expect("checked");
        let dy = contiguous(dy);
        let g = match &self.output {
            Some(out) => tensor(train_norm::masked_grad(f32::slice(&dy), f32::slice(out)), d),
            None => dy,
        };
        let (dx, dgamma, dbeta) = train_norm::backward(f32::slice(&g), f32::slice(&self.x), &self.stats, &self.gamma);
        (g, tensor(dx, d), vector(&dgamma), vector(&dbeta))
    }
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let (_, dx, dgamma, dbeta) = ops.state.grads(grads.consume::<Flex>(&ops.node));
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct NormAddBackward;

impl Backward<Flex, 4> for NormAddBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_r, node_gamma, node_beta] = ops.parents;
        let (g, dx, dgamma, dbeta) = ops.state.grads(grads.consume::<Flex>(&ops.node));
        for (node, g) in [(node_x, dx), (node_r, g), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct PoolBackward;

#[derive(Clone, Debug)]
struct PoolState {
    arg: std::sync::Arc<Vec<u32>>,
    input: [usize; 4],
}

impl Backward<Flex, 1> for PoolBackward {
    type State = PoolState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        if let Some(node) = node_x {
            let [_, oh, ow, _] = dims4(&dy).expect("the output's rank");
            let dx = train_norm::max_pool_backward(f32::slice(&dy), &ops.state.arg, ops.state.input, [oh, ow]);
            grads.register::<Flex>(node.id, tensor(dx, ops.state.input));
        }
    }
}
