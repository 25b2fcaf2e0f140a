//! The CPU backend's side of the written-out backward: prepared rows, both GEMMs and
//! the normalisation's backward on the host.
//!
//! On the Flex backend the tensors live in host memory anyway, and every backend
//! operation is an allocation and (past a size) a hand-off to the thread pool: the
//! device path of [`DistanceOperands`](super::weighted_grad::DistanceOperands) runs about
//! thirty of them per call (normalise, GEMM, norms, upload of the weights, gradient
//! arithmetic, the normalisation's backward), which at `B = 256` cost more than the
//! GEMMs. Here the same formulas run as plain loops over `[n, d]` rows and two `gemm`
//! calls (the crate Burn's Flex backend itself calls), and only the final gradient
//! goes back to the backend.
//!
//! Values agree with the device path up to the order of floating-point sums (tested in
//! `weighted_grad`'s `host_and_device_paths_agree`). Single operations on `f32` are
//! computed in `f64` and rounded once, which is exactly the correctly rounded `f32`
//! result for `+ − × ÷ √`.

use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use margin_linalg::shared::SharedMut;

use crate::Power;
use crate::distance::{NORM_EPS, host_values};
use crate::flex_element::KFloat;

/// One set of rows, prepared for a distance, on the host.
pub(crate) struct Rows<T> {
    /// `x̂` (`x` itself when the distance does not normalise), `[n, d]` row-major.
    pub prepared: Vec<T>,
    /// `‖x̂_i‖²`, the Lp distances' norms.
    pub sq_norms: Vec<f64>,
    /// `max(‖x_i‖, ε)` per row when the distance normalises (empty otherwise).
    pub norms: Vec<f64>,
    pub d: usize,
}

impl<T: HostElement> Rows<T> {
    /// `x` (`[n, d]`, row-major), L2-normalised when `normalize`: `x / max(‖x‖, ε)`.
    pub(crate) fn new(x: Vec<T>, d: usize, normalize: bool) -> Self {
        let mut prepared = x;
        if d == 0 {
            return Rows { prepared, sq_norms: Vec::new(), norms: Vec::new(), d };
        }
        let (norms, sq_norms): (Vec<f64>, Vec<f64>) = prepared.par_chunks_mut(d).with_min_len(64).map(|row| T::prepare_row(row, normalize)).unzip();
        Rows { prepared, sq_norms, norms: if normalize { norms } else { Vec::new() }, d }
    }
}

impl<T> Rows<T> {
    pub(crate) fn len(&self) -> usize {
        self.sq_norms.len()
    }
}

/// The element types of host rows, with their row kernel compiled for the running CPU.
pub(crate) trait HostElement: KFloat {
    /// [`prepare_row`].
    fn prepare_row(row: &mut [Self], normalize: bool) -> (f64, f64);
    /// [`lp_gradient_row`].
    fn lp_gradient_row(g: &mut [f64], product: &[Self], x: &[Self], sum: f64);
    /// [`normalization_row`].
    fn normalization_row(g: &mut [f64], x: &[Self], norm: f64);
}

/// Sum of squares with [`LANES`] partial sums (it vectorises).
#[inline(always)]
fn sum_of_squares<T: KFloat>(row: &[T]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let (body, tail) = row.as_chunks::<LANES>();
    for chunk in body {
        for l in 0..LANES {
            let v = chunk[l].f();
            lanes[l] += v * v;
        }
    }
    lanes.iter().sum::<f64>() + tail.iter().map(|v| v.f() * v.f()).sum::<f64>()
}

/// Lanes of the row kernels' partial sums.
const LANES: usize = 8;

/// Normalises `row` in place when `normalize`; returns `max(‖x‖, ε)` (0 when not
/// normalising) and `‖x̂‖²`.
#[inline(always)]
fn prepare_row<T: KFloat>(row: &mut [T], normalize: bool) -> (f64, f64) {
    let mut norm = 0.0;
    if normalize {
        norm = sum_of_squares(row).max(NORM_EPS * NORM_EPS).sqrt();
        for v in row.iter_mut() {
            *v = T::of(v.f() / norm);
        }
    }
    (norm, sum_of_squares(row))
}

