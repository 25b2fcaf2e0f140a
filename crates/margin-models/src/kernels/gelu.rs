//! Exact (erf) GELU for the Flex CPU backend in f32: one vectorised pass.
//!
//! Burn composes `gelu` from five element-wise ops, one of them libm's scalar `erff`: on
//! all-MiniLM-L6-v2 that was 30% of the encoder's time (a 768 × 1536 activation took
//! 15.7 ms, against 11 ms for the GEMM that produced it). Here `erf` is the rational
//! approximation Eigen and XLA use for f32 (`x·P(x²)/Q(x²)` on `x` clamped to [−4, 4];
//! within 5 × 10⁻⁷ of the exact erf, tested against f64 libm), so the whole
//! `x · ½(1 + erf(x/√2))` is one branch-free loop the compiler vectorises (AVX2 + FMA when
//! the CPU has them, same bits either way since nothing is contracted).
//!
//! On the autodiff device (fine-tuning) the backward is one pass too:
//! `∂x = ∂y · (Φ(x) + x · φ(x))`, `Φ(x) = ½(1 + erf(x/√2))`, `φ(x) = e^{−x²/2} / √(2π)`,
//! from the saved input — where Burn's autodiff differentiates its five-op composition
//! (libm's scalar `erff` again, and a pass per op). Another dtype or backend takes Burn's
//! `gelu`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;

use super::contiguous;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::DType;
use core::mem::MaybeUninit;
use margin::flex_element::FlexElement;
use margin_linalg::buffer::build;
use rayon::prelude::*;

/// Backend extension: exact GELU (with its backward on the autodiff device).
#[backend_extension(Flex, Autodiff)]
pub trait GeluBackend: Backend {
    /// `x · Φ(x)` element-wise, any shape (f32).
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl GeluBackend for Flex {
    fn gelu_erf(x: FlexTensor) -> FlexTensor {
        forward(&contiguous(x))
    }
}

impl<C: CheckpointStrategy> GeluBackend for Autodiff<Flex, C> {
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let xp = contiguous(x.primitive().clone());
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = forward(&xp);
                prep.finish(xp, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&xp)),
        }
    }
}

/// `gelu(x)` of a contiguous f32 tensor.
fn forward(x: &FlexTensor) -> FlexTensor {
    debug_assert_eq!(x.dtype(), DType::F32, "callers check the dtype");
    let input = f32::slice(x);
    // SAFETY: `gelu_into` writes every element of its output (checked by `build` in debug builds).
    let out = unsafe { build(input.len(), |o| gelu_into(input, o)) };
    f32::tensor(out, x.layout().shape().clone())
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    /// The contiguous input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        if let Some(node) = node {
            let (x, dy) = (f32::slice(&ops.state), f32::slice(&grad));
            debug_assert_eq!(x.len(), dy.len());
            // SAFETY: `gelu_grad_into` writes every element of its output (checked by `build`
            // in debug builds).
            let dx = unsafe { build(x.len(), |o| gelu_grad_into(x, dy, o)) };
            grads.register::<Flex>(node.id, f32::tensor(dx, ops.state.layout().shape().clone()));
        }
    }
}

/// Elements per parallel task: large enough that rayon's overhead is negligible.
const CHUNK: usize = 1 << 14;

fn gelu_into(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, x)| gelu_chunk(x, o));
}

margin_linalg::avx2_dispatch! {
    fn gelu_chunk(x: &[f32], out: &mut [MaybeUninit<f32>]) = gelu_chunk_impl;
}

fn gelu_grad_into(x: &[f32], dy: &[f32], out: &mut [MaybeUninit<f32>]) {
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK))).for_each(|(o, (x, dy))| gelu_grad_chunk(x, dy, o));
}

margin_linalg::avx2_dispatch! {
    fn gelu_grad_chunk(x: &[f32], dy: &[f32], out: &mut [MaybeUninit<f32>]) = gelu_grad_chunk_impl;
}

#[inline(always)]
fn gelu_grad_chunk_impl(x: &[f32], dy: &[f32], out: &mut [MaybeUninit<f32>]) {
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(dy) {
        o.write(g * gelu_derivative_f32(v));
    }
}

