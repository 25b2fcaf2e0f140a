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
//! attached to the graph as `Σ x ⊙ g − c + L` with `c` the first term's own value read
//! back (host path; `Σ (x − constant(x)) ⊙ g + L` on the device path): its value is
//! exactly the host-computed `L` and its gradient is exactly `g`.
//! The equality with autodiff through the distance matrix is tested in
//! `tests/batch_all.rs` and `tests/weighted.rs` (the explicit paths use autodiff).

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::DispatchDevice;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::distance::NORM_EPS;
use super::backward_matrix::{F32_KERNELS, F64_KERNELS, backward_weights};
use super::batch_all::FusedPlan;
use super::host_rows::{self, HostRows, Rows};
use crate::miner::MiningInput;
use crate::{Distance, Power};

/// Raw inputs of a distance matrix, kept for the written-out backward.
pub(crate) struct DistanceOperands {
    distance: Distance,
    query: Tensor<2>,
    reference: Option<Tensor<2>>,
    prepared: Prepared,
    dims: [usize; 2],
}

/// The prepared rows (`x̂`), where the GEMMs run.
enum Prepared {
    /// On the backend (any device, any float type).
    Device { query: Tensor<2>, reference: Option<Tensor<2>> },
    /// On the host: the CPU (Flex) backend with `f32` / `f64` tensors ([`host_rows`]).
    Host(HostRows),
}

/// Tests set this to run the device path on the CPU as well.
static FORCE_DEVICE_PATH: AtomicBool = AtomicBool::new(false);

