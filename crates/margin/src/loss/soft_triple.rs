//! SoftTriple loss (Qian et al. 2019, "SoftTriple Loss: Deep Metric Learning Without Triplet
//! Sampling", ICCV, arXiv:1909.05235), with the semantics and defaults of
//! pytorch-metric-learning 2.9's `SoftTripleLoss` (golden values in `tests/param_losses.rs`).
//!
//! `K` centres per class; `c_ick = cos(x_i, w_ck)` (both L2-normalised; one GEMM against all
//! `C·K` centres). A row's similarity to class `c` is the softmax-weighted mean of its
//! centres, and the loss is the cross-entropy of the scaled similarities with a margin on
//! the target:
//!
//! `q_ick = softmax_k(c_ick / γ)`,  `S_ic = Σ_k q_ick c_ick`,
//! `ℓ_i = log Σ_c exp(λ (S_ic − δ [c = y_i])) − λ (S_iy − δ)`,
//!
//! and the loss is their mean (PML's `MeanReducer`). PML's defaults: `K = 10`, `λ = 20`
//! (`la`), `γ = 0.1` (the entropy temperature; PML stores `1/γ`), `δ = 0.01`. As in PML the
//! paper's centre regulariser (`τ`) is not part of the loss.
//!
//! Statistics: the tuples are the `(row, other class)` pairs, active when the other class's
//! logit reaches the target's (`S_ic ≥ S_iy − δ`); the mean "distances" are the mean target
//! and non-target similarities `S`.
//!
//! Parameters: the centres, `[C·K, d]`, class `c`'s centre `k` at row `c·K + k` (PML stores
//! the transpose, `[d, C·K]`, in the same order), drawn as PML's default
//! `kaiming_uniform_(a = √5)`: `U(−1/√(C·K), 1/√(C·K))`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use rand::RngCore;

use super::class_sim::{self, Init, check_inputs, cosine_matrix, labelled_rows, log_softmax_into};
use super::{LossOutput, LossStats};
use crate::error::Result as MarginResult;
use crate::{Batch, Tuples};

/// SoftTriple's configuration (PML's `SoftTripleLoss` defaults).
#[derive(Config, Debug)]
pub struct SoftTripleLossConfig {
    /// Number of classes `C` (labels are `0..C`).
    pub num_classes: usize,
    /// Embedding dimension `d`.
    pub embedding_dim: usize,
    /// Centres per class `K` (≥ 1).
    #[config(default = 10)]
    pub centers_per_class: usize,
    /// The scale `λ` (PML's `la`, > 0).
    #[config(default = 20.0)]
    pub la: f64,
    /// The entropy temperature `γ` of the centre softmax (> 0).
    #[config(default = 0.1)]
    pub gamma: f64,
    /// The margin `δ` on the target similarity (finite, ≥ 0).
    #[config(default = 0.01)]
    pub margin: f64,
}

impl SoftTripleLossConfig {
    fn checked(&self) -> MarginResult<usize> {
        class_sim::check_sizes(self.num_classes, self.embedding_dim)?;
        let k = crate::check::count("centers_per_class", self.centers_per_class, 1)?;
        crate::check::size("centers_per_class", self.num_classes.saturating_mul(k), crate::check::MAX_BATCH)?;
        crate::check::positive("la", self.la)?;
        crate::check::positive("gamma", self.gamma)?;
        crate::check::non_negative("margin", self.margin)?;
        Ok(self.num_classes * k)
    }

    fn build(&self, centers: Param<Tensor<2>>) -> SoftTripleLoss {
        SoftTripleLoss { centers, centers_per_class: self.centers_per_class, la: self.la, gamma: self.gamma, margin: self.margin }
    }

