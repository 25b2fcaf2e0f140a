//! The convolutions of the NHWC training path (`train_ops.rs`): forward, input gradient and
//! weight gradient on channels-last buffers, by the inference plan's GEMM and Winograd tiles.
//!
//! Why not Burn's `flex` convolution in training: it converts NCHW ↔ NHWC on every call, runs
//! the direct im2col convolution for the forward pass, and takes the transposed convolution
//! (another im2col + GEMM, on zero-interleaved input for strided layers) for `∂x`. Here the
//! activations stay channels-last and, for a convolution `y = conv(x; W)` with `W` in Burn's
//! layout `[C_out, C_in, k, k]`:
//!
//! - **forward**: the plan's convolution (`nhwc::FoldedConv`) with scale 1 and bias 0 — a
//!   3×3 stride-1 layer by Winograd F(2×2, 3×3), the others by gathered im2col rows · GEMM;
//! - **`∂x`**, 3×3 stride 1 padding 1: the same convolution of `∂y` with the flipped,
//!   transposed kernel `W'[ci, co, ky, kx] = W[co, ci, 2 − ky, 2 − kx]` (exact for this
//!   geometry), hence Winograd again;
//! - **`∂x`**, any other geometry: per image, `∂col = ∂y · Wᵀ` by GEMM, tile by tile, scattered
//!   (col2im) onto that image's `∂x`: each image is one task, so the overlapping windows of a
//!   strided layer add in a fixed order;
//! - **`∂W`** `= Σ_rows col(x)ᵀ · ∂y` (im2col rows gathered as in the forward pass), accumulated
//!   over a fixed number of row chunks (a function of the shapes, never of the thread count)
//!   and summed in chunk order, so the bits do not depend on scheduling.
//!
//! Every function is tested against Burn's convolution and its autodiff gradients
//! (`train_net.rs`).

use margin_linalg::gemm::{gemm_abt, gemm_atb};
use rayon::prelude::*;

use super::nhwc::{COL_TILE_BYTES, FoldedConv, Nhwc, NhwcView, scratch, with_scratch};

/// The geometry of a square convolution: `[C_out, C_in, k]`, stride, padding (symmetric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) c_out: usize,
    pub(super) c_in: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) padding: usize,
}

impl Geometry {
    /// The output size of an input side `size` (`None` when the kernel does not fit).
    pub(super) fn out_size(&self, size: usize) -> Option<usize> {
        (size + 2 * self.padding).checked_sub(self.kernel).map(|s| s / self.stride + 1)
    }

    fn winograd(&self) -> bool {
        self.kernel == 3 && self.stride == 1 && self.padding == 1
    }

    /// The plan's convolution of `w` (`[C_out, C_in, k, k]`), no scale, no bias.
    fn plan(&self, w: &[f32]) -> FoldedConv {
        FoldedConv::from_oihw(w, [self.c_out, self.c_in, self.kernel], self.stride, self.padding, &vec![1.0; self.c_out], vec![0.0; self.c_out])
    }
}

/// Row chunks of the weight gradient: a constant, so that the sum order is one of the shapes.
const WEIGHT_CHUNKS: usize = 8;

/// `y = conv(x; W)`.
///
/// # Shapes
/// `x: [N, H, W, C_in]`, `w: [C_out, C_in, k, k]` → `[N, H', W', C_out]`.
pub(super) fn forward(x: NhwcView<'_>, w: &[f32], g: Geometry) -> Nhwc {
    debug_assert_eq!(x.c, g.c_in);
    g.plan(w).forward(x, None, false)
}

