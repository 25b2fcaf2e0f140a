//! Fused BatchNorm2d (training mode) → ReLU → MaxPool 2×2/2 for the Flex CPU backend.
//!
//! Forward is two passes over the input: per-(sample, channel)-plane sums (combined per channel
//! in `f64`), then one pass writing the pooled output `relu(max over window of γ·x̂ + β)`.
//! Because `x ↦ γ·(x − μ)/σ + β` is monotone per channel, the window maximum is taken on the raw
//! input (its minimum when `γ < 0`) and normalised once per output value.
//!
//! Backward is two passes: per plane, the arg-max of each window and the sums Σg and Σg·x over
//! the windows whose output is positive (the only places the ReLU∘pool gradient is non-zero);
//! then, with the per-channel `∂β = Σg` and `∂γ = Σg·x̂`, one pass writing
//! `∂x = γ/σ · (g − ∂β/M − x̂·∂γ/M)` for every element.
//!
//! Only `f32` and `f64` on Flex take the fused path; anything else (other dtypes, rank ≠ 4,
//! inputs smaller than one window, mismatched parameter shapes) falls back to Burn's own
//! `batch_norm_train` → `max_pool2d` → `relu` on the same backend.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;

use super::contiguous;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};
use burn::tensor::{DType, Shape};
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// Output of [`BnReluPoolBackend::batch_norm_relu_max_pool_train`].
#[derive(ExtensionType)]
pub struct BnReluPool<B: Backend> {
    /// `relu(max_pool2x2(batch_norm(x)))`, shape `[N, C, H/2, W/2]` (floored).
    pub output: FloatTensor<B>,
    /// Batch mean per channel, `[C]` (detached on autodiff backends).
    pub mean: FloatTensor<B>,
    /// Biased (population) batch variance per channel, `[C]`, without epsilon (detached).
    pub variance: FloatTensor<B>,
}

/// Backend extension: fused BatchNorm (batch statistics) → ReLU → MaxPool 2×2 stride 2.
#[backend_extension(Flex, Autodiff)]
pub trait BnReluPoolBackend: Backend {
    /// Training-mode batch norm with affine `gamma`/`beta`, then ReLU and 2×2/2 max pooling
    /// (no padding, floor mode). `x` is `[N, C, H, W]`, `gamma` and `beta` are `[C]`.
    fn batch_norm_relu_max_pool_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BnReluPool<Self>;
}

/// The unfused composition on any backend (reference semantics and fallback).
fn unfused<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> BnReluPool<B> {
    let r = B::batch_norm_train(x, gamma, beta, epsilon);
    let pooled = B::max_pool2d(r.output, [2, 2], [2, 2], [0, 0], [1, 1], false);
    BnReluPool {
        output: B::relu(pooled),
        mean: r.mean,
        variance: r.variance,
    }
}

impl BnReluPoolBackend for Flex {
    fn batch_norm_relu_max_pool_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> BnReluPool<Self> {
        if !fusable(&x, &gamma, &beta) {
            return unfused::<Flex>(x, gamma, beta, epsilon);
        }
        let f = fused_forward(x, &gamma, &beta, epsilon);
        BnReluPool {
            output: f.output,
            mean: f.mean_t,
            variance: f.var_t,
        }
    }
}

impl<C: CheckpointStrategy> BnReluPoolBackend for Autodiff<Flex, C> {
    fn batch_norm_relu_max_pool_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BnReluPool<Self> {
        if !fusable(x.primitive(), gamma.primitive(), beta.primitive()) {
            return unfused::<Self>(x, gamma, beta, epsilon);
        }
        match BnReluPoolBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let xp = x.primitive().clone();
                let f = fused_forward(xp, gamma.primitive(), beta.primitive(), epsilon);
                let state = BnReluPoolState {
                    x: f.x.clone(),
                    output: f.output.clone(),
                    gamma: f.gamma.clone(),
                    mean: f.mean.clone(),
                    invstd: f.invstd.clone(),
                    param_dtype: gamma.primitive().dtype(),
                };
                let output = prep.finish(state, f.output);
                BnReluPool {
                    output,
                    mean: FloatTensor::<Self>::new(f.mean_t),
                    variance: FloatTensor::<Self>::new(f.var_t),
                }
            }
            OpsKind::UnTracked(prep) => {
                let xp = x.primitive().clone();
                let f = fused_forward(xp, gamma.primitive(), beta.primitive(), epsilon);
                BnReluPool {
                    output: prep.finish(f.output),
                    mean: FloatTensor::<Self>::new(f.mean_t),
                    variance: FloatTensor::<Self>::new(f.var_t),
                }
            }
        }
    }
}

#[derive(Debug)]
struct BnReluPoolBackward;