/// One row of the Lp gradient: `g = 2 (sum · x − product)`.
#[inline(always)]
fn lp_gradient_row<T: KFloat>(g: &mut [f64], product: &[T], x: &[T], sum: f64) {
    for ((g, &p), &x) in g.iter_mut().zip(product).zip(x) {
        *g = 2.0 * (sum * x.f() - p.f());
    }
}

/// One row through the normalisation: `g ← (g − x̂ (x̂·g)) / norm`, or `g / ε` where the
/// norm was clamped.
#[inline(always)]
fn normalization_row<T: KFloat>(g: &mut [f64], x: &[T], norm: f64) {
    let radial = if norm <= NORM_EPS {
        0.0
    } else {
        let mut lanes = [0.0f64; LANES];
        let (gb, gt) = g.as_chunks::<LANES>();
        let (xb, xt) = x.as_chunks::<LANES>();
        for (gc, xc) in gb.iter().zip(xb) {
            for l in 0..LANES {
                lanes[l] += xc[l].f() * gc[l];
            }
        }
        lanes.iter().sum::<f64>() + gt.iter().zip(xt).map(|(g, x)| x.f() * g).sum::<f64>()
    };
    for (g, x) in g.iter_mut().zip(x) {
        *g = (*g - x.f() * radial) / norm;
    }
}

macro_rules! host_element {
    ($t:ty, $prepare:ident, $lp:ident, $norm:ident) => {
        margin_linalg::avx2_dispatch! {
            fn $prepare(row: &mut [$t], normalize: bool) -> (f64, f64) = prepare_row::<$t>
        }
        margin_linalg::avx2_dispatch! {
            fn $lp(g: &mut [f64], product: &[$t], x: &[$t], sum: f64) = lp_gradient_row::<$t>
        }
        margin_linalg::avx2_dispatch! {
            fn $norm(g: &mut [f64], x: &[$t], norm: f64) = normalization_row::<$t>
        }
        impl HostElement for $t {
            fn prepare_row(row: &mut [$t], normalize: bool) -> (f64, f64) {
                $prepare(row, normalize)
            }
            fn lp_gradient_row(g: &mut [f64], product: &[$t], x: &[$t], sum: f64) {
                $lp(g, product, x, sum)
            }
            fn normalization_row(g: &mut [f64], x: &[$t], norm: f64) {
                $norm(g, x, norm)
            }
        }
    };
}
host_element!(f32, prepare_row_f32, lp_gradient_row_f32, normalization_row_f32);
host_element!(f64, prepare_row_f64, lp_gradient_row_f64, normalization_row_f64);

/// The prepared query rows (and reference rows, when given) in the backend's float type.
pub(crate) enum HostRows {
    F32(Rows<f32>, Option<Rows<f32>>),
    F64(Rows<f64>, Option<Rows<f64>>),
}

impl HostRows {
    /// Reads `query` (and `reference`) back and prepares them (`f64` tensors stay `f64`;
    /// everything else is read as `f32`, the type the GEMMs then run in).
    pub(crate) fn new(query: &Tensor<2>, reference: Option<&Tensor<2>>, normalize: bool) -> Self {
        let d = query.dims()[1];
        fn read<T: burn::tensor::Element>(x: &Tensor<2>) -> Vec<T> {
            x.to_data().convert::<T>().try_into_vec::<T>().expect("converted to the element type above")
        }
        match query.dtype() {
            DType::F64 => HostRows::F64(Rows::new(read(query), d, normalize), reference.map(|r| Rows::new(read(r), d, normalize))),
            _ => HostRows::F32(Rows::new(read(query), d, normalize), reference.map(|r| Rows::new(read(r), d, normalize))),
        }
    }
}

