//! 3×3 stride-1 convolutions (83 % of a ResNet-18's multiply-adds) by Winograd's minimal
//! filtering F(2×2, 3×3), in the NHWC inference plan (`nhwc.rs`).
//!
//! Each 2×2 block of outputs is `Y = Aᵀ [ Σ_ci (G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ) ] A` with `d` the 4×4
//! input patch (padding 1) and `g` the 3×3 kernel (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016):
//!
//! ```text
//! Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//! Aᵀ = [1 1 1 0; 0 1 -1 -1]
//! ```
//!
//! The channel sum is 16 GEMMs, one per position `ξ` of the 4×4 transformed tile:
//! `M[ξ] (T × C_out) = V[ξ] (T × C_in) · U[ξ] (C_in × C_out)` over a group of `T` tiles. That is
//! 16 multiply-adds per 4 outputs and input channel where the direct convolution takes 36
//! (2.25× fewer); the transforms are additions only, vectorised over the contiguous channels.
//! The weight transform `U = G g Gᵀ` is made once, when the plan is built.
//!
//! Why here and not in Burn's convolution: the transforms need the activation channels-last
//! and the plan's folded weights; the error of F(2×2, 3×3) in f32 is a few units in the last
//! place of the direct sum (tested against the direct path and, through the plan, against
//! torchvision's outputs).

use margin_linalg::gemm::gemm_ab;
use rayon::prelude::*;

use core::mem::MaybeUninit;

use margin_linalg::buffer;

use super::nhwc::{Nhwc, NhwcView, prefill, scratch, with_scratch};

/// Floats of `V` (or `M`) one group of tiles holds: 16 transformed tiles × channels.
const GROUP_FLOATS: usize = 1 << 19;

/// Channels transformed together (one 256-bit vector of `f32`).
const LANES: usize = 8;

/// `src[at .. at + LANES]`, zero-padded past the end of `src`.
#[inline(always)]
fn lanes(src: &[f32], at: usize) -> [f32; LANES] {
    match src.get(at..at + LANES) {
        Some(s) => s.try_into().expect("LANES long"),
        None => core::array::from_fn(|l| src.get(at + l).copied().unwrap_or(0.0)),
    }
}

/// `dst[at .. at + len] = v[..len]`.
#[inline(always)]
fn store(dst: &mut [f32], at: usize, v: &[f32; LANES], len: usize) {
    if len == LANES {
        let d: &mut [f32; LANES] = (&mut dst[at..at + LANES]).try_into().expect("LANES long");
        *d = *v;
    } else {
        dst[at..at + len].copy_from_slice(&v[..len]);
    }
}

/// A folded 3×3, stride-1, padding-1 convolution in the Winograd domain.
#[derive(Debug, Clone)]
pub(super) struct Winograd3x3 {
    c_in: usize,
    c_out: usize,
    /// `U[ξ][ci][co]`, `[16, C_in, C_out]`.
    u: Vec<f32>,
    bias: Vec<f32>,
}

impl Winograd3x3 {
    /// From folded weights in the plan's layout `[(ky·3 + kx)·C_in + ci, co]` and their bias.
    pub(super) fn new(weight: &[f32], bias: &[f32], c_in: usize, c_out: usize) -> Self {
        debug_assert_eq!(weight.len(), 9 * c_in * c_out);
        let mut u = vec![0f32; 16 * c_in * c_out];
        for ci in 0..c_in {
            for co in 0..c_out {
                let g = |ky: usize, kx: usize| weight[((ky * 3 + kx) * c_in + ci) * c_out + co];
                // G g: 4 × 3.
                let mut gg = [[0f32; 3]; 4];
                for kx in 0..3 {
                    let (a, b, c) = (g(0, kx), g(1, kx), g(2, kx));
                    gg[0][kx] = a;
                    gg[1][kx] = 0.5 * (a + b + c);
                    gg[2][kx] = 0.5 * (a - b + c);
                    gg[3][kx] = c;
                }
                // (G g) Gᵀ: 4 × 4.
                for (i, row) in gg.iter().enumerate() {
                    let [a, b, c] = *row;
                    let t = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                    for (j, v) in t.into_iter().enumerate() {
                        u[((i * 4 + j) * c_in + ci) * c_out + co] = v;
                    }
                }
            }
        }
        Winograd3x3 { c_in, c_out, u, bias: bias.to_vec() }
    }

