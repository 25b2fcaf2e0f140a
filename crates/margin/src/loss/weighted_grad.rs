//! `Σ W ⊙ D` with its gradient written out: the backward of every fused loss.
//!
//! A fused loss (batch-all triplet, mined or all-pairs contrastive) is, once its
//! active set is known, `L = Σ_ij W_ij · D_ij + c` with a constant weight matrix
//! `W` (`∂L/∂D`, planned on the host). Letting autodiff differentiate `D` walks a
//! chain of about ten `[n, m]` element-wise operations (normalise, GEMM, clamp,
//! √, mask, product, sum) forward and backward. Instead the distance matrix is
//! computed once without a graph, and `∂L/∂x` is written out:
//!
//! - squared Euclidean on rows `q̂`, `r̂`: `∂L/∂q̂_i = 2 (Σ_j W_ij) q̂_i − 2 (W r̂)_i`,
//!   `∂L/∂r̂_j = 2 (Σ_i W_ij) r̂_j − 2 (Wᵀ q̂)_j`;
//! - Euclidean: the same with `W_ij / (2 D_ij)` (0 where `D_ij = 0`, as the safe √);
//! - cosine / dot: `∂L/∂q̂ = W r̂`, `∂L/∂r̂ = Wᵀ q̂`;
//! - through the normalisation `x̂ = x / max(‖x‖, ε)`: `(g − x̂ (x̂·g)) / ‖x‖`, or `g / ε`
//!   where the norm is clamped.
//!
//! The matrix itself is one GEMM on the backend (`q̂ r̂ᵀ`); norms, clamp and √ are
//! applied on the host while reading it back, where the planner needs it anyway.
//! That is one GEMM forward and one (same set) or two backward. The result is
//! attached to the graph as `Σ (x − detach(x)) ⊙ g + L`: its value is exactly the
//! host-computed `L` (the first term is exactly 0) and its gradient is exactly `g`.
//! The equality with autodiff through the distance matrix is tested in
//! `tests/batch_all.rs` and `tests/weighted.rs` (the explicit paths use autodiff).

use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::distance::NORM_EPS;
use super::batch_all::FusedPlan;
use crate::miner::MiningInput;
use crate::{Distance, Power};

/// Raw inputs of a distance matrix, kept for the written-out backward.
pub(crate) struct DistanceOperands {
    distance: Distance,
    query: Tensor<2>,
    reference: Option<Tensor<2>>,
    query_prepared: Tensor<2>,
    reference_prepared: Option<Tensor<2>>,
    dims: [usize; 2],
}

impl DistanceOperands {
    /// `distance` between `query` and `reference` (the query itself when `None`):
    /// returns the operands and the `[n, m]` matrix on the host (row-major, raw units).
    pub(crate) fn new(distance: Distance, query: Tensor<2>, reference: Option<Tensor<2>>) -> (Self, Vec<f64>) {
        let (ops, host, _) = Self::with_distance_too(distance, query, reference, None);
        (ops, host)
    }

    /// [`DistanceOperands::new`], plus the host matrix of a second distance `other`
    /// (e.g. a miner's) when it prepares rows the same way — from the same GEMM, so
    /// bit for bit what `other` computes on its own.
    pub(crate) fn with_distance_too(
        distance: Distance,
        query: Tensor<2>,
        reference: Option<Tensor<2>>,
        other: Option<Distance>,
    ) -> (Self, Vec<f64>, Option<Vec<f64>>) {
        let query_prepared = distance.prepare(crate::constant(&query));
        let reference_prepared = reference.as_ref().map(|r| distance.prepare(crate::constant(r)));
        let n = query_prepared.dims()[0];
        let m = reference_prepared.as_ref().map_or(n, |r| r.dims()[0]);
        let gram = crate::distance::gram_prepared(&query_prepared, reference_prepared.as_ref());
        let host = distance.host_matrix_from_gram(&gram, &query_prepared, reference_prepared.as_ref());
        let other = other
            .filter(|o| o.prepares_like(&distance))
            .map(|o| o.host_matrix_from_gram(&gram, &query_prepared, reference_prepared.as_ref()));
        let ops = DistanceOperands { distance, query, reference, query_prepared, reference_prepared, dims: [n, m] };
        (ops, host, other)
    }

    /// `[n, m]`.
    pub(crate) fn dims(&self) -> [usize; 2] {
        self.dims
    }

