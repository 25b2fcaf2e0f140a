//! Distances and similarities between embeddings, as matrices (GEMM) or paired rows.
//!
//! Every distance knows its [`Direction`]. All are safe at the singular points
//! the seed warns about: the unsquared Euclidean distance has a finite (zero)
//! gradient at zero distance, and normalising a zero vector divides by
//! `max(‖x‖, 1e-12)` instead of 0.

use core::mem::MaybeUninit;

use burn::tensor::Tensor;

use crate::Direction;

/// Below this squared distance the Euclidean distance is reported as exactly 0
/// with zero gradient (the derivative of `sqrt` at 0 is infinite).
pub const SQRT_EPS: f64 = 1e-12;

/// Norms are clamped from below by this before dividing (as `torch.nn.functional.normalize`).
pub const NORM_EPS: f64 = 1e-12;

/// Whether the Euclidean distance is used as is or squared.
///
/// The margin a loss compares against lives in the same units, so a margin
/// tuned for one is wrong for the other (one of the seed's pitfalls); the
/// choice is therefore a type, never implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Power {
    /// `‖x − y‖₂` (PML `power=1`).
    Euclidean,
    /// `‖x − y‖₂²` (PML `power=2`).
    SquaredEuclidean,
}

/// Euclidean (`p = 2`) distance, optionally squared, optionally on L2-normalised rows.
///
/// Only `p = 2` exists: it is the one with a GEMM form. The name follows
/// pytorch-metric-learning's `LpDistance`, whose default is
/// `LpDistance { power: Euclidean, normalize: true }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LpDistance {
    /// Squared or not.
    pub power: Power,
    /// L2-normalise each row first.
    pub normalize: bool,
}

impl Default for LpDistance {
    fn default() -> Self {
        Self { power: Power::Euclidean, normalize: true }
    }
}

/// Cosine similarity `x̂ · ŷ` (rows always L2-normalised). Larger is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CosineSimilarity;

/// Dot product `x · y`, optionally on L2-normalised rows. Larger is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DotProductSimilarity {
    /// L2-normalise each row first (then this equals [`CosineSimilarity`]).
    pub normalize: bool,
}

/// One of the supported distances; the currency every loss and miner takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Distance {
    /// Euclidean or squared Euclidean.
    Lp(LpDistance),
    /// Cosine similarity.
    Cosine(CosineSimilarity),
    /// Dot-product similarity.
    Dot(DotProductSimilarity),
}

impl Default for Distance {
    /// pytorch-metric-learning's default: L2-normalised Euclidean distance.
    fn default() -> Self {
        Distance::Lp(LpDistance::default())
    }
}

impl From<LpDistance> for Distance {
    fn from(d: LpDistance) -> Self {
        Distance::Lp(d)
    }
}
impl From<CosineSimilarity> for Distance {
    fn from(d: CosineSimilarity) -> Self {
        Distance::Cosine(d)
    }
}
impl From<DotProductSimilarity> for Distance {
    fn from(d: DotProductSimilarity) -> Self {
        Distance::Dot(d)
    }
}

/// The GEMM `query · referenceᵀ` (`query · queryᵀ` when `None`) of prepared rows, on the host.
pub(crate) fn gram_prepared(query: &Tensor<2>, reference: Option<&Tensor<2>>) -> burn::tensor::TensorData {
    query.clone().matmul(reference.unwrap_or(query).clone().transpose()).into_data()
}