/// Whether `x` lives on the CPU backend in a float type the host path handles.
pub(crate) fn host_path_serves(x: &Tensor<2>) -> bool {
    matches!(x.device().without_autodiff().as_dispatch(), DispatchDevice::Flex(_))
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && !FORCE_DEVICE_PATH.load(Ordering::Relaxed)
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
    /// bit for bit what `other` computes on its own on that path.
    pub(crate) fn with_distance_too(
        distance: Distance,
        query: Tensor<2>,
        reference: Option<Tensor<2>>,
        other: Option<Distance>,
    ) -> (Self, Vec<f64>, Option<Vec<f64>>) {
        let n = query.dims()[0];
        let m = reference.as_ref().map_or(n, |r| r.dims()[0]);
        let other = other.filter(|o| o.prepares_like(&distance));
        let power = |d: Distance| match d {
            Distance::Lp(lp) => Some(lp.power),
            _ => None,
        };
        let (prepared, host, other_host) = if host_path_serves(&query) && reference.as_ref().is_none_or(host_path_serves) {
            fn matrices<T: crate::flex_element::KFloat>(q: &Rows<T>, r: Option<&Rows<T>>, power: Option<Power>, other: Option<Option<Power>>) -> (Vec<f64>, Option<Vec<f64>>) {
                let gram = host_rows::gram(q, r);
                let host = host_rows::matrix_from_gram(&gram, q, r, power);
                (host, other.map(|p| host_rows::matrix_from_gram(&gram, q, r, p)))
            }
            let normalize = distance.normalizes();
            let rows = HostRows::new(&query, reference.as_ref(), normalize);
            let (host, other_host) = match &rows {
                HostRows::F32(q, r) => matrices(q, r.as_ref(), power(distance), other.map(power)),
                HostRows::F64(q, r) => matrices(q, r.as_ref(), power(distance), other.map(power)),
            };
            (Prepared::Host(rows), host, other_host)
        } else {
            let q = distance.prepare(crate::constant(&query));
            let r = reference.as_ref().map(|r| distance.prepare(crate::constant(r)));
            let gram = crate::distance::gram_prepared(&q, r.as_ref());
            let host = distance.host_matrix_from_gram(&gram, &q, r.as_ref());
            let other_host = other.map(|o| o.host_matrix_from_gram(&gram, &q, r.as_ref()));
            (Prepared::Device { query: q, reference: r }, host, other_host)
        };
        let ops = DistanceOperands { distance, query, reference, prepared, dims: [n, m] };
        (ops, host, other_host)
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
            return self.attach_host_gradients(grad_q, grad_r, value);
        }
        if euclidean {
            // In place, contiguous (a memory-bound pass).
            weights.par_chunks_mut(m.max(1)).enumerate().for_each(|(i, row)| through_sqrt_row(row, input.u_row(i), scale));
        }
        // The Euclidean pass above applied `scale`; otherwise the tiled pass does.
        let scale = if euclidean { 1.0 } else { scale };
        let weights = &weights[..];
        let same_set = self.reference.is_none();
        match &self.prepared {
            Prepared::Host(HostRows::F32(q, r)) => {
                let (w, rs, cs) = backward_weights(weights, scale, [n, m], same_set, F32_KERNELS);
                let (gq, gr) = host_rows::gradients(&w, &rs, &cs, q, r.as_ref(), lp.is_some());
                self.attach_host_gradients(gq, gr, value)
            }
            Prepared::Host(HostRows::F64(q, r)) => {
                let (w, rs, cs) = backward_weights(weights, scale, [n, m], same_set, F64_KERNELS);
                let (gq, gr) = host_rows::gradients(&w, &rs, &cs, q, r.as_ref(), lp.is_some());
                self.attach_host_gradients(gq, gr, value)
            }
            Prepared::Device { query: q, reference } => {
                let (device, dtype) = (q.device(), q.dtype());
                // One parallel pass: W + Wᵀ (same set), row and column sums, written straight
                // in the backend's float type.
                let (wt, row_sums, col_sums) = match dtype {
                    DType::F64 => {
                        let (w, rs, cs) = backward_weights(weights, scale, [n, m], same_set, F64_KERNELS);
                        (TensorData::new(w, [n, m]), rs, cs)
                    }
                    _ => {
                        let (w, rs, cs) = backward_weights(weights, scale, [n, m], same_set, F32_KERNELS);
                        (TensorData::new(w, [n, m]), rs, cs)
                    }
                };
                let upload = |v: Vec<f64>, shape: [usize; 2]| upload(v, shape, q);
                let col_sums = (!same_set && lp.is_some()).then_some(col_sums);
                let rs = upload(row_sums, [n, 1]);
                let wt = Tensor::<2>::from_data(wt, (&device, dtype));
                let (grad_q, grad_r) = match (reference, lp) {
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
                self.attach_device_gradients(grad_q, grad_r, value)
            }
        }
    }

    /// [`DistanceOperands::attach`] for gradients `g` w.r.t. the prepared rows, on the
    /// backend, taken back through the normalisation when the distance normalises.
    fn attach_device_gradients(&self, grad_q: Tensor<2>, grad_r: Option<Tensor<2>>, value: f64) -> Tensor<1> {
        let Prepared::Device { query: q, reference: r } = &self.prepared else {
            unreachable!("device gradients come from the device path");
        };
        let through = |x: &Tensor<2>, prepared: &Tensor<2>, g: Tensor<2>| if self.distance.normalizes() { normalize_backward(x, prepared, g) } else { g };
        let grad_q = through(&self.query, q, grad_q);
        let grad_r = match (&self.reference, r, grad_r) {
            (Some(x), Some(p), Some(g)) => Some(through(x, p, g)),
            _ => None,
        };
        self.attach(grad_q, grad_r, value)
    }

    /// [`DistanceOperands::attach_device_gradients`] for gradients w.r.t. the prepared
    /// rows on the host (`f64`, row-major).
    fn attach_host_gradients(&self, grad_q: Vec<f64>, grad_r: Option<Vec<f64>>, value: f64) -> Tensor<1> {
        let d = self.query.dims()[1];
        let [n, m] = self.dims;
        match &self.prepared {
            Prepared::Host(rows) => {
                let (gq, gr) = match rows {
                    HostRows::F32(q, r) => (host_rows::through_normalization(grad_q, q), grad_r.zip(r.as_ref()).map(|(g, r)| host_rows::through_normalization(g, r))),
                    HostRows::F64(q, r) => (host_rows::through_normalization(grad_q, q), grad_r.zip(r.as_ref()).map(|(g, r)| host_rows::through_normalization(g, r))),
                };
                let gq = upload(gq, [n, d], &self.query);
                let gr = gr.zip(self.reference.as_ref()).map(|(g, r)| upload(g, [m, d], r));
                self.attach(gq, gr, value)
            }
            Prepared::Device { query: q, .. } => {
                let gq = upload(grad_q, [n, d], q);
                let gr = grad_r.map(|g| upload(g, [m, d], q));
                self.attach_device_gradients(gq, gr, value)
            }
        }
    }

    /// A `[1]` loss with value `value` and gradient `g` w.r.t. the raw inputs.
    ///
    /// On the host path: `s = Σ x ⊙ g` carries the gradient and its value is cancelled
    /// exactly (`s` minus its own value read back is exactly 0 in the tensor's float type)
    /// — one `[n, d]` operation. Where reading back would cost a device sync (the device
    /// path), or `s` is not finite (overflow in a narrow float type), it is
    /// `Σ (x − constant(x)) ⊙ g + value` instead, exactly 0 plus `value` whatever `s`.
    fn attach(&self, grad_q: Tensor<2>, grad_r: Option<Tensor<2>>, value: f64) -> Tensor<1> {
        let dot = |x: &Tensor<2>, g: &Tensor<2>| -> Tensor<1> { (x.clone() * crate::constant(g)).sum() };
        if matches!(self.prepared, Prepared::Host(_)) {
            let mut s = dot(&self.query, &grad_q);
            if let (Some(x), Some(g)) = (&self.reference, &grad_r) {
                s = s + dot(x, g);
            }
            let own = crate::to_host(&s)[0];
            if own.is_finite() {
                return s.sub_scalar(own).add_scalar(value);
            }
        }
        let zero_plus = |x: &Tensor<2>, g: &Tensor<2>| -> Tensor<1> { ((x.clone() - crate::constant(x)) * crate::constant(g)).sum() };
        let mut loss = zero_plus(&self.query, &grad_q);
        if let (Some(x), Some(g)) = (&self.reference, &grad_r) {
            loss = loss + zero_plus(x, g);
        }
        loss.add_scalar(value)
    }

    /// The prepared rows on the host (`f64`, row-major): query, and reference when given.
    fn host_prepared(&self) -> (Vec<f64>, Option<Vec<f64>>) {
        fn widen<T: crate::flex_element::KFloat>(r: &Rows<T>) -> Vec<f64> {
            r.prepared.iter().map(|v| v.f()).collect()
        }
        match &self.prepared {
            Prepared::Host(HostRows::F32(q, r)) => (widen(q), r.as_ref().map(widen)),
            Prepared::Host(HostRows::F64(q, r)) => (widen(q), r.as_ref().map(widen)),
            Prepared::Device { query, reference } => (crate::to_host(query), reference.as_ref().map(crate::to_host)),
        }
    }

    /// The gradients w.r.t. the prepared rows from the nonzero entries of `W`, on the host:
    /// per entry `e = W_ij` (`W_ij / (2 D_ij)` for the Euclidean distance, 0 at `D_ij = 0`),
    /// Lp: `g_q_i += 2e (q_i − r_j)`, `g_r_j += 2e (r_j − q_i)`; cosine / dot: `g_q_i += e r_j`,
    /// `g_r_j += e q_i` — with `r = q` (both updates on the query) for the same set.
    fn sparse_gradient(&self, weights: &[f64], scale: f64, input: &MiningInput, lp: Option<Power>, euclidean: bool) -> (Vec<f64>, Option<Vec<f64>>) {
        let [n, m] = self.dims;
        let d = self.query.dims()[1];
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
        let (qh, rh) = self.host_prepared();
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
        (gq, gr)
    }
}