    /// A `[1]` loss with value `value` and the gradient of `Σ W ⊙ D` w.r.t. the raw inputs,
    /// `W = scale · weights`; `input` holds the matrix the weights were planned on.
    ///
    /// `nonzeros_at_most` (e.g. two per mined triplet) lets a sparse `W` (batch-hard:
    /// at most two entries per row) skip the `[n, m]` backward matrix and its GEMM:
    /// the gradient is then summed entry by entry on the host.
    pub(crate) fn weighted_sum_loss(&self, plan: FusedPlan, input: &MiningInput, value: f64) -> Tensor<1> {
        let FusedPlan { mut weights, scale, per_squared_distance, nonzeros_at_most, .. } = plan;
        let [n, m] = self.dims;
        let lp = match self.distance {
            Distance::Lp(lp) => Some(lp.power),
            _ => None,
        };
        // The √'s chain rule is still to apply (planners that did not do it per row).
        let euclidean = lp == Some(Power::Euclidean) && !per_squared_distance;
        if let Some(k) = nonzeros_at_most
            && k.saturating_mul(SPARSE_FACTOR) <= n * m
        {
            let (grad_q, grad_r) = self.sparse_gradient(&weights, scale, input, lp, euclidean);
            return self.attach_gradients(grad_q, grad_r, value);
        }
        if euclidean {
            // In place, contiguous (a memory-bound pass).
            weights.par_chunks_mut(m.max(1)).enumerate().for_each(|(i, row)| through_sqrt_row(row, input.u_row(i), scale));
        }
        // The Euclidean pass above applied `scale`; otherwise the tiled pass does.
        let scale = if euclidean { 1.0 } else { scale };
        let weights = &weights[..];
        let same_set = self.reference_prepared.is_none();
        let q = &self.query_prepared;
        let (device, dtype) = (q.device(), q.dtype());
        // One parallel pass: W + Wᵀ (same set), row and column sums, written straight
        // in the backend's float type.
        let (wt, row_sums, col_sums) = match dtype {
            DType::F64 => {
                let (w, rs, cs) = backward_weights(weights, scale, [n, m], same_set, |x| x);
                (TensorData::new(w, [n, m]), rs, cs)
            }
            _ => {
                let (w, rs, cs) = backward_weights(weights, scale, [n, m], same_set, |x| x as f32);
                (TensorData::new(w, [n, m]), rs, cs)
            }
        };
        let upload = |v: Vec<f64>, shape: [usize; 2]| {
            let data = match dtype {
                DType::F64 => TensorData::new(v, shape),
                _ => TensorData::new(v.into_iter().map(|x| x as f32).collect::<Vec<f32>>(), shape),
            };
            Tensor::<2>::from_data(data, (&device, dtype))
        };
        let col_sums = (!same_set && lp.is_some()).then_some(col_sums);
        let rs = upload(row_sums, [n, 1]);
        let wt = Tensor::<2>::from_data(wt, (&device, dtype));
        let (grad_q, grad_r) = match (&self.reference_prepared, lp) {
            (None, Some(_)) => ((q.clone() * rs - wt.matmul(q.clone())).mul_scalar(2.0), None),
            (None, None) => (wt.matmul(q.clone()), None),
            (Some(r), Some(_)) => {
                let cs = upload(col_sums.expect("computed for Lp with a reference"), [m, 1]);
                (
                    (q.clone() * rs - wt.clone().matmul(r.clone())).mul_scalar(2.0),
                    Some((r.clone() * cs - wt.transpose().matmul(q.clone())).mul_scalar(2.0)),
                )
            }
            (Some(r), None) => (wt.clone().matmul(r.clone()), Some(wt.transpose().matmul(q.clone()))),
        };
        self.attach_gradients(grad_q, grad_r, value)
    }

    /// `Σ (x − constant(x)) ⊙ g + value` for the query (and reference), with `g`
    /// taken back through the normalisation when the distance normalises.
    fn attach_gradients(&self, grad_q: Tensor<2>, grad_r: Option<Tensor<2>>, value: f64) -> Tensor<1> {
        let attach = |x: &Tensor<2>, prepared: &Tensor<2>, g: Tensor<2>| -> Tensor<1> {
            let g = if self.distance.normalizes() { normalize_backward(x, prepared, g) } else { g };
            ((x.clone() - crate::constant(x)) * crate::constant(&g)).sum()
        };
        let mut loss = attach(&self.query, &self.query_prepared, grad_q);
        if let (Some(x), Some(p), Some(g)) = (&self.reference, &self.reference_prepared, grad_r) {
            loss = loss + attach(x, p, g);
        }
        loss.add_scalar(value)
    }