/// The GEMM `q̂ r̂ᵀ` (`[n, m]`, row-major).
///
/// The same set's Gram matrix is symmetric: below [`SYMMETRIC_UP_TO`] rows, blocks of
/// rows `I` compute only the columns from their first row on (in parallel over blocks,
/// about half the multiply-adds), and the rest is mirrored from there — so the matrix
/// is exactly symmetric as well.
pub(crate) fn gram<T: KFloat>(query: &Rows<T>, reference: Option<&Rows<T>>) -> Vec<T> {
    let r = reference.unwrap_or(query);
    let (n, m, d) = (query.len(), r.len(), query.d);
    // `len()` counts rows by their norms: 0 when d = 0 (rejected by the input checks).
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let q = &query.prepared;
    if reference.is_some() || !(2 * SYMMETRIC_BLOCK..SYMMETRIC_UP_TO).contains(&n) {
        // SAFETY: `out` is the `n × m` destination with row stride m, and `gemm_raw` writes
        // every entry of it (d > 0); debug builds check its extent (`strided_gemm`) and that
        // every entry was written (`build`).
        return unsafe {
            margin_linalg::buffer::build(n * m, |out| {
                // out = q (n × d, row-major) · rᵀ (d × m: element (k, j) at r[j·d + k]).
                let alloc = (out.as_ptr().cast::<T>(), out.len());
                gemm_raw(out.as_mut_ptr().cast(), alloc, m, [n, m, d], (q, 1, d as isize), (&r.prepared, d as isize, 1), true);
            })
        };
    }
    let blocks = n.div_ceil(SYMMETRIC_BLOCK);
    let fill = |out: &mut [core::mem::MaybeUninit<T>]| {
        // Pass 1: each block's GEMM, rows i0..i1, columns i0..n (debug builds: `SharedMut`
        // checks each block is in bounds and no two overlap).
        let shared = SharedMut::new(&mut *out);
        (0..blocks).into_par_iter().for_each(|b| {
            let (i0, i1) = (b * SYMMETRIC_BLOCK, ((b + 1) * SYMMETRIC_BLOCK).min(n));
            let rows = &q[i0 * d..i1 * d];
            let cols = &q[i0 * d..];
            let (buffer, len) = shared.extent();
            // SAFETY: rows i0..i1, columns i0..n of `out` (row stride n) are this block's
            // alone (checked by `block_ptr` in debug builds), and gemm writes only that
            // block (its extent checked by `strided_gemm` in debug builds); d > 0.
            unsafe {
                let dst = shared.block_ptr(i0 * n + i0, i1 - i0, n - i0, n).cast::<T>();
                gemm_raw(dst, (buffer.cast::<T>(), len), n, [i1 - i0, n - i0, d], (rows, 1, d as isize), (cols, d as isize, 1), false)
            };
        });
        drop(shared);
        // Pass 2: the mirror, rows i0..i1, columns 0..i0 of each block past the first, read
        // from pass 1's output (debug builds: `SharedMut` checks the bounds, that no entry is
        // written twice and that no entry read is one this pass writes).
        let mirror = SharedMut::new(out);
        (1..blocks).into_par_iter().for_each(|b| {
            let (i0, i1) = (b * SYMMETRIC_BLOCK, ((b + 1) * SYMMETRIC_BLOCK).min(n));
            // Row j of the GEMM's output read contiguously, written down column j of the block.
            for j in 0..i0 {
                for i in i0..i1 {
                    // SAFETY: (j, i) with j < i0 ≤ i lies in the GEMM output of j's block (its
                    // rows, columns from its first row on), written in pass 1 and not written
                    // in this pass; (i, j) with j < i0 is this block's mirror region alone.
                    unsafe { mirror.write(i * n + j, mirror.read(j * n + i)) };
                }
            }
        });
    };
    // SAFETY: every entry is written: block I's GEMM writes rows i0..i1, columns i0..n;
    // the mirror then writes rows i0..i1, columns 0..i0 (checked by `build` in debug builds).
    unsafe { margin_linalg::buffer::build(n * n, fill) }
}