    /// `relu?(conv3x3(x) + bias + residual?)`, stride 1, padding 1.
    ///
    /// # Shapes
    /// `x: [N, H, W, C_in] → [N, H, W, C_out]`; `residual` (when given) `[N, H, W, C_out]`.
    pub(super) fn forward(&self, x: NhwcView<'_>, residual: Option<NhwcView<'_>>, relu: bool) -> Nhwc {
        debug_assert_eq!(x.c, self.c_in);
        let (n, h, w, c_out) = (x.n, x.h, x.w, self.c_out);
        let (tiles_y, tiles_x) = (h.div_ceil(2), w.div_ceil(2));
        // Groups depend on the shapes only (never on the thread count): the same GEMM calls,
        // hence the same bits, on any number of threads.
        let per_group = (GROUP_FLOATS / (16 * self.c_in.max(c_out)) / tiles_x).max(1);
        let fill = |buf: &mut [MaybeUninit<f32>]| {
            // The output as tile rows (two output rows of one image; one for an odd last row),
            // in memory order, grouped `per_group` to a group.
            let mut groups: Vec<Vec<(usize, usize, &mut [MaybeUninit<f32>])>> = Vec::new();
            let mut rest = buf;
            for b in 0..n {
                for ty in 0..tiles_y {
                    let (head, tail) = rest.split_at_mut((h - 2 * ty).min(2) * w * c_out);
                    rest = tail;
                    match groups.last_mut() {
                        Some(g) if g.len() < per_group => g.push((b, ty, head)),
                        _ => groups.push(vec![(b, ty, head)]),
                    }
                }
            }
            groups.into_par_iter().for_each(|group| self.group(x, group, tiles_x, (h, w), residual, relu));
        };
        // SAFETY: `group` prefills every tile row it is given, and the tile rows cover `buf`.
        let out = unsafe { buffer::build(n * h * w * c_out, fill) };
        Nhwc { data: out, n, h, w, c: c_out }
    }

    /// One group of tile rows: prefilled with bias (+ residual), the tiles transformed, the 16
    /// GEMMs, the outputs transformed onto the prefill.
    fn group(&self, x: NhwcView<'_>, group: Vec<(usize, usize, &mut [MaybeUninit<f32>])>, tiles_x: usize, (h, w): (usize, usize), residual: Option<NhwcView<'_>>, relu: bool) {
        let (ci, co) = (self.c_in, self.c_out);
        let t = group.len() * tiles_x;
        let rows: Vec<(usize, usize, &mut [f32])> = group
            .into_iter()
            .map(|(b, ty, dst)| {
                let at = (b * h + 2 * ty) * w * co;
                (b, ty, prefill(dst, &self.bias, residual.map(|r| &r.data[at..at + dst.len()])))
            })
            .collect();
        with_scratch(|buf| {
            let buf = scratch(buf, 16 * t * (ci + co) + ci);
            let (v, rest) = buf.split_at_mut(16 * t * ci);
            let (m, zeros) = rest.split_at_mut(16 * t * co);
            zeros.fill(0.0);
            for (g, (b, ty, _)) in rows.iter().enumerate() {
                for tx in 0..tiles_x {
                    self.input_transform(x, (*b, *ty, tx), g * tiles_x + tx, t, zeros, v);
                }
            }
            for xi in 0..16 {
                gemm_ab(t, co, ci, &v[xi * t * ci..(xi + 1) * t * ci], &self.u[xi * ci * co..(xi + 1) * ci * co], &mut m[xi * t * co..(xi + 1) * t * co], false);
            }
            for (g, (_, ty, dst)) in rows.into_iter().enumerate() {
                for tx in 0..tiles_x {
                    self.output_transform(m, g * tiles_x + tx, t, (ty, tx), (h, w), relu, dst);
                }
            }
        });
    }