#[derive(Clone, Debug)]
struct BnReluPoolState {
    /// Contiguous input.
    x: FlexTensor,
    /// Forward output (the ReLU mask is `output > 0`).
    output: FlexTensor,
    gamma: Vec<f64>,
    mean: Vec<f64>,
    invstd: Vec<f64>,
    param_dtype: DType,
}

impl Backward<Flex, 3> for BnReluPoolBackward {
    type State = BnReluPoolState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (dx, dgamma, dbeta) = fused_backward(&ops.state, grad);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, dbeta);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw-buffer kernels
// ---------------------------------------------------------------------------------------------

use margin::flex_element::FlexElement as KFloat;
use margin_linalg::buffer::build;

fn fusable(x: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor) -> bool {
    let dtype = x.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) || gamma.dtype() != dtype || beta.dtype() != dtype {
        return false;
    }
    let s = x.layout().shape();
    if s.num_dims() != 4 || s[0] == 0 || s[1] == 0 || s[2] < 2 || s[3] < 2 {
        return false;
    }
    let c = s[1];
    gamma.layout().shape().num_dims() == 1
        && gamma.layout().shape()[0] == c
        && beta.layout().shape().num_dims() == 1
        && beta.layout().shape()[0] == c
}

fn to_f64_vec(t: &FlexTensor) -> Vec<f64> {
    let t = contiguous(t.clone());
    match t.dtype() {
        DType::F32 => f32::slice(&t).iter().map(|v| *v as f64).collect(),
        DType::F64 => f64::slice(&t).to_vec(),
        d => unreachable!("fused batch norm: unsupported dtype {d:?}"),
    }
}

fn from_f64_vec(v: &[f64], dtype: DType) -> FlexTensor {
    let mut t = FlexTensor::empty(Shape::new([v.len()]), dtype);
    match dtype {
        DType::F32 => f32::slice_mut(&mut t).iter_mut().zip(v).for_each(|(o, i)| *o = *i as f32),
        DType::F64 => f64::slice_mut(&mut t).copy_from_slice(v),
        d => unreachable!("fused batch norm: unsupported dtype {d:?}"),
    }
    t
}

#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

impl Dims {
    fn of(x: &FlexTensor) -> Self {
        let s = x.layout().shape();
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        Dims { n, c, h, w, ho: h / 2, wo: w / 2 }
    }
    fn m(&self) -> f64 {
        (self.n * self.h * self.w) as f64
    }
}

struct Forward {
    x: FlexTensor,
    output: FlexTensor,
    mean_t: FlexTensor,
    var_t: FlexTensor,
    gamma: Vec<f64>,
    mean: Vec<f64>,
    invstd: Vec<f64>,
}

fn fused_forward(x: FlexTensor, gamma: &FlexTensor, beta: &FlexTensor, epsilon: f64) -> Forward {
    let x = contiguous(x);
    let d = Dims::of(&x);
    let gamma = to_f64_vec(gamma);
    let beta = to_f64_vec(beta);
    let dtype = x.dtype();
    let (mean, var) = match dtype {
        DType::F32 => channel_stats(f32::slice(&x), d),
        DType::F64 => channel_stats(f64::slice(&x), d),
        d => unreachable!("fused batch norm: unsupported dtype {d:?}"),
    };
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
    let scale: Vec<f64> = (0..d.c).map(|c| gamma[c] * invstd[c]).collect();
    let shift: Vec<f64> = (0..d.c).map(|c| beta[c] - mean[c] * scale[c]).collect();
    let out_shape = Shape::new([d.n, d.c, d.ho, d.wo]);
    let out_len = d.n * d.c * d.ho * d.wo;
    let output = match dtype {
        DType::F32 => {
            let xs = f32::slice(&x);
            // SAFETY: `forward_pool` writes every element of its output (checked by `build` in debug builds).
            f32::tensor(unsafe { build(out_len, |o| forward_pool(xs, o, d, &scale, &shift)) }, out_shape)
        }
        DType::F64 => {
            let xs = f64::slice(&x);
            // SAFETY: `forward_pool` writes every element of its output (checked by `build` in debug builds).
            f64::tensor(unsafe { build(out_len, |o| forward_pool(xs, o, d, &scale, &shift)) }, out_shape)
        }
        _ => unreachable!(),
    };
    Forward {
        mean_t: from_f64_vec(&mean, dtype),
        var_t: from_f64_vec(&var, dtype),
        x,
        output,
        gamma,
        mean,
        invstd,
    }
}

