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
        let query_prepared = distance.prepare(query.clone().detach());
        let reference_prepared = reference.as_ref().map(|r| distance.prepare(r.clone().detach()));
        let n = query_prepared.dims()[0];
        let m = reference_prepared.as_ref().map_or(n, |r| r.dims()[0]);
        let host = distance.host_matrix_prepared(&query_prepared, reference_prepared.as_ref());
        let ops = DistanceOperands { distance, query, reference, query_prepared, reference_prepared, dims: [n, m] };
        (ops, host)
    }

    /// `[n, m]`.
    pub(crate) fn dims(&self) -> [usize; 2] {
        self.dims
    }

    /// A `[1]` loss with value `value` and the gradient of `Σ W ⊙ D` w.r.t. the raw inputs;
    /// `input` holds the matrix the weights were planned on.
    pub(crate) fn weighted_sum_loss(&self, weights: &[f64], input: &MiningInput, value: f64) -> Tensor<1> {
        let [n, m] = self.dims;
        let lp = match self.distance {
            Distance::Lp(lp) => Some(lp.power),
            _ => None,
        };
        // ∂√s/∂s = 1/(2√s), and 0 where the safe √ reported 0.
        let mut w: Vec<f64> = weights.to_vec();
        if lp == Some(Power::Euclidean) {
            w.par_chunks_mut(m.max(1)).enumerate().for_each(|(i, row)| {
                for (j, v) in row.iter_mut().enumerate() {
                    let d = input.raw(i, j);
                    *v = if d > 0.0 { *v / (2.0 * d) } else { 0.0 };
                }
            });
        }
        let same_set = self.reference_prepared.is_none();
        if same_set {
            symmetrize(&mut w, n);
        }
        let row_sums: Vec<f64> = w.par_chunks(m.max(1)).map(|r| r.iter().sum()).collect();
        let q = &self.query_prepared;
        let (device, dtype) = (q.device(), q.dtype());
        let upload = |v: Vec<f64>, shape: [usize; 2]| {
            let data = match dtype {
                DType::F64 => TensorData::new(v, shape),
                _ => TensorData::new(v.into_iter().map(|x| x as f32).collect::<Vec<f32>>(), shape),
            };
            Tensor::<2>::from_data(data, (&device, dtype))
        };
        let col_sums = (!same_set && lp.is_some()).then(|| {
            let mut c = vec![0.0; m];
            for row in w.chunks(m.max(1)) {
                c.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
            c
        });
        let rs = upload(row_sums, [n, 1]);
        let wt = upload(w, [n, m]);
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
        let attach = |x: &Tensor<2>, prepared: &Tensor<2>, g: Tensor<2>| -> Tensor<1> {
            let g = if self.distance.normalizes() { normalize_backward(x, prepared, g) } else { g };
            ((x.clone() - x.clone().detach()) * g).sum()
        };
        let mut loss = attach(&self.query, q, grad_q);
        if let (Some(x), Some(p), Some(g)) = (&self.reference, &self.reference_prepared, grad_r) {
            loss = loss + attach(x, p, g);
        }
        loss.add_scalar(value)
    }
}

/// `w ← w + wᵀ` for a square row-major matrix, in cache-sized blocks.
fn symmetrize(w: &mut [f64], n: usize) {
    const BLOCK: usize = 64;
    for bi in (0..n).step_by(BLOCK) {
        for bj in (bi..n).step_by(BLOCK) {
            for i in bi..(bi + BLOCK).min(n) {
                let j0 = if bi == bj { i } else { bj };
                for j in j0..(bj + BLOCK).min(n) {
                    let s = w[i * n + j] + w[j * n + i];
                    w[i * n + j] = s;
                    w[j * n + i] = s;
                }
            }
        }
    }
}

/// Gradient through `x̂ = x / max(‖x‖, ε)` given `g = ∂L/∂x̂` (all detached).
fn normalize_backward(x: &Tensor<2>, x_hat: &Tensor<2>, g: Tensor<2>) -> Tensor<2> {
    let norm2 = x.clone().detach().square().sum_dim(1); // [n, 1]
    let clamped = norm2.clone().lower_equal_elem(NORM_EPS * NORM_EPS);
    let norm = norm2.clamp_min(NORM_EPS * NORM_EPS).sqrt();
    let radial = x_hat.clone() * (x_hat.clone() * g.clone()).sum_dim(1);
    // Where the norm is clamped, x̂ = x / ε is linear in x: the gradient is g / ε.
    let radial = radial.mask_fill(clamped.expand([x.dims()[0], x.dims()[1]]), 0.0);
    (g - radial) / norm
}