    /// `V[ξ][slot] = (Bᵀ d B)[ξ]` for the 4×4 patch of tile `(b, ty, tx)` (rows `2ty − 1 ..`,
    /// columns `2tx − 1 ..`, `zeros` outside the image), over all input channels.
    #[allow(clippy::too_many_arguments)]
    fn input_transform(&self, x: NhwcView<'_>, (b, ty, tx): (usize, usize, usize), slot: usize, t: usize, zeros: &[f32], v: &mut [f32]) {
        let c = self.c_in;
        let mut patch: [&[f32]; 16] = [zeros; 16];
        for i in 0..4 {
            let iy = (2 * ty + i) as isize - 1;
            if iy < 0 || iy as usize >= x.h {
                continue;
            }
            for j in 0..4 {
                let ix = (2 * tx + j) as isize - 1;
                if ix >= 0 && (ix as usize) < x.w {
                    let at = ((b * x.h + iy as usize) * x.w + ix as usize) * c;
                    patch[i * 4 + j] = &x.data[at..at + c];
                }
            }
        }
        let (stride, base) = (t * c, slot * c);
        for c0 in (0..c).step_by(LANES) {
            let len = LANES.min(c - c0);
            let d: [[f32; LANES]; 16] = core::array::from_fn(|p| lanes(patch[p], c0));
            // Bᵀ d (rows), then (Bᵀ d) B (columns), lane by lane.
            let mut r = [[0f32; LANES]; 16];
            for j in 0..4 {
                for l in 0..LANES {
                    let (d0, d1, d2, d3) = (d[j][l], d[4 + j][l], d[8 + j][l], d[12 + j][l]);
                    r[j][l] = d0 - d2;
                    r[4 + j][l] = d1 + d2;
                    r[8 + j][l] = d2 - d1;
                    r[12 + j][l] = d1 - d3;
                }
            }
            for i in 0..4 {
                let mut o = [[0f32; LANES]; 4];
                for l in 0..LANES {
                    let (r0, r1, r2, r3) = (r[4 * i][l], r[4 * i + 1][l], r[4 * i + 2][l], r[4 * i + 3][l]);
                    o[0][l] = r0 - r2;
                    o[1][l] = r1 + r2;
                    o[2][l] = r2 - r1;
                    o[3][l] = r1 - r3;
                }
                for (j, oj) in o.iter().enumerate() {
                    store(v, (4 * i + j) * stride + base + c0, oj, len);
                }
            }
        }
    }

    /// Output pixels of tile `(ty, tx)` from `M[·][slot]`: `Aᵀ M A` added onto `dst` (this
    /// tile row's output rows, prefilled with bias and residual), then ReLU.
    #[allow(clippy::too_many_arguments)]
    fn output_transform(&self, m: &[f32], slot: usize, t: usize, (ty, tx): (usize, usize), (h, w): (usize, usize), relu: bool, dst: &mut [f32]) {
        let c = self.c_out;
        let (stride, base) = (t * c, slot * c);
        let (rows, cols) = ((h - 2 * ty).min(2), (w - 2 * tx).min(2));
        for c0 in (0..c).step_by(LANES) {
            let len = LANES.min(c - c0);
            let mm: [[f32; LANES]; 16] = core::array::from_fn(|p| lanes(&m[p * stride + base..], c0));
            // Aᵀ M (2 × 4), then its rows times A: y[i][j].
            let mut y = [[[0f32; LANES]; 2]; 2];
            for l in 0..LANES {
                let mut s = [[0f32; 4]; 2];
                for q in 0..4 {
                    s[0][q] = mm[q][l] + mm[4 + q][l] + mm[8 + q][l];
                    s[1][q] = mm[4 + q][l] - mm[8 + q][l] - mm[12 + q][l];
                }
                for i in 0..2 {
                    y[i][0][l] = s[i][0] + s[i][1] + s[i][2];
                    y[i][1][l] = s[i][1] - s[i][2] - s[i][3];
                }
            }
            for (i, yi) in y.iter().enumerate().take(rows) {
                for (j, yij) in yi.iter().enumerate().take(cols) {
                    let ox = 2 * tx + j;
                    let at = (i * w + ox) * c + c0;
                    let o = &mut dst[at..at + len];
                    o.iter_mut().zip(yij).for_each(|(o, y)| *o += y);
                    if relu {
                        o.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                }
            }
        }
    }
}
