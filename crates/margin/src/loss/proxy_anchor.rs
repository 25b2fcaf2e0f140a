//! Proxy-Anchor loss (Kim et al. 2020, "Proxy Anchor Loss for Deep Metric Learning",
//! CVPR, arXiv:2003.13911), with the semantics and defaults of pytorch-metric-learning
//! 2.9's `ProxyAnchorLoss` (golden values in `tests/param_losses.rs`).
//!
//! One proxy `p_c` per class; `c_ic = cos(x_i, p_c)` (both L2-normalised; one GEMM). Each
//! proxy is an anchor: with `P_c` the batch rows of class `c`,
//!
//! `L = (1/|C⁺|) Σ_{c ∈ C⁺} log(1 + Σ_{i ∈ P_c} exp(−α (c_ic − δ)))`
//! `  + (1/C) Σ_c log(1 + Σ_{i ∉ P_c} exp(α (c_ic + δ)))`
//!
//! where `C⁺` are the proxies with at least one positive in the batch (PML's
//! `DivisorReducer`: the positive sum over `|C⁺|`, the negative sum over every class).
//! PML's defaults: margin `δ = 0.1`, `α = 32`. Every `log(1 + Σ exp)` is evaluated shifted
//! by its largest exponent (and 0), so nothing overflows.
//!
//! Statistics: the tuples are every `(row, proxy)` pair; a positive pair is active when
//! `c_ic < δ`, a negative one when `c_ic > −δ` (its exponent is positive: the margin is
//! not met); the mean "distances" are the mean positive and negative cosine similarities.
//!
//! Parameters: the proxies, `[C, d]` (PML's layout), drawn as PML's default
//! `kaiming_normal_(mode = "fan_out")`: `N(0, 2/C)`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use rand::RngCore;

use super::class_sim::{self, Init, check_inputs, cosine_matrix, labelled_rows};
use super::{LossOutput, LossStats};
use crate::error::Result as MarginResult;
use crate::{Batch, Tuples};

/// Proxy-Anchor's configuration (PML's `ProxyAnchorLoss` defaults).
#[derive(Config, Debug)]
pub struct ProxyAnchorLossConfig {
    /// Number of classes `C` (labels are `0..C`).
    pub num_classes: usize,
    /// Embedding dimension `d`.
    pub embedding_dim: usize,
    /// The margin `δ`, in cosine units (finite, ≥ 0).
    #[config(default = 0.1)]
    pub margin: f64,
    /// The scale `α` (> 0).
    #[config(default = 32.0)]
    pub alpha: f64,
}

impl ProxyAnchorLossConfig {
    fn checked(&self) -> MarginResult<()> {
        class_sim::check_sizes(self.num_classes, self.embedding_dim)?;
        crate::check::non_negative("margin", self.margin)?;
        crate::check::positive("alpha", self.alpha)?;
        Ok(())
    }

    /// Validates the configuration and builds the loss, its proxies drawn from `rng`
    /// (`N(0, 2/C)`, `f32`, on `device`).
    pub fn init(&self, rng: &mut dyn RngCore, device: &Device) -> MarginResult<ProxyAnchorLoss> {
        self.checked()?;
        let std = (2.0 / self.num_classes as f64).sqrt();
        let proxies = class_sim::init_param(rng, Init::Normal { std }, self.num_classes, self.embedding_dim, device);
        Ok(ProxyAnchorLoss { proxies, margin: self.margin, alpha: self.alpha })
    }

    /// The loss with given proxies (`[C, d]`, finite; their float type is the loss's).
    pub fn init_with(&self, proxies: Tensor<2>) -> MarginResult<ProxyAnchorLoss> {
        self.checked()?;
        let proxies = class_sim::given_param("proxies", proxies, self.num_classes, self.embedding_dim)?;
        Ok(ProxyAnchorLoss { proxies, margin: self.margin, alpha: self.alpha })
    }
}

/// The Proxy-Anchor loss (see the module docs). A Burn `Module`: the trainer optimises
/// `proxies` with the encoder.
#[derive(Module, Debug)]
pub struct ProxyAnchorLoss {
    /// One proxy per class, `[C, d]`.
    pub proxies: Param<Tensor<2>>,
    /// The margin `δ`.
    pub margin: f64,
    /// The scale `α`.
    pub alpha: f64,
}

/// `log(1 + Σ exp(a_k))` over `a`, and `exp(a_k) / (1 + Σ exp)` written into `w`.
fn log1p_sum_exp(a: &[f64], w: &mut [f64]) -> f64 {
    let max = a.iter().copied().fold(0.0, f64::max);
    let mut sum = (-max).exp();
    for (wk, &ak) in w.iter_mut().zip(a) {
        *wk = (ak - max).exp();
        sum += *wk;
    }
    w.iter_mut().for_each(|wk| *wk /= sum);
    max + sum.ln()
}

impl ProxyAnchorLoss {
    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.proxies.val().dims()[0]
    }

    /// The loss of a labelled batch, `Tuples::All` only (see the module docs for `L`).
    ///
    /// # Shapes
    /// - `embeddings`: `[B, d]`, `B` labels in `0..C` → loss `[1]`
    pub fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        let (x, labels) = labelled_rows("Proxy-Anchor", batch, &tuples)?;
        let p = self.proxies.val();
        let classes = check_inputs(&x, labels, &p, "proxies", self.num_classes())?;
        let (s, host) = cosine_matrix(x, p);
        let (b, c) = (host.rows, host.cols);
        let mut grad = vec![0.0; b * c];
        let with_positives = {
            let mut seen = vec![false; c];
            classes.iter().for_each(|&y| seen[y] = true);
            seen.iter().filter(|&&v| v).count()
        };
        let (mut pos_sum, mut neg_sum, mut active) = (0.0, 0.0, 0);
        let (mut ap, mut an) = (Vec::with_capacity(b), Vec::with_capacity(b * (c - 1)));
        let (mut rows, mut exps, mut w) = (Vec::with_capacity(b), Vec::with_capacity(b), vec![0.0; b]);
        for k in 0..c {
            for positive in [true, false] {
                rows.clear();
                exps.clear();
                for (i, &y) in classes.iter().enumerate() {
                    if (y == k) == positive {
                        let cos = host.row(i)[k];
                        let e = if positive { -self.alpha * (cos - self.margin) } else { self.alpha * (cos + self.margin) };
                        active += usize::from(e > 0.0);
                        (if positive { &mut ap } else { &mut an }).push(cos);
                        rows.push(i);
                        exps.push(e);
                    }
                }
                if rows.is_empty() {
                    continue;
                }
                let term = log1p_sum_exp(&exps, &mut w[..rows.len()]);
                let (sign, divisor) = if positive { (-1.0, with_positives as f64) } else { (1.0, c as f64) };
                if positive { pos_sum += term } else { neg_sum += term }
                for (&i, &wi) in rows.iter().zip(&w) {
                    grad[i * c + k] = sign * self.alpha * wi / divisor;
                }
            }
        }
        let value = pos_sum / with_positives as f64 + neg_sum / c as f64;
        let stats = LossStats::new(value, &ap, &an, b * c, active);
        Ok(LossOutput::new(class_sim::attach(s, grad, value), stats))
    }
}

impl super::MetricLoss for ProxyAnchorLoss {
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        ProxyAnchorLoss::forward(self, batch, tuples)
    }
}
