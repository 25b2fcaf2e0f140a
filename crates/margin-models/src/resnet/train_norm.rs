//! Training-mode BatchNorm (with its ReLU, or residual add and ReLU) and the stem's max-pool on
//! channels-last buffers: the non-convolution layers of the NHWC training path (`train_ops.rs`).
//!
//! BatchNorm over `x: [M = N·H·W, C]`, batch statistics, `ε` inside the square root:
//!
//! - forward, two passes: per-channel `Σx`, `Σx²` (in `f64`, over fixed chunks of rows summed in
//!   order), then `y = act(γ·x̂ + β [+ r])`, `x̂ = (x − μ)·σ⁻¹` (the mean subtracted first: folding
//!   it into a shift, `x·γσ⁻¹ + (β − μγσ⁻¹)`, cancels when |μ| ≫ σ), `act` ReLU or the identity;
//! - backward, two passes: with `g = ∂y · [y > 0]` (ReLU) or `∂y`, the sums `Σg` and `Σg·x`,
//!   whence `∂β = Σg`, `∂γ = σ⁻¹·(Σg·x − μ·Σg)`; then
//!   `∂x = γσ⁻¹·(g − ∂β/M − x̂·∂γ/M)` and, with a residual, `∂r = g`.
//!
//! Max-pool 3×3, stride 2, padding 1 (torchvision's stem) keeps the arg-max of every output
//! element (first maximum wins; NaN propagates); its backward adds `∂y` there, image by image.
//!
//! Tested against Burn's `batch_norm_train`, `relu`, `add` and `max_pool2d` with autodiff
//! (`train_net.rs`).

use core::mem::MaybeUninit;

use margin_linalg::buffer::build;
use rayon::prelude::*;

/// Rows per statistics chunk (a constant: the sum order is a function of the shapes).
const STAT_ROWS: usize = 512;

/// What the BatchNorm forward keeps for its backward.
#[derive(Debug, Clone)]
pub(super) struct NormStats {
    pub(super) mean: Vec<f64>,
    /// Biased (population) variance, without `ε`.
    pub(super) var: Vec<f64>,
    pub(super) invstd: Vec<f64>,
}

/// Per-channel `(Σa, Σa·b)` over the rows of `a` and `b` (`[M, C]`), in `f64`, chunk by chunk
/// in a fixed order; `b = None` means `b = a`.
fn channel_sums(a: &[f32], b: Option<&[f32]>, c: usize) -> (Vec<f64>, Vec<f64>) {
    let partials: Vec<(Vec<f64>, Vec<f64>)> = a
        .par_chunks(STAT_ROWS * c)
        .enumerate()
        .map(|(i, a)| {
            let b = b.map(|b| &b[i * STAT_ROWS * c..i * STAT_ROWS * c + a.len()]).unwrap_or(a);
            let (mut s, mut q) = (vec![0f64; c], vec![0f64; c]);
            for (ra, rb) in a.chunks_exact(c).zip(b.chunks_exact(c)) {
                for ch in 0..c {
                    let (va, vb) = (ra[ch] as f64, rb[ch] as f64);
                    s[ch] += va;
                    q[ch] += va * vb;
                }
            }
            (s, q)
        })
        .collect();
    let (mut s, mut q) = (vec![0f64; c], vec![0f64; c]);
    for (ps, pq) in &partials {
        s.iter_mut().zip(ps).for_each(|(s, p)| *s += p);
        q.iter_mut().zip(pq).for_each(|(q, p)| *q += p);
    }
    (s, q)
}

/// The batch statistics of `x: [M, C]`.
pub(super) fn stats(x: &[f32], c: usize, epsilon: f64) -> NormStats {
    let m = (x.len() / c) as f64;
    let (s, q) = channel_sums(x, None, c);
    let mean: Vec<f64> = s.iter().map(|s| s / m).collect();
    let var: Vec<f64> = q.iter().zip(&mean).map(|(q, mu)| (q / m - mu * mu).max(0.0)).collect();
    let invstd = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
    NormStats { mean, var, invstd }
}

/// `act(γ·x̂ + β [+ residual])` per element (`relu`: `act` = ReLU, else the identity).
///
/// # Shapes
/// `x`, `residual`: `[M, C]`; `gamma`, `beta`: `[C]` → `[M, C]`.
pub(super) fn normalize(x: &[f32], st: &NormStats, gamma: &[f32], beta: &[f32], residual: Option<&[f32]>, relu: bool) -> Vec<f32> {
    let c = gamma.len();
    assert!(c > 0 && x.len() % c == 0 && residual.is_none_or(|r| r.len() == x.len()), "normalize: {} values for {c} channels", x.len());
    // `(x − μ)·s + β`, the mean subtracted first: `x·s + (β − μ·s)` cancels when |μ| ≫ σ.
    let mean: Vec<f32> = st.mean.iter().map(|m| *m as f32).collect();
    let scale: Vec<f32> = (0..c).map(|ch| (gamma[ch] as f64 * st.invstd[ch]) as f32).collect();
    let fill = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(STAT_ROWS * c).enumerate().for_each(|(i, o)| {
            let at = i * STAT_ROWS * c;
            for (r, orow) in o.chunks_exact_mut(c).enumerate() {
                let xrow = &x[at + r * c..at + (r + 1) * c];
                let rrow = residual.map(|res| &res[at + r * c..at + (r + 1) * c]);
                for ch in 0..c {
                    let mut v = (xrow[ch] - mean[ch]) * scale[ch] + beta[ch];
                    if let Some(rr) = rrow {
                        v += rr[ch];
                    }
                    orow[ch].write(if relu { v.max(0.0) } else { v });
                }
            }
        })
    };
    // SAFETY: every row of every chunk is written, and the chunks cover the buffer.
    unsafe { build(x.len(), fill) }
}