/// Rows per block of the same set's Gram matrix.
const SYMMETRIC_BLOCK: usize = 32;

/// Past this many rows the mirror (a strided pass over half the matrix, out of cache)
/// costs what the saved multiply-adds do: measured A/B at B = 256 … 4096 (2 threads),
/// the symmetric GEMM wins at 256, ties at 1024 and loses 5–10 % at 2048 and 4096.
const SYMMETRIC_UP_TO: usize = 1024;

/// [`host_values`] of a GEMM's output for the distance with `power` (`None`: cosine / dot).
pub(crate) fn matrix_from_gram<T: KFloat>(gram: &[T], query: &Rows<T>, reference: Option<&Rows<T>>, power: Option<Power>) -> Vec<f64> {
    let r = reference.unwrap_or(query);
    let lp = power.map(|p| (p, &query.sq_norms[..], &r.sq_norms[..]));
    host_values(gram, query.len(), r.len(), lp)
}

/// `dst = lhs · rhs` for `dst` `[rows, cols]` row-major and `inner` the shared dimension;
/// `lhs` and `rhs` given as (slice, column stride, row stride).
fn gemm_into<T: KFloat>(dst: &mut [T], [rows, cols, inner]: [usize; 3], lhs: (&[T], isize, isize), rhs: (&[T], isize, isize)) {
    if rows == 0 || cols == 0 {
        return;
    }
    if inner == 0 {
        dst.iter_mut().for_each(|v| *v = T::ZERO);
        return;
    }
    assert_eq!(dst.len(), rows * cols, "gemm destination is rows × cols");
    // SAFETY: `dst` holds `rows × cols` entries with row stride `cols` (asserted above).
    unsafe { gemm_raw(dst.as_mut_ptr(), (dst.as_ptr(), dst.len()), cols, [rows, cols, inner], lhs, rhs, true) };
}