/// Per-channel mean and biased variance, accumulated in `f64` per plane, then per channel.
fn channel_stats<T: KFloat>(x: &[T], d: Dims) -> (Vec<f64>, Vec<f64>) {
    let hw = d.h * d.w;
    let sums: Vec<(f64, f64)> = x
        .par_chunks(hw)
        .map(|p| {
            let mut s = [0f64; 8];
            let mut q = [0f64; 8];
            let chunks = p.chunks_exact(8);
            let rem = chunks.remainder();
            for ch in chunks {
                for k in 0..8 {
                    let v = ch[k].f();
                    s[k] += v;
                    q[k] += v * v;
                }
            }
            let mut s: f64 = s.iter().sum();
            let mut q: f64 = q.iter().sum();
            for v in rem {
                let v = v.f();
                s += v;
                q += v * v;
            }
            (s, q)
        })
        .collect();
    let m = d.m();
    let mut mean = vec![0f64; d.c];
    let mut var = vec![0f64; d.c];
    for c in 0..d.c {
        let (mut s, mut q) = (0f64, 0f64);
        for n in 0..d.n {
            let (ps, pq) = sums[n * d.c + c];
            s += ps;
            q += pq;
        }
        let mu = s / m;
        mean[c] = mu;
        var[c] = (q / m - mu * mu).max(0.0);
    }
    (mean, var)
}

#[inline(always)]
fn pmax<T: KFloat>(a: T, b: T) -> T {
    // First maximum wins; NaN propagates (as Burn's max pool does).
    if b > a || b.is_nan() { b } else { a }
}

#[inline(always)]
fn pmin<T: KFloat>(a: T, b: T) -> T {
    if b < a || b.is_nan() { b } else { a }
}

#[inline(always)]
fn relu<T: KFloat>(v: T) -> T {
    if v <= T::ZERO { T::ZERO } else { v }
}

/// Writes every element of `out` (`[N, C, H/2, W/2]`).
fn forward_pool<T: KFloat>(x: &[T], out: &mut [MaybeUninit<T>], d: Dims, scale: &[f64], shift: &[f64]) {
    let hw = d.h * d.w;
    let howo = d.ho * d.wo;
    let (w, wo) = (d.w, d.wo);
    x.par_chunks(hw)
        .zip(out.par_chunks_mut(howo))
        .enumerate()
        .for_each(|(p, (xp, op))| {
            let c = p % d.c;
            let s = T::of(scale[c]);
            let t = T::of(shift[c]);
            let neg = scale[c] < 0.0;
            for i in 0..d.ho {
                let r0 = &xp[2 * i * w..2 * i * w + 2 * wo];
                let r1 = &xp[(2 * i + 1) * w..(2 * i + 1) * w + 2 * wo];
                let o = &mut op[i * wo..(i + 1) * wo];
                if neg {
                    for j in 0..wo {
                        let m = pmin(pmin(r0[2 * j], r0[2 * j + 1]), pmin(r1[2 * j], r1[2 * j + 1]));
                        o[j].write(relu(m * s + t));
                    }
                } else {
                    for j in 0..wo {
                        let m = pmax(pmax(r0[2 * j], r0[2 * j + 1]), pmax(r1[2 * j], r1[2 * j + 1]));
                        o[j].write(relu(m * s + t));
                    }
                }
            }
        });
}

/// The selected element of a window `[a, b, c, d]` (row-major) and its index: the first maximum
/// of `γ·x̂ + β`, i.e. the first maximum of `x` when the scale is positive, the first minimum when
/// it is negative, and the first element when it is zero (all values tie). Written as selects so
/// that it compiles without data-dependent branches.
#[inline(always)]
fn select<T: KFloat>(v: [T; 4], sign: i8) -> (T, u8) {
    let [a, b, c, d] = v;
    if sign > 0 {
        let (m01, k01) = if b > a { (b, 1) } else { (a, 0) };
        let (m23, k23) = if d > c { (d, 3) } else { (c, 2) };
        if m23 > m01 { (m23, k23) } else { (m01, k01) }
    } else if sign < 0 {
        let (m01, k01) = if b < a { (b, 1) } else { (a, 0) };
        let (m23, k23) = if d < c { (d, 3) } else { (c, 2) };
        if m23 < m01 { (m23, k23) } else { (m01, k01) }
    } else {
        (a, 0)
    }
}

fn fused_backward(st: &BnReluPoolState, grad: FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
    let grad = contiguous(grad);
    let d = Dims::of(&st.x);
    let dtype = st.x.dtype();
    let shape = st.x.layout().shape().clone();
    let len = shape.num_elements();
    let (dx, (dgamma, dbeta)) = match dtype {
        DType::F32 => {
            let mut sums = None;
            // SAFETY: `backward_impl` writes every element of `dx` (checked by `build` in debug builds).
            let dx = unsafe { build(len, |dx| sums = Some(backward_impl::<f32>(st, f32::slice(&grad), dx, d))) };
            (f32::tensor(dx, shape), sums.unwrap())
        }
        DType::F64 => {
            let mut sums = None;
            // SAFETY: `backward_impl` writes every element of `dx` (checked by `build` in debug builds).
            let dx = unsafe { build(len, |dx| sums = Some(backward_impl::<f64>(st, f64::slice(&grad), dx, d))) };
            (f64::tensor(dx, shape), sums.unwrap())
        }
        d => unreachable!("fused batch norm: unsupported dtype {d:?}"),
    };
    (
        dx,
        from_f64_vec(&dgamma, st.param_dtype),
        from_f64_vec(&dbeta, st.param_dtype),
    )
}