/// `∂x` of `y = conv(x; W)` for an input of `h × w` pixels, given `∂y`.
///
/// # Shapes
/// `dy: [N, H', W', C_out]`, `w: [C_out, C_in, k, k]` → `[N, h, w, C_in]`.
pub(super) fn backward_input(dy: NhwcView<'_>, w: &[f32], g: Geometry, (h, wd): (usize, usize)) -> Nhwc {
    debug_assert_eq!(dy.c, g.c_out);
    if g.winograd() {
        let (co, ci) = (g.c_out, g.c_in);
        let mut flipped = vec![0f32; w.len()];
        for o in 0..co {
            for i in 0..ci {
                for tap in 0..9 {
                    flipped[(i * co + o) * 9 + 8 - tap] = w[(o * ci + i) * 9 + tap];
                }
            }
        }
        let transposed = Geometry { c_out: ci, c_in: co, ..g };
        return transposed.plan(&flipped).forward(dy, None, false);
    }
    let plan = g.plan(w);
    let (k, ci, co) = (g.kernel, g.c_in, g.c_out);
    let kk = k * k * ci;
    let rows = dy.h * dy.w;
    let tile = (COL_TILE_BYTES / (4 * kk)).clamp(16, 512);
    let mut dx = vec![0f32; dy.n * h * wd * ci];
    dx.par_chunks_mut(h * wd * ci).enumerate().for_each(|(b, dxb)| {
        with_scratch(|buf| {
            for r0 in (0..rows).step_by(tile) {
                let m = tile.min(rows - r0);
                let dcol = scratch(buf, m * kk);
                let at = (b * rows + r0) * co;
                gemm_abt(m, kk, co, &dy.data[at..at + m * co], &plan.weight, dcol, 1);
                for (i, row) in dcol.chunks_exact(kk).enumerate() {
                    let (oy, ox) = ((r0 + i) / dy.w, (r0 + i) % dy.w);
                    for ky in 0..k {
                        let Some(iy) = (oy * g.stride + ky).checked_sub(g.padding).filter(|&v| v < h) else { continue };
                        for kx in 0..k {
                            let Some(ix) = (ox * g.stride + kx).checked_sub(g.padding).filter(|&v| v < wd) else { continue };
                            let src = &row[(ky * k + kx) * ci..(ky * k + kx + 1) * ci];
                            let dst = &mut dxb[(iy * wd + ix) * ci..(iy * wd + ix + 1) * ci];
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                        }
                    }
                }
            }
        })
    });
    Nhwc { data: dx, n: dy.n, h, w: wd, c: ci }
}

/// `∂W` of `y = conv(x; W)` given `∂y`, in Burn's layout `[C_out, C_in, k, k]`.
///
/// # Shapes
/// `x: [N, H, W, C_in]`, `dy: [N, H', W', C_out]` → `[C_out · C_in · k · k]`.
pub(super) fn backward_weight(x: NhwcView<'_>, dy: NhwcView<'_>, g: Geometry) -> Vec<f32> {
    let plan = FoldedConv::window(g.kernel, g.stride, g.padding, g.c_in);
    let (k, ci, co) = (g.kernel, g.c_in, g.c_out);
    let kk = k * k * ci;
    let (oh, ow) = (dy.h, dy.w);
    let rows = dy.n * oh * ow;
    let in_place = k == 1 && g.stride == 1 && g.padding == 0;
    let tile = ((2 * COL_TILE_BYTES) / (4 * kk)).clamp(64, 1024);
    let chunk = rows.div_ceil(WEIGHT_CHUNKS).div_ceil(tile).max(1) * tile;
    let partials: Vec<Vec<f32>> = (0..rows.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let mut acc = vec![0f32; kk * co];
            with_scratch(|buf| {
                let end = ((c + 1) * chunk).min(rows);
                for r0 in (c * chunk..end).step_by(tile) {
                    let m = tile.min(end - r0);
                    let col: &[f32] = if in_place {
                        &x.data[r0 * kk..(r0 + m) * kk]
                    } else {
                        let col = scratch(buf, m * kk);
                        plan.gather(x, oh, ow, r0, col);
                        col
                    };
                    gemm_atb(kk, co, m, col, &dy.data[r0 * co..(r0 + m) * co], &mut acc, true);
                }
            });
            acc
        })
        .collect();
    // Sum the chunks in order, then reorder `[(tap · C_in + ci), co]` to `[co, ci, tap]`.
    let mut sum = vec![0f32; kk * co];
    sum.par_chunks_mut(co).enumerate().for_each(|(r, s)| {
        for p in &partials {
            s.iter_mut().zip(&p[r * co..(r + 1) * co]).for_each(|(s, v)| *s += v);
        }
    });
    let mut dw = vec![0f32; kk * co];
    for tap in 0..k * k {
        for i in 0..ci {
            let row = &sum[(tap * ci + i) * co..(tap * ci + i + 1) * co];
            for (o, v) in row.iter().enumerate() {
                dw[(o * ci + i) * k * k + tap] = *v;
            }
        }
    }
    dw
}