/// `dst = lhs · rhs` (`[rows, cols]`, row stride `dst_rs`, written, never read), `inner`
/// the shared dimension, `lhs` and `rhs` as (slice, column stride, row stride); on
/// rayon's pool past 192³ multiply-adds (Burn's Flex backend makes the same choice) when
/// `parallel`.
///
/// # Safety
/// `dst` must be valid for writes of `rows` rows of `cols` entries `dst_rs` apart inside
/// `dst_alloc` (checked in debug builds), and alias neither operand; `rows`, `cols`, `inner` > 0.
unsafe fn gemm_raw<T: KFloat>(dst: *mut T, dst_alloc: (*const T, usize), dst_rs: usize, [rows, cols, inner]: [usize; 3], lhs: (&[T], isize, isize), rhs: (&[T], isize, isize), parallel: bool) {
    debug_assert!(rows > 0 && cols > 0 && inner > 0, "gemm_raw: empty product {rows} × {cols} × {inner}");
    let last = |(s, cs, rs): (&[T], isize, isize), r: usize, c: usize| (r as isize - 1) * rs + (c as isize - 1) * cs < s.len() as isize;
    assert!(last(lhs, rows, inner) && last(rhs, inner, cols), "gemm operands hold their shapes");
    let parallelism = if parallel && rows * cols * inner >= 192 * 192 * 192 { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: the operands' strides address only elements inside their slices (asserted
    // above); the destination is the caller's contract (its extent inside `dst_alloc`
    // checked by `strided_gemm` in debug builds). With `read_dst = false` gemm writes
    // `dst` without reading it.
    unsafe {
        use margin_linalg::gemm::{Extents, Strided, strided_gemm};
        let extents = Extents { dst: dst_alloc, lhs: (lhs.0.as_ptr(), lhs.0.len()), rhs: (rhs.0.as_ptr(), rhs.0.len()) };
        strided_gemm(
            rows,
            cols,
            inner,
            Strided { ptr: dst, cs: 1, rs: dst_rs as isize },
            false,
            Strided { ptr: lhs.0.as_ptr(), cs: lhs.1, rs: lhs.2 },
            Strided { ptr: rhs.0.as_ptr(), cs: rhs.1, rs: rhs.2 },
            extents,
            parallelism,
        );
    }
}

/// The gradients w.r.t. the prepared rows of `Σ W ⊙ D` from the backward matrix `w`
/// (`[n, m]`: `E + Eᵀ` for the same set, else `E`) and its row / column sums:
/// Lp `g_q = 2 (rs ⊙ q̂ − W r̂)`, `g_r = 2 (cs ⊙ r̂ − Wᵀ q̂)`; cosine / dot `g_q = W r̂`,
/// `g_r = Wᵀ q̂` (`r̂ = q̂`, and no `g_r`, for the same set).
pub(crate) fn gradients<T: HostElement>(w: &[T], row_sums: &[f64], col_sums: &[f64], query: &Rows<T>, reference: Option<&Rows<T>>, lp: bool) -> (Vec<f64>, Option<Vec<f64>>) {
    let r = reference.unwrap_or(query);
    let (n, m, d) = (query.len(), r.len(), query.d);
    let combine = |product: Vec<T>, rows: &Rows<T>, sums: &[f64]| -> Vec<f64> {
        if !lp {
            return product.into_iter().map(T::f).collect();
        }
        let mut g = vec![0.0; product.len()];
        g.par_chunks_mut(d.max(1)).zip(product.par_chunks(d.max(1))).zip(rows.prepared.par_chunks(d.max(1))).zip(sums).with_min_len(64).for_each(|(((g, p), x), &s)| T::lp_gradient_row(g, p, x, s));
        g
    };
    let mut wr = vec![T::ZERO; n * d];
    gemm_into(&mut wr, [n, d, m], (w, 1, m as isize), (&r.prepared, 1, d as isize));
    let grad_q = combine(wr, query, row_sums);
    let grad_r = reference.map(|r| {
        let mut wtq = vec![T::ZERO; m * d];
        // Wᵀ (m × n): element (j, i) at w[i·m + j].
        gemm_into(&mut wtq, [m, d, n], (w, m as isize, 1), (&query.prepared, 1, d as isize));
        combine(wtq, r, col_sums)
    });
    (grad_q, grad_r)
}

/// Takes `g = ∂L/∂x̂` back through `x̂ = x / max(‖x‖, ε)`: `(g − x̂ (x̂·g)) / ‖x‖`, or
/// `g / ε` where the norm is clamped (there `x̂ = x / ε` is linear in `x`). Identity
/// when the distance does not normalise.
pub(crate) fn through_normalization<T: HostElement>(mut g: Vec<f64>, rows: &Rows<T>) -> Vec<f64> {
    if rows.norms.is_empty() {
        return g;
    }
    let d = rows.d.max(1);
    g.par_chunks_mut(d).zip(rows.prepared.par_chunks(d)).zip(&rows.norms).with_min_len(64).for_each(|((g, x), &norm)| T::normalization_row(g, x, norm));
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same set's Gram matrix by blocks above the diagonal and mirrored equals the
    /// plain dot products, and is exactly symmetric (sizes not multiples of the block).
    #[test]
    fn symmetric_gram_equals_dot_products() {
        for n in [2 * SYMMETRIC_BLOCK, 100, 301] {
            let d = 7;
            let x: Vec<f64> = (0..n * d).map(|i| ((i as f64 * 0.618034).fract() - 0.5) * 3.0).collect();
            let rows = Rows::new(x.clone(), d, false);
            let g = gram(&rows, None);
            for i in 0..n {
                for j in 0..n {
                    let dot: f64 = (0..d).map(|k| x[i * d + k] * x[j * d + k]).sum();
                    assert!((g[i * n + j] - dot).abs() <= 1e-12 * (1.0 + dot.abs()), "n {n}: ({i}, {j}) {} vs {dot}", g[i * n + j]);
                    assert_eq!(g[i * n + j].to_bits(), g[j * n + i].to_bits(), "n {n}: ({i}, {j}) not symmetric");
                }
            }
        }
    }
}