/// `v` (`f64`, row-major `shape`) as a tensor on `like`'s device in its float type.
fn upload(v: Vec<f64>, shape: [usize; 2], like: &Tensor<2>) -> Tensor<2> {
    let (device, dtype) = (like.device(), like.dtype());
    let data = match dtype {
        DType::F64 => TensorData::new(v, shape),
        _ => TensorData::new(v.into_iter().map(|x| x as f32).collect::<Vec<f32>>(), shape),
    };
    Tensor::<2>::from_data(data, (&device, dtype))
}

/// `w · ∂√s/∂s = w / (2√s)` at the distance `d = √s`, and 0 where the safe √ reported 0.
#[inline(always)]
fn through_sqrt(w: f64, d: f64) -> f64 {
    if d > 0.0 { w / (2.0 * d) } else { 0.0 }
}

margin_linalg::avx2_dispatch! {
    /// [`through_sqrt`] on one row of `scale · weights` in place (`distances` the row's `d`);
    /// zero weights stay as they are.
    pub(crate) fn through_sqrt_row(weights: &mut [f64], distances: &[f64], scale: f64) = through_sqrt_row_impl
}

#[inline(always)]
fn through_sqrt_row_impl(weights: &mut [f64], distances: &[f64], scale: f64) {
    for (w, &d) in weights.iter_mut().zip(distances) {
        // Branch-free (it vectorises): the quotient is computed everywhere, kept where valid.
        let through = (*w * scale) / (2.0 * d);
        *w = if *w == 0.0 { *w } else if d > 0.0 { through } else { 0.0 };
    }
}