    /// The gradients w.r.t. the prepared rows from the nonzero entries of `W`, on the host:
    /// per entry `e = W_ij` (`W_ij / (2 D_ij)` for the Euclidean distance, 0 at `D_ij = 0`),
    /// Lp: `g_q_i += 2e (q_i − r_j)`, `g_r_j += 2e (r_j − q_i)`; cosine / dot: `g_q_i += e r_j`,
    /// `g_r_j += e q_i` — with `r = q` (both updates on the query) for the same set.
    fn sparse_gradient(&self, weights: &[f64], scale: f64, input: &MiningInput, lp: Option<Power>, euclidean: bool) -> (Tensor<2>, Option<Tensor<2>>) {
        let [n, m] = self.dims;
        let q = &self.query_prepared;
        let (device, dtype) = (q.device(), q.dtype());
        let d = q.dims()[1];
        let entries: Vec<Vec<(usize, f64)>> = weights
            .par_chunks(m.max(1))
            .enumerate()
            .map(|(i, row)| {
                row.iter()
                    .enumerate()
                    .filter(|(_, w)| **w != 0.0)
                    .map(|(j, &w)| (j, if euclidean { through_sqrt(w * scale, input.u(i, j)) } else { w * scale }))
                    .collect()
            })
            .collect();
        let qh = crate::to_host(q);
        let rh = self.reference_prepared.as_ref().map(crate::to_host);
        let mut gq = vec![0.0; n * d];
        let mut gr = rh.as_ref().map(|_| vec![0.0; m * d]);
        for (i, row) in entries.iter().enumerate() {
            for &(j, e) in row {
                let qi = &qh[i * d..(i + 1) * d];
                match (&rh, &mut gr) {
                    (Some(rh), Some(gr)) => {
                        let rj = &rh[j * d..(j + 1) * d];
                        for t in 0..d {
                            let (gq_it, gr_jt) = if lp.is_some() {
                                let diff = 2.0 * e * (qi[t] - rj[t]);
                                (diff, -diff)
                            } else {
                                (e * rj[t], e * qi[t])
                            };
                            gq[i * d + t] += gq_it;
                            gr[j * d + t] += gr_jt;
                        }
                    }
                    _ => {
                        for t in 0..d {
                            let qjt = qh[j * d + t];
                            let (to_i, to_j) = if lp.is_some() {
                                let diff = 2.0 * e * (qi[t] - qjt);
                                (diff, -diff)
                            } else {
                                (e * qjt, e * qi[t])
                            };
                            gq[i * d + t] += to_i;
                            gq[j * d + t] += to_j;
                        }
                    }
                }
            }
        }
        let upload = |v: Vec<f64>, rows: usize| {
            let data = match dtype {
                DType::F64 => TensorData::new(v, [rows, d]),
                _ => TensorData::new(v.into_iter().map(|x| x as f32).collect::<Vec<f32>>(), [rows, d]),
            };
            Tensor::<2>::from_data(data, (&device, dtype))
        };
        (upload(gq, n), gr.map(|g| upload(g, m)))
    }
}

/// `w · ∂√s/∂s = w / (2√s)` at the distance `d = √s`, and 0 where the safe √ reported 0.
#[inline(always)]
fn through_sqrt(w: f64, d: f64) -> f64 {
    if d > 0.0 { w / (2.0 * d) } else { 0.0 }
}

/// [`through_sqrt`] on one row of `scale · weights` in place (`distances` the row's `d`);
/// zero weights stay as they are.
pub(crate) fn through_sqrt_row(weights: &mut [f64], distances: &[f64], scale: f64) {
    for (w, &d) in weights.iter_mut().zip(distances) {
        if *w != 0.0 {
            *w = through_sqrt(*w * scale, d);
        }
    }
}

/// A plan with at most `1/SPARSE_FACTOR` of its entries nonzero takes the sparse backward.
const SPARSE_FACTOR: usize = 16;

