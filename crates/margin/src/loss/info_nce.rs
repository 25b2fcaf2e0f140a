//! InfoNCE / NT-Xent with in-batch negatives (Oord et al. 2018; Chen et al. 2020,
//! SimCLR; sentence-transformers' MultipleNegativesRankingLoss is its one-directional
//! form), with the semantics of pytorch-metric-learning's `NTXentLoss` (golden values
//! in `tests/info_nce.rs`).
//!
//! With `s_ij` the cosine similarity of rows `i` and `j` and `τ` the temperature, every
//! positive pair `(i, j)` (`y_i = y_j`, `i ≠ j`) contributes
//!
//! `ℓ_ij = −log( exp(s_ij/τ) / (exp(s_ij/τ) + Σ_{k: y_k ≠ y_i} exp(s_ik/τ)) )`
//!
//! and the loss is their mean (PML's `MeanReducer` over positive pairs). A row without
//! negatives gives `ℓ = 0`; a batch without a positive pair is an attached zero.
//!
//! Batches: [`Batch::in_batch_pairs`](crate::Batch::in_batch_pairs) — label-free
//! (anchor, positive) rows: the batch is `[anchors; positives]` with anchor `i` and
//! positive `i` one class, so each pair is scored against the other `2n − 2` rows in both
//! directions (NT-Xent) — or a labelled batch ([`Batch::labelled`](crate::Batch::labelled)),
//! with `Tuples::All` only.
//!
//! Numerics: each term is computed as `(M − s) + log(exp(s − M) + exp(m − M) Σ exp(s_ik − m))`
//! with the row's largest negative `m` and `M = max(s, m)` taken from the detached values
//! (constants, so the gradient is exact): every exponent is ≤ 0 and the sum inside the log
//! is ≥ 1, so nothing overflows or takes `log 0` at any temperature.

use burn::tensor::{Tensor, TensorData};

use super::{LossOutput, LossStats, Resolved};
use crate::error::{MarginError, Result};
use crate::input::{attached_zero, check_embeddings, check_labels, to_host};
use crate::{Batch, Tuples, l2_normalize};

/// NT-Xent / InfoNCE with an explicit temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InfoNceLoss {
    temperature: f64,
}

impl InfoNceLoss {
    /// A loss with temperature `τ` (finite, > 0; PML's default is 0.07, sentence-transformers'
    /// MultipleNegativesRankingLoss uses scale 20, i.e. τ = 0.05).
    pub fn new(temperature: f64) -> Result<Self> {
        crate::check::positive("temperature", temperature)?;
        Ok(InfoNceLoss { temperature })
    }

    /// The temperature.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The loss of a pair batch or a labelled batch (see the module docs).
    ///
    /// # Shapes
    /// - pairs: `anchor`, `positive` `[n, d]`; labelled: `embeddings` `[B, d]`, `B` labels
    /// - output loss: `[1]`
    pub fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> Result<LossOutput> {
        if !matches!(tuples, Tuples::All) {
            return Err(MarginError::Unsupported("InfoNCE scores every positive pair against every in-batch negative: Tuples::All only".into()));
        }
        match batch.resolve()? {
            Resolved::InBatchPairs(a, p) => {
                crate::input::check_same_shape("positive", &p, "anchor", &a)?;
                let n = a.dims()[0] as i64;
                let labels: Vec<i64> = (0..n).chain(0..n).collect();
                self.forward_labelled(Tensor::cat(vec![a, p], 0), &labels)
            }
            Resolved::Labelled(b) if b.reference.is_none() => self.forward_labelled(b.embeddings, b.labels),
            Resolved::Labelled(_) => Err(MarginError::Unsupported("InfoNCE takes its negatives from the batch: no reference set".into())),
            Resolved::Triplets(..) | Resolved::Pairs(..) => {
                Err(MarginError::Unsupported("InfoNCE takes Batch::in_batch_pairs or Batch::labelled, not aligned triplets or polarity pairs".into()))
            }
        }
    }

    fn forward_labelled(&self, x: Tensor<2>, labels: &[i64]) -> Result<LossOutput> {
        check_embeddings("embeddings", &x)?;
        check_labels("embeddings", &x, "labels", labels)?;
        let b = labels.len();
        let inv_t = 1.0 / self.temperature;
        let xn = l2_normalize(x.clone());
        let s = xn.clone().matmul(xn.transpose()).mul_scalar(inv_t);
        let host = to_host(&s);
        let (mut pos, mut neg, mut shift, mut negmax) = (vec![0.0; b * b], vec![0.0; b * b], vec![0.0; b * b], vec![0.0; b]);
        let (mut ap, mut an) = (Vec::new(), Vec::new());
        for i in 0..b {
            let row = &host[i * b..(i + 1) * b];
            let negs = (0..b).filter(|&k| labels[k] != labels[i]);
            // With no negative, any bound ≥ the row keeps every exponent ≤ 0.
            negmax[i] = negs.clone().map(|k| row[k]).fold(f64::NEG_INFINITY, f64::max);
            if negmax[i] == f64::NEG_INFINITY {
                negmax[i] = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            }
            for k in 0..b {
                shift[i * b + k] = row[k].max(negmax[i]);
                if labels[k] != labels[i] {
                    neg[i * b + k] = 1.0;
                    an.push(row[k] * self.temperature);
                } else if k != i {
                    pos[i * b + k] = 1.0;
                    ap.push(row[k] * self.temperature);
                }
            }
        }
        let n_pos = ap.len();
        if n_pos == 0 {
            return Ok(LossOutput::new(attached_zero(&x), LossStats::new(0.0, &ap, &an, 0, 0)));
        }
        let (device, dtype) = (x.device(), x.dtype());
        let constant = |v: Vec<f64>, shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, shape), (&device, dtype));
        let (pos, neg, shift, negmax) = (constant(pos, [b, b]), constant(neg, [b, b]), constant(shift, [b, b]), constant(negmax, [b, 1]));
        // Masked before exp: a non-negative entry (the row's own, up to 2/τ above the
        // largest negative) would overflow, and inf · 0 is NaN.
        let neg_sum = (s.clone() - negmax.clone()).mul(neg.clone()).exp().mul(neg).sum_dim(1);
        let inner = (s.clone() - shift.clone()).exp() + (negmax - shift.clone()).exp().mul(neg_sum);
        let terms = (shift - s) + inner.log();
        let loss = terms.mul(pos).sum().mul_scalar(1.0 / n_pos as f64);
        let value = to_host(&loss)[0];
        Ok(LossOutput::new(loss, LossStats::new(value, &ap, &an, n_pos, n_pos)))
    }
}

impl super::MetricLoss for InfoNceLoss {
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> Result<LossOutput> {
        InfoNceLoss::forward(self, batch, tuples)
    }
}