/// A plan with at most `1/SPARSE_FACTOR` of its entries nonzero takes the sparse backward.
const SPARSE_FACTOR: usize = 16;

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
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};

    use super::{DistanceOperands, FORCE_DEVICE_PATH, Prepared};
    use crate::loss::{Batch, ReferenceSet, Tuples};
    use crate::{ContrastiveLossConfig, Distance, LpDistance, Power, TripletMarginLossConfig};

    /// Serialises the tests that switch paths (the switch is process-wide).
    static PATHS: Mutex<()> = Mutex::new(());

    /// `f` on the host path, then on the device path.
    fn on_both_paths<R>(f: impl Fn() -> R) -> (R, R) {
        let _guard = PATHS.lock().unwrap_or_else(|e| e.into_inner());
        let host = f();
        FORCE_DEVICE_PATH.store(true, Ordering::SeqCst);
        let device = f();
        FORCE_DEVICE_PATH.store(false, Ordering::SeqCst);
        (host, device)
    }

    /// Regression: the operands of the written-out gradient were built with
    /// `detach()`, which in Burn keeps a leaf tracked, so the backward ran a
    /// wasted `[B, B] × [B, d]` GEMM through them (32 ms of 230 at B = 4096).
    #[test]
    fn written_out_gradient_operands_are_not_tracked() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([6, 3], Distribution::Default, &device).require_grad();
        assert!(x.clone().detach().is_tracked(), "Burn's detach keeps a leaf tracked; crate::constant exists for that");
        let _guard = PATHS.lock().unwrap_or_else(|e| e.into_inner());
        FORCE_DEVICE_PATH.store(true, Ordering::SeqCst);
        for distance in [Distance::euclidean_normalized(), Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: false })] {
            let (ops, _) = DistanceOperands::new(distance, x.clone(), Some(x.clone()));
            let Prepared::Device { query, reference } = &ops.prepared else { panic!("the device path was forced") };
            assert!(!query.is_tracked(), "{}", distance.describe());
            assert!(!reference.as_ref().unwrap().is_tracked(), "{}", distance.describe());
        }
        FORCE_DEVICE_PATH.store(false, Ordering::SeqCst);
        assert!(!crate::constant(&x).is_tracked());
    }

    /// The CPU backend's host path (prepared rows, GEMMs and the normalisation's
    /// backward on the host) equals the device path: every distance, both float
    /// types, same set and reference set, triplet and contrastive fused losses.
    #[test]
    fn host_and_device_paths_agree() {
        let device = Device::flex().autodiff();
        let values = |n: usize, seed: u64| -> Vec<f64> {
            (0..n).map(|i| ((i as f64 + 0.5) * 0.7548776662 + seed as f64 * 0.5698402910).fract() * 2.0 - 1.0).collect()
        };
        let distances = [
            Distance::euclidean_normalized(),
            Distance::Lp(LpDistance { power: Power::Euclidean, normalize: false }),
            Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: true }),
            Distance::Cosine(crate::CosineSimilarity),
            Distance::Dot(crate::DotProductSimilarity { normalize: false }),
        ];
        // 24 rows: one tile, full GEMM; 150 rows: the symmetric Gram matrix by blocks and
        // several tiles of W + Wᵀ, partial ones included.
        for (n, m) in [(24, 17), (150, 90)] {
            let labels: Vec<i64> = (0..n as i64).map(|i| i % 5).collect();
            let ref_labels: Vec<i64> = (0..m as i64).map(|i| i % 4).collect();
            for dtype in [DType::F32, DType::F64] {
                let tol = if dtype == DType::F64 { 1e-10 } else { 2e-4 };
                for distance in distances {
                    for case in 0..3 {
                        let run = || {
                            let tensor = |v: Vec<f64>, shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, shape), (&device, dtype)).require_grad();
                            let x = tensor(values(n * 5, 1), [n, 5]);
                            let r = tensor(values(m * 5, 2), [m, 5]);
                            let triplet = TripletMarginLossConfig::new().with_margin(0.3).with_distance(distance).init().unwrap();
                            let out = match case {
                                0 => triplet.forward(Batch::labelled(x.clone(), &labels), Tuples::All).unwrap(),
                                1 => triplet.forward(Batch::labelled(x.clone(), &labels).with_reference(ReferenceSet { embeddings: r.clone(), labels: &ref_labels }), Tuples::All).unwrap(),
                                _ => ContrastiveLossConfig::new().with_pos_margin(0.1).with_neg_margin(0.9).with_distance(distance).init().unwrap().forward(Batch::labelled(x.clone(), &labels), Tuples::All).unwrap(),
                            };
                            let value = crate::to_host(&out.loss)[0];
                            let grads = out.loss.backward();
                            let gx = crate::to_host(&x.grad(&grads).unwrap());
                            let gr = r.grad(&grads).map(|g| crate::to_host(&g));
                            (value, gx, gr)
                        };
                        let (host, dev) = on_both_paths(run);
                        let what = format!("n {n} {dtype:?} {} case {case}", distance.describe());
                        assert!(host.0 != 0.0, "{what}: a loss with active terms");
                        assert!((host.0 - dev.0).abs() <= tol * (1.0 + dev.0.abs()), "{what}: value {} vs {}", host.0, dev.0);
                        let close = |a: &[f64], b: &[f64], name: &str| {
                            let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                                assert!((x - y).abs() <= tol * scale, "{what}: {name}[{i}] {x} vs {y}");
                            }
                        };
                        close(&host.1, &dev.1, "grad query");
                        assert_eq!(host.2.is_some(), dev.2.is_some(), "{what}");
                        if let (Some(a), Some(b)) = (&host.2, &dev.2) {
                            close(a, b, "grad reference");
                        }
                    }
                }
            }
        }
    }
}
