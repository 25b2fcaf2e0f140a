//! Oracles, not API: the losses' gathering paths, each tuple's distances gathered from
//! the distance matrix and differentiated by autodiff (one graph node per tuple).
//!
//! The fused and weighted paths that `forward` plans into never list tuples as
//! tensors; these are the direct form they are tested against (value, gradient and
//! statistics). They are slow (a graph per tuple) and will stay as they are: use the
//! losses' `forward` for anything but testing.

use crate::{ContrastiveLoss, LossOutput, Pairs, ReferenceSet, Result, TripletMarginLoss, Triplets};

/// The triplet loss over `triplets`, gathered — or, when `None`, over every valid
/// triplet (`y_a = y_p ≠ y_n`; `p ≠ a` without a reference set), listed first.
///
/// `L = reduce_(a,p,n)( max(0, d(a, p) − d(a, n) + m) )` (softplus, swap and
/// similarities as [`TripletMarginLoss::forward`]).
///
/// # Shapes
/// - `query`: `[n, d]`, `labels`: `n`; `reference.embeddings`: `[m, d]` → loss `[1]`
pub fn triplet(
    loss: &TripletMarginLoss,
    query: burn::tensor::Tensor<2>,
    labels: &[i64],
    reference: Option<ReferenceSet<'_>>,
    triplets: Option<&Triplets>,
) -> Result<LossOutput> {
    let all;
    let triplets = match (triplets, &reference) {
        (Some(t), _) => t,
        (None, None) => {
            all = Triplets::all(labels);
            &all
        }
        (None, Some(r)) => {
            all = Triplets::all_between(labels, r.labels, false);
            &all
        }
    };
    loss.forward_impl(query, labels, reference, triplets)
}

/// The contrastive loss over `pairs`, gathered — or, when `None`, over every pair
/// (`i ≠ j` without a reference set; every query–reference pair with one).
///
/// Per pair `[d − pos_margin]₊` (similar) or `[neg_margin − d]₊` (dissimilar), squared
/// in the squared form, reduced per kind or pooled (as [`ContrastiveLoss::forward`]).
///
/// # Shapes
/// - `query`: `[n, d]`, `labels`: `n`; `reference.embeddings`: `[m, d]` → loss `[1]`
pub fn contrastive(
    loss: &ContrastiveLoss,
    query: burn::tensor::Tensor<2>,
    labels: &[i64],
    reference: Option<ReferenceSet<'_>>,
    pairs: Option<&Pairs>,
) -> Result<LossOutput> {
    loss.forward_impl(query, labels, reference, pairs)
}