/// The matrix the backward GEMMs use, from `E = scale · weights = ∂L/∂(GEMM-side
/// matrix)` (`[n, m]`, row-major): `W'_ij = E_ij`, or `E_ij + E_ji` when query and reference are the
/// same set (`D` symmetric); plus its row sums and column sums (f64). One pass,
/// parallel over blocks of rows, in cache-sized tiles for the transpose.
fn backward_weights<T: Copy + Send + Sync + Default>(
    weights: &[f64],
    scale: f64,
    dims: [usize; 2],
    same_set: bool,
    cast: impl Fn(f64) -> T + Sync,
) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    if same_set {
        backward_weights_with::<T, true>(weights, scale, dims, cast)
    } else {
        backward_weights_with::<T, false>(weights, scale, dims, cast)
    }
}

/// [`backward_weights`] specialised on the same-set switch.
fn backward_weights_with<T: Copy + Send + Sync + Default, const SAME_SET: bool>(
    weights: &[f64],
    scale: f64,
    [n, m]: [usize; 2],
    cast: impl Fn(f64) -> T + Sync,
) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    const BLOCK: usize = 64;
    let e = |i: usize, j: usize| -> f64 { weights[i * m + j] * scale };
    let mut row_sums = vec![0.0; n];
    if m == 0 {
        return (vec![T::default(); n * m], row_sums, Vec::new());
    }
    let mut col_parts: Vec<Vec<f64>> = Vec::new();
    // SAFETY: every entry is written: blocks of `BLOCK` rows cover rows `0..n`, and
    // within each block the column blocks cover `0..m`.
    let out = unsafe {
        crate::buffer::build(n * m, |out| {
            col_parts = out
                .par_chunks_mut(BLOCK * m)
                .zip(row_sums.par_chunks_mut(BLOCK))
                .enumerate()
                .map(|(b, (rows, sums))| {
                    let i0 = b * BLOCK;
                    let mut cols = if SAME_SET { Vec::new() } else { vec![0.0; m] };
                    for j0 in (0..m).step_by(BLOCK) {
                        let j1 = (j0 + BLOCK).min(m);
                        for (k, (row, sum)) in rows.chunks_mut(m).zip(sums.iter_mut()).enumerate() {
                            let i = i0 + k;
                            for j in j0..j1 {
                                let v = if SAME_SET { e(i, j) + e(j, i) } else { e(i, j) };
                                row[j].write(cast(v));
                                *sum += v;
                                if !SAME_SET {
                                    cols[j] += v;
                                }
                            }
                        }
                    }
                    cols
                })
                .collect();
        })
    };
    let col_sums = if SAME_SET {
        Vec::new()
    } else {
        col_parts.into_iter().fold(vec![0.0; m], |mut acc, c| {
            acc.iter_mut().zip(c).for_each(|(a, b)| *a += b);
            acc
        })
    };
    (out, row_sums, col_sums)
}

/// Gradient through `x̂ = x / max(‖x‖, ε)` given `g = ∂L/∂x̂` (all detached).
fn normalize_backward(x: &Tensor<2>, x_hat: &Tensor<2>, g: Tensor<2>) -> Tensor<2> {
    let norm2 = crate::constant(x).square().sum_dim(1); // [n, 1]
    let clamped = norm2.clone().lower_equal_elem(NORM_EPS * NORM_EPS);
    let norm = norm2.clamp_min(NORM_EPS * NORM_EPS).sqrt();
    let radial = x_hat.clone() * (x_hat.clone() * g.clone()).sum_dim(1);
    // Where the norm is clamped, x̂ = x / ε is linear in x: the gradient is g / ε.
    let radial = radial.mask_fill(clamped.expand([x.dims()[0], x.dims()[1]]), 0.0);
    (g - radial) / norm
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::DistanceOperands;
    use crate::Distance;

    /// Regression: the operands of the written-out gradient were built with
    /// `detach()`, which in Burn keeps a leaf tracked, so the backward ran a
    /// wasted `[B, B] × [B, d]` GEMM through them (32 ms of 230 at B = 4096).
    #[test]
    fn written_out_gradient_operands_are_not_tracked() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([6, 3], Distribution::Default, &device).require_grad();
        assert!(x.clone().detach().is_tracked(), "Burn's detach keeps a leaf tracked; crate::constant exists for that");
        for distance in [Distance::euclidean_normalized(), Distance::Lp(crate::LpDistance { power: crate::Power::SquaredEuclidean, normalize: false })] {
            let (ops, _) = DistanceOperands::new(distance, x.clone(), Some(x.clone()));
            assert!(!ops.query_prepared.is_tracked(), "{}", distance.describe());
            assert!(!ops.reference_prepared.as_ref().unwrap().is_tracked(), "{}", distance.describe());
        }
        assert!(!crate::constant(&x).is_tracked());
    }
}
