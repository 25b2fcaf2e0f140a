//! Reducers: per-element losses → one scalar.
//!
//! Losses hand the reducer their per-element values grouped by kind
//! ([`ElementKind`]): triplet terms, positive-pair terms, negative-pair terms.
//! With [`KindPooling::Separate`] each kind is reduced on its own and the results
//! are summed (pytorch-metric-learning's `MultipleReducers`, how its
//! `ContrastiveLoss` averages positives and negatives separately); with
//! [`KindPooling::Pooled`] all elements are reduced together.
//!
//! Every reduction of an empty or all-excluded set is a zero that stays attached
//! to the autodiff graph (gradient 0), never a NaN from `0 / 0`.

use burn::tensor::Tensor;

/// What a per-element loss value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementKind {
    /// One `(anchor, positive, negative)` triplet.
    Triplet,
    /// One similar pair.
    PositivePair,
    /// One dissimilar pair.
    NegativePair,
}

/// Per-element loss values of one kind.
#[derive(Debug, Clone)]
pub struct LossTerms {
    /// What each value measures.
    pub kind: ElementKind,
    /// `[n]`, `n ≥ 1`.
    pub values: Tensor<1>,
}

/// A loss before reduction: its terms by kind, and a graph-attached zero.
#[derive(Debug, Clone)]
pub struct PerElementLoss {
    /// Groups of terms; a kind with no element is absent.
    pub terms: Vec<LossTerms>,
    /// `[1]`, value 0, attached to the embeddings' graph: the loss of an empty batch.
    pub zero: Tensor<1>,
}

/// How a reducer treats different [`ElementKind`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum KindPooling {
    /// Reduce each kind separately, then sum (PML's `MultipleReducers`).
    #[default]
    Separate,
    /// Reduce all elements together (Hadsell 2006's single mean over pairs).
    Pooled,
}

/// How per-element losses become one scalar.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reducer {
    /// Mean over all elements.
    Mean,
    /// Sum over all elements (the loss then scales with the batch size).
    Sum,
    /// Mean over the elements that are strictly positive (PML's `AvgNonZeroReducer`):
    /// easy tuples do not dilute the loss as training progresses.
    #[default]
    AvgNonZero,
    /// Mean over the elements `v` with `low < v < high` (a bound that is `None` is open);
    /// PML's `ThresholdReducer`.
    Threshold {
        /// Exclusive lower bound.
        low: Option<f64>,
        /// Exclusive upper bound.
        high: Option<f64>,
    },
}

impl Reducer {
    /// Checks the reducer's parameters: a `Threshold` interval must be non-empty with
    /// finite bounds (`low < high`): an empty one keeps no element, so the loss would be 0
    /// and nothing would train, silently.
    pub fn validate(&self) -> crate::Result<()> {
        match *self {
            Reducer::Threshold { low, high } => crate::check::interval("reducer (threshold low, high)", low, high),
            _ => Ok(()),
        }
    }

    /// Whether this reducer keeps element value `v` (averages or sums over it): the one
    /// statement of the rule, used by every loss path (gathering, weighted, fused).
    #[inline(always)]
    pub(crate) fn keeps(&self, v: f64) -> bool {
        match *self {
            Reducer::Mean | Reducer::Sum => true,
            Reducer::AvgNonZero => v > 0.0,
            Reducer::Threshold { low, high } => {
                low.is_none_or(|l| v > l) && high.is_none_or(|h| v < h)
            }
        }
    }

    /// The factor the sum of the `kept` kept elements takes: `1/kept` (1 for `Sum`),
    /// 0 when nothing is kept (the reduction of an empty set is 0, never `0 / 0`).
    #[inline]
    pub(crate) fn scale(&self, kept: usize) -> f64 {
        match (self, kept) {
            (_, 0) => 0.0,
            (Reducer::Sum, _) => 1.0,
            (_, k) => 1.0 / k as f64,
        }
    }

    /// [`Reducer::keeps`] counted without the values, for planners that only count:
    /// how many of `elements` values, `positive` of them `> 0`, this reducer keeps —
    /// `None` when that needs the values themselves (`Threshold`).
    #[inline]
    pub(crate) fn kept_count(&self, elements: usize, positive: usize) -> Option<usize> {
        match self {
            Reducer::Mean | Reducer::Sum => Some(elements),
            Reducer::AvgNonZero => Some(positive),
            Reducer::Threshold { .. } => None,
        }
    }

    /// Reduces one group of values (`[n]`, host copy `host`) to `[1]`.
    fn reduce_group(&self, values: Tensor<1>, host: &[f64], zero: &Tensor<1>) -> Tensor<1> {
        let kept: Vec<bool> = host.iter().map(|&v| self.keeps(v)).collect();
        let count = kept.iter().filter(|&&k| k).count();
        if count == 0 {
            return zero.clone();
        }
        let total = if count == host.len() {
            values.sum()
        } else {
            // Excluded elements are masked out; the mask is a constant (no gradient).
            let mask: Vec<f64> = kept.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            let mask = Tensor::<1>::from_data(
                burn::tensor::TensorData::new(mask, [host.len()]),
                (&values.device(), values.dtype()),
            );
            (values * mask).sum()
        };
        match self {
            Reducer::Sum => total,
            // `mul_scalar(1/n)`, not `div_scalar(n)`: Burn 0.22.1 differentiates `div_scalar`
            // with the scalar rounded to f32 (a 1e-8 relative error in f64 gradients).
            _ => total.mul_scalar(self.scale(count)),
        }
    }

    /// Reduces a per-element loss to a scalar `[1]`.
    ///
    /// `host` holds the same values as `loss.terms` read back (one `Vec` per group).
    pub fn reduce(&self, loss: &PerElementLoss, host: &[Vec<f64>], pooling: KindPooling) -> Tensor<1> {
        if loss.terms.is_empty() {
            return loss.zero.clone();
        }
        match pooling {
            KindPooling::Separate => loss
                .terms
                .iter()
                .zip(host)
                .map(|(t, h)| self.reduce_group(t.values.clone(), h, &loss.zero))
                .reduce(|a, b| a + b)
                .unwrap_or_else(|| loss.zero.clone()),
            KindPooling::Pooled => {
                let values = Tensor::cat(loss.terms.iter().map(|t| t.values.clone()).collect(), 0);
                let all: Vec<f64> = host.iter().flatten().copied().collect();
                self.reduce_group(values, &all, &loss.zero)
            }
        }
    }
}
