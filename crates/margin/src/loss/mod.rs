//! Losses: triplet margin, contrastive, InfoNCE, and the losses with per-class parameters
//! (ArcFace / CosFace / normalised softmax, Proxy-Anchor, Proxy-NCA, SoftTriple: Burn
//! `Module`s over one embedding–parameter cosine matrix, `class_sim`), each through one entry point,
//! `forward(`[`Batch`]`, `[`Tuples`]`)` ([`MetricLoss`]; the planner is described in
//! the `batch` module docs, re-exported here).
//!
//! Data flow for a labelled batch: embeddings → distance matrix (one GEMM) →
//! index tuples (all valid ones, or a miner's) → per-element losses tagged by
//! [`ElementKind`](crate::ElementKind) → [`Reducer`](crate::Reducer) → scalar.
//! Each forward also returns [`LossStats`], computed from the detached values.

use burn::tensor::{Int, Tensor, TensorData};

mod backward_matrix;
mod batch;
mod batch_all;
mod class_sim;
mod contrastive;
mod contrastive_all;
mod host_rows;
mod info_nce;
mod margin_softmax;
mod proxy_anchor;
mod proxy_nca;
mod soft_triple;
mod triplet;
mod weighted;
mod weighted_grad;

pub(crate) use weighted_grad::host_path_serves;

pub(crate) use batch::{Labelled, Resolved};
pub use batch::{Batch, MetricLoss, Mining, Tuples};
pub use info_nce::InfoNceLoss;
pub use contrastive::{ContrastiveForm, ContrastiveLoss, ContrastiveLossConfig};
pub use triplet::{TripletMarginLoss, TripletMarginLossConfig};
pub use margin_softmax::{
    ArcFaceLossConfig, CosFaceLossConfig, MIN_SIN, MarginSoftmaxLoss, NormalizedSoftmaxLossConfig, TargetMargin,
};
pub use class_sim::param_rng;
pub use proxy_anchor::{ProxyAnchorLoss, ProxyAnchorLossConfig};
pub use proxy_nca::{ProxyNcaLoss, ProxyNcaLossConfig};
pub use soft_triple::{SoftTripleLoss, SoftTripleLossConfig};

/// A reference set distinct from the query batch (e.g. a cross-batch memory).
///
/// Anchors index the query batch; positives and negatives index this set.
#[derive(Debug, Clone)]
pub struct ReferenceSet<'a> {
    /// `[m, d]` reference embeddings.
    pub embeddings: Tensor<2>,
    /// `m` labels.
    pub labels: &'a [i64],
}

/// What one forward pass saw: the seed's "monitor the fraction of active constraints".
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct LossStats {
    /// The reduced loss value (host copy).
    pub loss: f64,
    /// Number of tuples (triplets, or positive + negative pairs) the loss was evaluated on.
    pub num_tuples: usize,
    /// Number of tuples whose constraint is violated (hinge argument > 0): the ones
    /// that produce a gradient.
    pub num_active: usize,
    /// `num_active / num_tuples` (0 when there are no tuples).
    pub active_fraction: f64,
    /// Mean anchor–positive distance (or similarity) over the tuples; `None` without any.
    pub mean_ap_dist: Option<f64>,
    /// Mean anchor–negative distance (or similarity) over the tuples; `None` without any.
    pub mean_an_dist: Option<f64>,
}

/// A loss value attached to the graph, its statistics, and the mined tuples when asked for.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// `[1]`: the reduced loss; call `.backward()` on it.
    pub loss: Tensor<1>,
    /// Statistics of this step.
    pub stats: LossStats,
    /// The miner's tuples and statistics: `Some` exactly when [`Tuples::Mined`] asked for
    /// them ([`Mining::returning_tuples`]), whichever path the loss took; else `None`.
    pub mined: Option<crate::Mined>,
}

impl LossOutput {
    /// A loss and its statistics, no tuples returned.
    pub(crate) fn new(loss: Tensor<1>, stats: LossStats) -> Self {
        LossOutput { loss, stats, mined: None }
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl LossStats {
    pub(crate) fn new(loss: f64, ap: &[f64], an: &[f64], num_tuples: usize, num_active: usize) -> Self {
        LossStats {
            loss,
            num_tuples,
            num_active,
            active_fraction: if num_tuples == 0 { 0.0 } else { num_active as f64 / num_tuples as f64 },
            mean_ap_dist: mean(ap),
            mean_an_dist: mean(an),
        }
    }
}

/// Checks a query batch and its optional reference set (finite, labels per row, same `D`);
/// returns the source of their graph-attached zero.
pub(crate) fn check_query_and_reference(
    query: &Tensor<2>,
    labels: &[i64],
    reference: Option<&ReferenceSet<'_>>,
) -> crate::Result<Zero> {
    use crate::input::{check_embeddings, check_labels, check_same_dim};
    check_embeddings("embeddings", query)?;
    check_labels("embeddings", query, "labels", labels)?;
    if let Some(r) = reference {
        check_embeddings("reference embeddings", &r.embeddings)?;
        check_same_dim("reference embeddings", &r.embeddings, "embeddings", query)?;
        check_labels("reference embeddings", &r.embeddings, "reference labels", r.labels)?;
    }
    Ok(Zero { query: query.clone(), reference: reference.map(|r| r.embeddings.clone()) })
}

/// The graph-attached zero of a checked query batch and reference set, built only when a
/// loss needs it (no valid tuple): two backend operations saved on every other call.
pub(crate) struct Zero {
    query: Tensor<2>,
    reference: Option<Tensor<2>>,
}

impl Zero {
    /// A `[1]` zero attached to the query's (and reference's) graph.
    pub(crate) fn get(&self) -> Tensor<1> {
        let zero = crate::input::attached_zero(&self.query);
        match &self.reference {
            Some(r) => zero + crate::input::attached_zero(r),
            None => zero,
        }
    }
}

/// `mat[rows[i], cols[i]]` for every `i`, as one gather on the flattened matrix.
///
/// # Shapes
/// - `mat`: `[n, m]` → `[rows.len()]`
pub(crate) fn gather_entries(mat: &Tensor<2>, rows: &[usize], cols: &[usize]) -> Tensor<1> {
    let [n, m] = mat.dims();
    let flat: Tensor<1> = mat.clone().reshape([n * m]);
    let idx: Vec<i64> = rows.iter().zip(cols).map(|(&r, &c)| (r * m + c) as i64).collect();
    let len = idx.len();
    flat.select(0, Tensor::<1, Int>::from_data(TensorData::new(idx, [len]), &mat.device()))
}

/// Rows `idx` of `x`.
pub(crate) fn gather_rows(x: &Tensor<2>, idx: &[usize]) -> Tensor<2> {
    let idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    let len = idx.len();
    x.clone().select(0, Tensor::<1, Int>::from_data(TensorData::new(idx, [len]), &x.device()))
}