    /// Validates the configuration and builds the loss, its centres drawn from `rng`
    /// (`U(−1/√(C·K), 1/√(C·K))`, `f32`, on `device`).
    pub fn init(&self, rng: &mut dyn RngCore, device: &Device) -> MarginResult<SoftTripleLoss> {
        let m = self.checked()?;
        let bound = 1.0 / (m as f64).sqrt();
        Ok(self.build(class_sim::init_param(rng, Init::Uniform { bound }, m, self.embedding_dim, device)))
    }

    /// The loss with given centres (`[C·K, d]`, finite; their float type is the loss's).
    pub fn init_with(&self, centers: Tensor<2>) -> MarginResult<SoftTripleLoss> {
        let m = self.checked()?;
        Ok(self.build(class_sim::given_param("centers", centers, m, self.embedding_dim)?))
    }
}

/// The SoftTriple loss (see the module docs). A Burn `Module`: the trainer optimises
/// `centers` with the encoder.
#[derive(Module, Debug)]
pub struct SoftTripleLoss {
    /// `K` centres per class, `[C·K, d]`, class-major.
    pub centers: Param<Tensor<2>>,
    /// `K`.
    pub centers_per_class: usize,
    /// `λ`.
    pub la: f64,
    /// `γ`.
    pub gamma: f64,
    /// `δ`.
    pub margin: f64,
}

impl SoftTripleLoss {
    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.centers.val().dims()[0] / self.centers_per_class
    }

    /// The loss of a labelled batch, `Tuples::All` only (see the module docs for `ℓ_i`;
    /// `L = mean_i ℓ_i`).
    ///
    /// # Shapes
    /// - `embeddings`: `[B, d]`, `B` labels in `0..C` → loss `[1]`
    pub fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        let (x, labels) = labelled_rows("SoftTriple", batch, &tuples)?;
        let w = self.centers.val();
        let (c, k) = (self.num_classes(), self.centers_per_class);
        let classes = check_inputs(&x, labels, &w, "centers", c)?;
        let (s, host) = cosine_matrix(x, w);
        let b = host.rows;
        let inv_gamma = 1.0 / self.gamma;
        let mut grad = vec![0.0; b * c * k];
        let (mut q, mut sim, mut z, mut p, mut scaled) = (vec![0.0; c * k], vec![0.0; c], vec![0.0; c], vec![0.0; c], vec![0.0; k]);
        let (mut total, mut active) = (0.0, 0);
        let (mut ap, mut an) = (Vec::with_capacity(b), Vec::with_capacity(b * (c - 1)));
        for (i, &y) in classes.iter().enumerate() {
            let row = host.row(i);
            for cls in 0..c {
                let centres = &row[cls * k..(cls + 1) * k];
                scaled.iter_mut().zip(centres).for_each(|(v, &cos)| *v = cos * inv_gamma);
                let qc = &mut q[cls * k..(cls + 1) * k];
                log_softmax_into(&scaled, qc);
                sim[cls] = qc.iter().zip(centres).map(|(a, b)| a * b).sum();
                z[cls] = self.la * sim[cls];
            }
            z[y] -= self.la * self.margin;
            total += log_softmax_into(&z, &mut p) - z[y];
            for cls in 0..c {
                // ∂ℓ/∂S_ic = λ (p_c − [c = y]); ∂S_ic/∂c_ick = q_k (1 + (c_ick − S_ic)/γ).
                let g_s = self.la * (p[cls] - f64::from(u8::from(cls == y))) / b as f64;
                for kk in 0..k {
                    let j = cls * k + kk;
                    grad[i * c * k + j] = g_s * q[j] * (1.0 + inv_gamma * (row[j] - sim[cls]));
                }
                if cls != y {
                    active += usize::from(z[cls] >= z[y]);
                    an.push(sim[cls]);
                }
            }
            ap.push(sim[y]);
        }
        let value = total / b as f64;
        let stats = LossStats::new(value, &ap, &an, b * (c - 1), active);
        Ok(LossOutput::new(class_sim::attach(s, grad, value), stats))
    }
}

impl super::MetricLoss for SoftTripleLoss {
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        SoftTripleLoss::forward(self, batch, tuples)
    }
}