/// Gradients of [`normalize`]: `(∂x, ∂γ, ∂β)`; `masked` when the forward ended in ReLU (its
/// mask is `out > 0`). `∂residual` is `g` itself, returned by [`masked_grad`].
pub(super) fn backward(g: &[f32], x: &[f32], st: &NormStats, gamma: &[f32]) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
    let c = gamma.len();
    assert!(c > 0 && x.len() % c == 0 && g.len() == x.len(), "batch norm backward: {} gradients, {} values, {c} channels", g.len(), x.len());
    let m = (x.len() / c) as f64;
    let (sg, sgx) = channel_sums(g, Some(x), c);
    let dgamma: Vec<f64> = (0..c).map(|ch| st.invstd[ch] * (sgx[ch] - st.mean[ch] * sg[ch])).collect();
    let dbeta = sg;
    // ∂x = a·g + b·(x − μ) + d per channel (the mean subtracted first, as in the forward).
    let mean: Vec<f32> = st.mean.iter().map(|m| *m as f32).collect();
    let (mut a, mut b, mut d) = (vec![0f32; c], vec![0f32; c], vec![0f32; c]);
    for ch in 0..c {
        let gi = gamma[ch] as f64 * st.invstd[ch];
        a[ch] = gi as f32;
        b[ch] = (-gi * st.invstd[ch] * dgamma[ch] / m) as f32;
        d[ch] = (-gi * dbeta[ch] / m) as f32;
    }
    let fill = |dx: &mut [MaybeUninit<f32>]| {
        dx.par_chunks_mut(STAT_ROWS * c).enumerate().for_each(|(i, o)| {
            let at = i * STAT_ROWS * c;
            for ((orow, grow), xrow) in o.chunks_exact_mut(c).zip(g[at..].chunks_exact(c)).zip(x[at..].chunks_exact(c)) {
                for ch in 0..c {
                    orow[ch].write(a[ch] * grow[ch] + b[ch] * (xrow[ch] - mean[ch]) + d[ch]);
                }
            }
        })
    };
    // SAFETY: every row of every chunk is written, and the chunks cover the buffer.
    let dx = unsafe { build(x.len(), fill) };
    (dx, dgamma, dbeta)
}

/// `∂y · [out > 0]` (the gradient through a final ReLU).
pub(super) fn masked_grad(dy: &[f32], out: &[f32]) -> Vec<f32> {
    let fill = |g: &mut [MaybeUninit<f32>]| {
        g.par_chunks_mut(1 << 14).zip(dy.par_chunks(1 << 14).zip(out.par_chunks(1 << 14))).for_each(|(g, (dy, o))| {
            for ((g, dy), o) in g.iter_mut().zip(dy).zip(o) {
                g.write(if *o > 0.0 { *dy } else { 0.0 });
            }
        })
    };
    assert_eq!(dy.len(), out.len(), "masked_grad: gradient and output lengths");
    // SAFETY: the chunks of `g` pair one to one with equally long chunks of `dy`, all written.
    unsafe { build(dy.len(), fill) }
}

/// Max-pool 3×3, stride 2, padding 1 of `x: [N, H, W, C]`: the output `[N, H', W', C]` and,
/// per output element, the pixel (`iy · W + ix`, within its image) its maximum came from.
pub(super) fn max_pool_forward(x: &[f32], [n, h, w, c]: [usize; 4]) -> (Vec<f32>, Vec<u32>, [usize; 4]) {
    let (oh, ow) = ((h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1);
    let mut out = vec![f32::NEG_INFINITY; n * oh * ow * c];
    let mut arg = vec![0u32; n * oh * ow * c];
    out.par_chunks_mut(ow * c).zip(arg.par_chunks_mut(ow * c)).enumerate().for_each(|(row, (o, a))| {
        let (b, oy) = (row / oh, row % oh);
        let iy0 = (2 * oy).saturating_sub(1);
        for iy in iy0..(2 * oy + 2).min(h) {
            for ox in 0..ow {
                let ix0 = (2 * ox).saturating_sub(1);
                for ix in ix0..(2 * ox + 2).min(w) {
                    let at = ((b * h + iy) * w + ix) * c;
                    let (px, first) = ((iy * w + ix) as u32, iy == iy0 && ix == ix0);
                    for ch in 0..c {
                        let (v, best) = (x[at + ch], &mut o[ox * c + ch]);
                        if first || v > *best || (v.is_nan() && !best.is_nan()) {
                            *best = v;
                            a[ox * c + ch] = px;
                        }
                    }
                }
            }
        }
    });
    (out, arg, [n, oh, ow, c])
}

/// `∂x` of [`max_pool_forward`]: `∂y` added at each output's arg-max, one task per image.
pub(super) fn max_pool_backward(dy: &[f32], arg: &[u32], [n, h, w, c]: [usize; 4], [oh, ow]: [usize; 2]) -> Vec<f32> {
    let mut dx = vec![0f32; n * h * w * c];
    dx.par_chunks_mut(h * w * c).enumerate().for_each(|(b, dxb)| {
        let at = b * oh * ow * c;
        for (g, a) in dy[at..at + oh * ow * c].chunks_exact(c).zip(arg[at..at + oh * ow * c].chunks_exact(c)) {
            for ch in 0..c {
                dxb[a[ch] as usize * c + ch] += g[ch];
            }
        }
    });
    debug_assert_eq!(n * oh * ow * c, dy.len());
    dx
}