/// The distance matrix in raw units (`f64`, row-major `n × m`) from the GEMM `q̂ r̂ᵀ`
/// (read as is, no `f64` copy first), in one parallel pass: cosine / dot (`lp = None`)
/// the GEMM itself; Lp `max(‖q̂_i‖² + ‖r̂_j‖² − 2 q̂_i·r̂_j, 0)` with the row norms
/// `lp = (power, ‖q̂‖², ‖r̂‖²)`, and for [`Power::Euclidean`] its safe √ (0 at or below
/// [`SQRT_EPS`]).
pub(crate) fn host_values<S: GramElement>(gram: &[S], n: usize, m: usize, lp: Option<(Power, &[f64], &[f64])>) -> Vec<f64> {
    use rayon::prelude::*;
    assert_eq!(gram.len(), n * m, "the GEMM returns an n × m matrix");
    if m == 0 {
        return Vec::new();
    }
    // `lp_row` writes as many entries as `rn` has norms: all `m` of its row.
    debug_assert!(lp.is_none_or(|(_, qn, rn)| qn.len() == n && rn.len() == m), "host_values: {n} + {m} row norms");
    // SAFETY: every entry is written: the `n` rows of `m` entries each zip with one
    // row of `gram` (`n · m` entries, asserted above), and `lp_row` writes all of its row
    // (`m` norms: checked just above in debug builds; `build` checks every entry was
    // written in debug builds).
    unsafe {
        margin_linalg::buffer::build(n * m, |host| {
            host.par_chunks_mut(m).zip(gram.par_chunks(m)).enumerate().for_each(|(i, (row, g))| match lp {
                None => row.iter_mut().zip(g).for_each(|(v, &g)| {
                    v.write(g.into());
                }),
                Some((power, qn, rn)) => S::lp_row(row, g, qn[i], rn, power == Power::Euclidean),
            })
        })
    }
}

/// An element type of a GEMM's output ([`host_values`]).
pub(crate) trait GramElement: Copy + Into<f64> + Send + Sync {
    /// One row of an Lp distance: `out[j] = max(qi + rn[j] − 2·gram[j], 0)`, √ (safe) when `root`.
    fn lp_row(out: &mut [MaybeUninit<f64>], gram: &[Self], qi: f64, rn: &[f64], root: bool);
}

#[inline(always)]
fn lp_row<S: Copy + Into<f64>>(out: &mut [MaybeUninit<f64>], gram: &[S], qi: f64, rn: &[f64], root: bool) {
    for ((v, &g), &rj) in out.iter_mut().zip(gram).zip(rn) {
        let s = (qi + rj - 2.0 * g.into()).max(0.0);
        // Branch-free (it vectorises): the √ is taken everywhere, kept where valid.
        let sqrt = s.sqrt();
        v.write(if !root { s } else if s <= SQRT_EPS { 0.0 } else { sqrt });
    }
}

margin_linalg::avx2_dispatch! {
    fn lp_row_f32(out: &mut [MaybeUninit<f64>], gram: &[f32], qi: f64, rn: &[f64], root: bool) = lp_row::<f32>
}
margin_linalg::avx2_dispatch! {
    fn lp_row_f64(out: &mut [MaybeUninit<f64>], gram: &[f64], qi: f64, rn: &[f64], root: bool) = lp_row::<f64>
}

impl GramElement for f32 {
    fn lp_row(out: &mut [MaybeUninit<f64>], gram: &[f32], qi: f64, rn: &[f64], root: bool) {
        lp_row_f32(out, gram, qi, rn, root);
    }
}

impl GramElement for f64 {
    fn lp_row(out: &mut [MaybeUninit<f64>], gram: &[f64], qi: f64, rn: &[f64], root: bool) {
        lp_row_f64(out, gram, qi, rn, root);
    }
}

/// Row-wise L2 normalisation `x / max(‖x‖₂, 1e-12)`, finite (with finite gradient) at `x = 0`.
///
/// # Shapes
/// - `x`: `[n, d]` → `[n, d]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    // sqrt(max(‖x‖², eps²)) == max(‖x‖, eps), and its gradient stays finite at 0.
    let norm = x.clone().square().sum_dim(1).clamp_min(NORM_EPS * NORM_EPS).sqrt();
    x / norm
}

/// `sqrt` with value 0 and gradient 0 below [`SQRT_EPS`] (no `inf · 0 = NaN` at zero distance).
fn safe_sqrt<const D: usize>(squared: Tensor<D>) -> Tensor<D> {
    let tiny = squared.clone().lower_equal_elem(SQRT_EPS);
    squared.clamp_min(SQRT_EPS).sqrt().mask_fill(tiny, 0.0)
}