/// Writes every element of `dx` (`[N, C, H, W]`); returns `(∂γ, ∂β)`.
fn backward_impl<T: KFloat>(st: &BnReluPoolState, g: &[T], dx: &mut [MaybeUninit<T>], d: Dims) -> (Vec<f64>, Vec<f64>) {
    let x = T::slice(&st.x);
    let out = T::slice(&st.output);
    let hw = d.h * d.w;
    let howo = d.ho * d.wo;
    let (w, wo) = (d.w, d.wo);
    let sign = |c: usize| -> i8 {
        let s = st.gamma[c] * st.invstd[c];
        if s > 0.0 {
            1
        } else if s < 0.0 {
            -1
        } else {
            0
        }
    };
    // Pass 1: arg-max per window, Σg and Σg·x over windows with a positive output.
    let mut arg = vec![0u8; d.n * d.c * howo];
    let sums: Vec<(f64, f64)> = x
        .par_chunks(hw)
        .zip(arg.par_chunks_mut(howo))
        .zip(g.par_chunks(howo))
        .zip(out.par_chunks(howo))
        .enumerate()
        .map(|(p, (((xp, ap), gp), op))| {
            let sg_ = sign(p % d.c);
            let (mut sg, mut sgx) = (0f64, 0f64);
            for i in 0..d.ho {
                let r0 = &xp[2 * i * w..2 * i * w + 2 * wo];
                let r1 = &xp[(2 * i + 1) * w..(2 * i + 1) * w + 2 * wo];
                let (mut rs, mut rsx) = (T::ZERO, T::ZERO);
                let o0 = i * wo;
                for j in 0..wo {
                    let v = [r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]];
                    let (xs, k) = select(v, sg_);
                    ap[o0 + j] = k;
                    let gv = if op[o0 + j] > T::ZERO { gp[o0 + j] } else { T::ZERO };
                    rs = rs + gv;
                    rsx = rsx + gv * xs;
                }
                sg += rs.f();
                sgx += rsx.f();
            }
            (sg, sgx)
        })
        .collect();
    let m = d.m();
    let mut dgamma = vec![0f64; d.c];
    let mut dbeta = vec![0f64; d.c];
    for c in 0..d.c {
        let (mut sg, mut sgx) = (0f64, 0f64);
        for n in 0..d.n {
            let (a, b) = sums[n * d.c + c];
            sg += a;
            sgx += b;
        }
        dbeta[c] = sg;
        dgamma[c] = st.invstd[c] * (sgx - st.mean[c] * sg);
    }
    // Pass 2: ∂x = a·g_y + b·(x − μ) + e with a = γ/σ, b = −γ/σ² · ∂γ/M, e = −γ/σ · ∂β/M.
    let coef: Vec<(T, T, T, T)> = (0..d.c)
        .map(|c| {
            let a = st.gamma[c] * st.invstd[c];
            let b = -a * st.invstd[c] * dgamma[c] / m;
            let e = -a * dbeta[c] / m;
            (T::of(a), T::of(b), T::of(e), T::of(st.mean[c]))
        })
        .collect();
    dx.par_chunks_mut(hw)
        .zip(x.par_chunks(hw))
        .zip(arg.par_chunks(howo))
        .zip(g.par_chunks(howo))
        .zip(out.par_chunks(howo))
        .enumerate()
        .for_each(|(p, ((((dp, xp), ap), gp), op))| {
            let (a, b, e, mu) = coef[p % d.c];
            // The whole plane written (`init_from` asserts `xp` covers `dp`, both `H·W`),
            // and from here on an initialised `&mut [T]`.
            let dp: &mut [T] = margin_linalg::buffer::init_from(dp, xp.iter().map(|&v| b * (v - mu) + e));
            for i in 0..d.ho {
                for j in 0..wo {
                    let o = i * wo + j;
                    let gv = if op[o] > T::ZERO { gp[o] } else { T::ZERO };
                    let k = ap[o] as usize;
                    let idx = (2 * i + (k >> 1)) * w + 2 * j + (k & 1);
                    dp[idx] = dp[idx] + a * gv;
                }
            }
        });
    (dgamma, dbeta)
}