#[inline(always)]
fn gelu_chunk_impl(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(gelu_f32(v));
    }
}

/// `erf` for f32: Eigen's / XLA's rational approximation on [−4, 4] (|erf| rounds to 1 beyond).
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_3e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

/// `x · ½ (1 + erf(x / √2))`.
#[inline(always)]
pub fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * core::f32::consts::FRAC_1_SQRT_2))
}

/// `d/dx gelu(x) = Φ(x) + x · φ(x)`.
#[inline(always)]
pub fn gelu_derivative_f32(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf_f32(x * core::f32::consts::FRAC_1_SQRT_2));
    // exp underflows to 0 for |x| > ~13.2, where the term is 0 anyway (x·φ(x) < 1e-36).
    cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 by its Maclaurin series (|x| ≤ 2) or continued fraction of erfc (|x| > 2).
    fn erf64(x: f64) -> f64 {
        let a = x.abs();
        let r = if a <= 2.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-18 {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / core::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + …))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / core::f64::consts::PI.sqrt() / f
        };
        r.copysign(x)
    }

    #[test]
    fn erf_approximation_is_within_5e7_of_exact() {
        let mut worst = 0f64;
        for i in -120_000..=120_000 {
            let x = i as f64 * 1e-4;
            worst = worst.max((erf_f32(x as f32) as f64 - erf64(x)).abs());
        }
        assert!(worst < 5e-7, "max |erf error| {worst}");
        assert!((erf_f32(f32::INFINITY) - 1.0).abs() < 5e-7);
        assert!((erf_f32(f32::NEG_INFINITY) + 1.0).abs() < 5e-7);
        assert!(gelu_f32(f32::NAN).is_nan(), "NaN propagates (not hidden by the clamp)");
    }

    #[test]
    fn kernel_equals_burns_gelu_on_flex() {
        use burn::tensor::{Device, Distribution, Tensor};
        let device = Device::flex();
        let x = Tensor::<2>::random([300, 70], Distribution::Normal(0.0, 3.0), &device);
        for x in [x.clone(), x.transpose()] {
            let ours = crate::kernels::gelu(x.clone()).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
            let burn = burn::tensor::activation::gelu(x).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
            let d = ours.iter().zip(&burn).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(d < 2e-6, "kernel vs Burn: {d}");
        }
    }

    /// On the autodiff device the kernel's value and gradient equal Burn's composition's
    /// (including a non-contiguous input and an upstream gradient that is not all ones), and
    /// its derivative equals a central difference in f64 of the exact GELU.
    #[test]
    fn autodiff_kernel_equals_burns_gelu_and_its_gradient() {
        use burn::tensor::{Device, Distribution, Tensor};
        let ad = Device::flex().autodiff();
        ad.seed(4);
        let x0 = Tensor::<2>::random([40, 70], Distribution::Normal(0.0, 3.0), &ad);
        let w = Tensor::<2>::random([70, 40], Distribution::Normal(0.0, 1.0), &ad);
        let run = |ours: bool| {
            let x = x0.clone().require_grad();
            let xt = x.clone().transpose();
            let y = if ours { crate::kernels::gelu(xt) } else { burn::tensor::activation::gelu(xt) };
            let g = y.clone().mul(w.clone()).sum().backward();
            let dx = x.grad(&g).expect("a gradient").into_data().try_into_vec::<f32>().unwrap();
            (y.into_data().try_into_vec::<f32>().unwrap(), dx)
        };
        let ((ya, ga), (yb, gb)) = (run(true), run(false));
        let max = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(max(&ya, &yb) < 2e-6, "value: {}", max(&ya, &yb));
        assert!(max(&ga, &gb) < 1e-5, "gradient: {}", max(&ga, &gb));
        let gelu64 = |x: f64| 0.5 * x * (1.0 + erf64(x / core::f64::consts::SQRT_2));
        for i in -800..=800 {
            let x = i as f64 * 0.01;
            let h = 1e-5;
            let fd = (gelu64(x + h) - gelu64(x - h)) / (2.0 * h);
            assert!((gelu_derivative_f32(x as f32) as f64 - fd).abs() < 2e-6, "x = {x}");
        }
    }
}