impl Distance {
    /// The conventions' names of the distances (ARCHITECTURE.md), used by every command and
    /// file: [`Distance::name`] and [`Distance::from_name`] map between them.
    pub const NAMES: [&'static str; 4] = ["euclidean", "squared-euclidean", "cosine", "dot"];

    /// The distance called `name` (one of [`Distance::NAMES`]), on L2-normalised rows when
    /// `normalize`; `None` for another name, and for `cosine` without normalisation (cosine
    /// always normalises: unnormalised, it is `dot`).
    pub fn from_name(name: &str, normalize: bool) -> Option<Self> {
        let lp = |power| Distance::Lp(LpDistance { power, normalize });
        Some(match name {
            "euclidean" => lp(Power::Euclidean),
            "squared-euclidean" => lp(Power::SquaredEuclidean),
            "cosine" if normalize => Distance::Cosine(CosineSimilarity),
            "dot" => Distance::Dot(DotProductSimilarity { normalize }),
            _ => return None,
        })
    }

    /// This distance's name in [`Distance::NAMES`] (whether rows are normalised is
    /// [`Distance::normalizes`]).
    pub fn name(&self) -> &'static str {
        match self {
            Distance::Lp(LpDistance { power: Power::Euclidean, .. }) => "euclidean",
            Distance::Lp(LpDistance { power: Power::SquaredEuclidean, .. }) => "squared-euclidean",
            Distance::Cosine(_) => "cosine",
            Distance::Dot(_) => "dot",
        }
    }

    /// Euclidean distance on L2-normalised rows (PML's default).
    pub fn euclidean_normalized() -> Self {
        Distance::Lp(LpDistance { power: Power::Euclidean, normalize: true })
    }

    /// Which way is closer.
    pub fn direction(&self) -> Direction {
        match self {
            Distance::Lp(_) => Direction::SmallerIsCloser,
            Distance::Cosine(_) | Distance::Dot(_) => Direction::LargerIsCloser,
        }
    }

    /// Whether rows are L2-normalised before comparing.
    pub fn normalizes(&self) -> bool {
        match self {
            Distance::Lp(d) => d.normalize,
            Distance::Cosine(_) => true,
            Distance::Dot(d) => d.normalize,
        }
    }

    /// Applies this distance's normalisation (identity when it has none).
    pub fn prepare(&self, x: Tensor<2>) -> Tensor<2> {
        if self.normalizes() { l2_normalize(x) } else { x }
    }

    /// All pairwise values between query and reference rows.
    ///
    /// Euclidean: `‖x‖² + ‖y‖² − 2·x·yᵀ`, clamped at 0 (then `sqrt` for [`Power::Euclidean`]);
    /// cosine/dot: `x·yᵀ`. One GEMM either way.
    ///
    /// # Shapes
    /// - `query`: `[n, d]`, `reference`: `[m, d]` → `[n, m]`
    pub fn matrix(&self, query: Tensor<2>, reference: Tensor<2>) -> Tensor<2> {
        self.matrix_prepared(self.prepare(query), self.prepare(reference))
    }

    /// All pairwise values within one set (`query = reference`), normalising once.
    ///
    /// # Shapes
    /// - `x`: `[n, d]` → `[n, n]`
    pub fn self_matrix(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.prepare(x);
        self.matrix_prepared(x.clone(), x)
    }

    /// [`Distance::matrix`] on rows already passed through [`Distance::prepare`].
    pub fn matrix_prepared(&self, query: Tensor<2>, reference: Tensor<2>) -> Tensor<2> {
        let gram = query.clone().matmul(reference.clone().transpose());
        match self {
            Distance::Lp(lp) => {
                let qn = query.square().sum_dim(1); // [n, 1]
                let rn = reference.square().sum_dim(1).transpose(); // [1, m]
                let squared = (gram.mul_scalar(-2.0) + qn + rn).clamp_min(0.0);
                match lp.power {
                    Power::SquaredEuclidean => squared,
                    Power::Euclidean => safe_sqrt(squared),
                }
            }
            Distance::Cosine(_) | Distance::Dot(_) => gram,
        }
    }

    /// Values between matching rows: `out[i] = dist(x[i], y[i])`.
    ///
    /// Computed from the row differences (no cancellation), unlike [`Distance::matrix`].
    ///
    /// # Shapes
    /// - `x`, `y`: `[n, d]` → `[n]`
    pub fn paired(&self, x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
        self.paired_prepared(self.prepare(x), self.prepare(y))
    }

    /// [`Distance::paired`] on rows already passed through [`Distance::prepare`].
    pub fn paired_prepared(&self, x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
        match self {
            Distance::Lp(lp) => {
                let squared: Tensor<1> = (x - y).square().sum_dim(1).squeeze_dim(1);
                match lp.power {
                    Power::SquaredEuclidean => squared,
                    Power::Euclidean => safe_sqrt(squared),
                }
            }
            Distance::Cosine(_) | Distance::Dot(_) => (x * y).sum_dim(1).squeeze_dim(1),
        }
    }

    /// [`Distance::matrix`] read back to the host (row-major `n × m`, `f64`), without a graph.
    ///
    /// Only the GEMM `x̂ ŷᵀ` and the row norms run on the backend; the norms, clamp at 0 and
    /// safe √ of the Euclidean forms are applied on the host while reading the matrix back
    /// (in parallel), so a planner or miner that needs host values pays for one pass, not six.
    /// `reference = None` compares the query with itself.
    pub fn host_matrix(&self, query: &Tensor<2>, reference: Option<&Tensor<2>>) -> Vec<f64> {
        let q = self.prepare(crate::constant(query));
        let r = reference.map(|r| self.prepare(crate::constant(r)));
        self.host_matrix_prepared(&q, r.as_ref())
    }

    /// [`Distance::host_matrix`] on rows already passed through [`Distance::prepare`].
    pub fn host_matrix_prepared(&self, query: &Tensor<2>, reference: Option<&Tensor<2>>) -> Vec<f64> {
        self.host_matrix_from_gram(&gram_prepared(query, reference), query, reference)
    }

    /// [`Distance::host_matrix_prepared`] from the GEMM `query · referenceᵀ` already
    /// computed ([`gram_prepared`]): two distances that prepare rows the same way
    /// (both normalise, or neither) share one GEMM.
    pub(crate) fn host_matrix_from_gram(&self, gram: &burn::tensor::TensorData, query: &Tensor<2>, reference: Option<&Tensor<2>>) -> Vec<f64> {
        let r = reference.unwrap_or(query);
        let m = r.dims()[0];
        let n = query.dims()[0];
        let lp = match self {
            Distance::Lp(lp) => {
                let norms = |x: &Tensor<2>| crate::to_host(&x.clone().square().sum_dim(1));
                let qn = norms(query);
                let rn = if reference.is_some() { norms(r) } else { qn.clone() };
                Some((lp.power, qn, rn))
            }
            _ => None,
        };
        let lp = lp.as_ref().map(|(p, qn, rn)| (*p, &qn[..], &rn[..]));
        match gram.dtype() {
            burn::tensor::DType::F32 => host_values(gram.as_slice::<f32>().expect("an f32 matrix"), n, m, lp),
            _ => host_values(&gram.clone().convert::<f64>().try_into_vec::<f64>().expect("converted to f64"), n, m, lp),
        }
    }

    /// Whether `self` and `other` feed the same rows to the GEMM (see [`Distance::prepare`]).
    pub(crate) fn prepares_like(&self, other: &Distance) -> bool {
        self.normalizes() == other.normalizes()
    }

    /// A short human-readable name (`"euclidean, normalized"`, `"cosine"`, ...).
    pub fn describe(&self) -> String {
        let norm = |n: bool| if n { ", L2-normalized" } else { "" };
        match self {
            Distance::Lp(d) => match d.power {
                Power::Euclidean => format!("euclidean{}", norm(d.normalize)),
                Power::SquaredEuclidean => format!("squared euclidean{}", norm(d.normalize)),
            },
            Distance::Cosine(_) => "cosine similarity".to_string(),
            Distance::Dot(d) => format!("dot product{}", norm(d.normalize)),
        }
    }
}
