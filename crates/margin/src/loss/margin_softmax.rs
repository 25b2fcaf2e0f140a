//! Margin-softmax losses: ArcFace (Deng et al. 2019, "ArcFace: Additive Angular Margin Loss
//! for Deep Face Recognition", arXiv:1801.07698), CosFace (Wang et al. 2018, "CosFace: Large
//! Margin Cosine Loss for Deep Face Recognition", arXiv:1801.09414) and the normalised
//! softmax (Zhai & Wu 2019, "Classification is a Strong Baseline for Deep Metric Learning",
//! arXiv:1811.12649) — one core, [`MarginSoftmaxLoss`], with the semantics and defaults of
//! pytorch-metric-learning 2.9's `ArcFaceLoss`, `CosFaceLoss` and `NormalizedSoftmaxLoss`
//! (golden values in `tests/param_losses.rs`).
//!
//! With `c_ij = cos(x_i, w_j)` (both L2-normalised; one GEMM), `y_i` the row's class and
//! `s` the scale, every row's loss is the cross-entropy of the logits
//!
//! `z_ij = s · c_ij` (`j ≠ y_i`),  `z_iy = s · f(c_iy)`,  `ℓ_i = log Σ_j exp(z_ij) − z_iy`,
//!
//! and the loss is their mean (PML's `MeanReducer`). The target margin `f`:
//! - ArcFace: `f(c) = cos(θ + m)` with `θ = arccos c`, when `θ ≤ π − m`; else
//!   `c − m · sin m` (PML's branch that keeps `f` decreasing in `θ`). PML takes `m` in
//!   degrees (default 28.6°, i.e. 0.5 rad) and `s = 64`.
//! - CosFace: `f(c) = c − m`, PML's `m = 0.35`, `s = 64`.
//! - Normalised softmax: `f(c) = c`, `s = 1/τ`, PML's `τ = 0.05`.
//!
//! `∂f/∂c` of ArcFace is `sin(θ + m) / sin θ`, unbounded as `θ → 0`: `sin θ` is floored at
//! [`MIN_SIN`] (PML's gradient there is `inf`/NaN). A cosine past ±1 by rounding is clamped,
//! with gradient 0 as PML's `clamp`.
//!
//! Statistics: the tuples are the `(row, other class)` pairs, active when the other class's
//! logit reaches the target's (`z_ij ≥ z_iy`: the margin constraint is violated); the mean
//! "distances" are the mean target and non-target cosine similarities.
//!
//! Parameters: the class weights `W`, `[C, d]` (PML stores `W` as `[d, C]`: the transpose),
//! drawn `N(0, 1)` as PML's default `normal_` initialiser.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use rand::RngCore;

use super::class_sim::{self, Init, check_inputs, cosine_matrix, labelled_rows, log_softmax_into};
use super::{LossOutput, LossStats};
use crate::error::{MarginError, Result as MarginResult};
use crate::{Batch, Tuples};

/// Floor of `sin θ` in ArcFace's `∂f/∂c = sin(θ + m) / sin θ`.
pub const MIN_SIN: f64 = 1e-6;

/// How the target class's cosine is changed before scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetMargin {
    /// None (normalised softmax).
    None,
    /// `c − m` (CosFace), `m` in cosine units.
    Cosine(f64),
    /// `cos(arccos c + m)` (ArcFace), `m` in radians.
    Angular(f64),
}

impl TargetMargin {
    /// `f(c)` and `∂f/∂c`.
    pub fn apply(self, c: f64) -> (f64, f64) {
        let inside = if (-1.0..=1.0).contains(&c) { 1.0 } else { 0.0 };
        match self {
            TargetMargin::None => (c, 1.0),
            TargetMargin::Cosine(m) => (c - m, 1.0),
            TargetMargin::Angular(m) => {
                let c = c.clamp(-1.0, 1.0);
                let theta = c.acos();
                if theta <= std::f64::consts::PI - m {
                    ((theta + m).cos(), inside * (theta + m).sin() / theta.sin().max(MIN_SIN))
                } else {
                    (c - m * m.sin(), inside)
                }
            }
        }
    }
}

/// ArcFace's configuration (PML's `ArcFaceLoss` defaults).
#[derive(Config, Debug)]
pub struct ArcFaceLossConfig {
    /// Number of classes `C` (labels are `0..C`).
    pub num_classes: usize,
    /// Embedding dimension `d`.
    pub embedding_dim: usize,
    /// The additive angular margin, in degrees (PML: 28.6°, i.e. 0.5 rad), in `[0, 180)`.
    #[config(default = 28.6)]
    pub margin_degrees: f64,
    /// The scale `s` (> 0).
    #[config(default = 64.0)]
    pub scale: f64,
}

/// CosFace's configuration (PML's `CosFaceLoss` defaults).
#[derive(Config, Debug)]
pub struct CosFaceLossConfig {
    /// Number of classes `C` (labels are `0..C`).
    pub num_classes: usize,
    /// Embedding dimension `d`.
    pub embedding_dim: usize,
    /// The additive cosine margin, in cosine units, in `[0, 2]`.
    #[config(default = 0.35)]
    pub margin: f64,
    /// The scale `s` (> 0).
    #[config(default = 64.0)]
    pub scale: f64,
}

/// The normalised softmax's configuration (PML's `NormalizedSoftmaxLoss` defaults).
#[derive(Config, Debug)]
pub struct NormalizedSoftmaxLossConfig {
    /// Number of classes `C` (labels are `0..C`).
    pub num_classes: usize,
    /// Embedding dimension `d`.
    pub embedding_dim: usize,
    /// The temperature `τ` (> 0): the logits are `cos / τ`.
    #[config(default = 0.05)]
    pub temperature: f64,
}

macro_rules! margin_softmax_init {
    ($config:ty) => {
        impl $config {
            /// Validates the configuration and builds the loss, its weights drawn from `rng`
            /// (`N(0, 1)`, `f32`, on `device`).
            pub fn init(&self, rng: &mut dyn RngCore, device: &Device) -> MarginResult<MarginSoftmaxLoss> {
                let (margin, scale) = self.checked()?;
                let weights = class_sim::init_param(rng, Init::Normal { std: 1.0 }, self.num_classes, self.embedding_dim, device);
                Ok(MarginSoftmaxLoss { weights, margin, scale })
            }

            /// The loss with given class weights (`[C, d]`, finite; their float type is the loss's).
            pub fn init_with(&self, weights: Tensor<2>) -> MarginResult<MarginSoftmaxLoss> {
                let (margin, scale) = self.checked()?;
                let weights = class_sim::given_param("class weights", weights, self.num_classes, self.embedding_dim)?;
                Ok(MarginSoftmaxLoss { weights, margin, scale })
            }
        }
    };
}

margin_softmax_init!(ArcFaceLossConfig);
margin_softmax_init!(CosFaceLossConfig);
margin_softmax_init!(NormalizedSoftmaxLossConfig);

impl ArcFaceLossConfig {
    fn checked(&self) -> MarginResult<(TargetMargin, f64)> {
        class_sim::check_sizes(self.num_classes, self.embedding_dim)?;
        crate::check::non_negative("margin_degrees", self.margin_degrees)?;
        if self.margin_degrees >= 180.0 {
            return Err(MarginError::InvalidConfig { field: "margin_degrees", value: self.margin_degrees.to_string(), reason: "an angular margin must be below 180 degrees" });
        }
        Ok((TargetMargin::Angular(self.margin_degrees.to_radians()), crate::check::positive("scale", self.scale)?))
    }
}

impl CosFaceLossConfig {
    fn checked(&self) -> MarginResult<(TargetMargin, f64)> {
        class_sim::check_sizes(self.num_classes, self.embedding_dim)?;
        crate::check::non_negative("margin", self.margin)?;
        if self.margin > 2.0 {
            return Err(MarginError::InvalidConfig { field: "margin", value: self.margin.to_string(), reason: "a cosine margin past 2 (the range of the cosine) is never met" });
        }
        Ok((TargetMargin::Cosine(self.margin), crate::check::positive("scale", self.scale)?))
    }
}

impl NormalizedSoftmaxLossConfig {
    fn checked(&self) -> MarginResult<(TargetMargin, f64)> {
        class_sim::check_sizes(self.num_classes, self.embedding_dim)?;
        Ok((TargetMargin::None, 1.0 / crate::check::positive("temperature", self.temperature)?))
    }
}

/// ArcFace, CosFace or the normalised softmax (see the module docs): class weights and a
/// target margin. A Burn `Module`: the trainer optimises `weights` with the encoder.
#[derive(Module, Debug)]
pub struct MarginSoftmaxLoss {
    /// The class weights `W`, `[C, d]`.
    pub weights: Param<Tensor<2>>,
    /// The target margin.
    #[module(skip)]
    pub margin: TargetMargin,
    /// The scale `s` (`1/τ` for the normalised softmax).
    pub scale: f64,
}

impl MarginSoftmaxLoss {
    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.weights.val().dims()[0]
    }

    /// The loss of a labelled batch, `Tuples::All` only (see the module docs).
    ///
    /// `ℓ_i = log Σ_j exp(z_ij) − z_iy`, `z_ij = s · c_ij`, `z_iy = s · f(c_iy)`, `L = mean_i ℓ_i`.
    ///
    /// # Shapes
    /// - `embeddings`: `[B, d]`, `B` labels in `0..C` → loss `[1]`
    pub fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        let (x, labels) = labelled_rows("a margin-softmax loss", batch, &tuples)?;
        let w = self.weights.val();
        let classes = check_inputs(&x, labels, &w, "class weights", self.num_classes())?;
        let (s, host) = cosine_matrix(x, w);
        let (b, c) = (host.rows, host.cols);
        let (mut grad, mut z, mut p) = (vec![0.0; b * c], vec![0.0; c], vec![0.0; c]);
        let (mut total, mut active) = (0.0, 0);
        let (mut ap, mut an) = (Vec::with_capacity(b), Vec::with_capacity(b * (c - 1)));
        for (i, &y) in classes.iter().enumerate() {
            let row = host.row(i);
            let (f, df) = self.margin.apply(row[y]);
            z.iter_mut().zip(row).for_each(|(zj, &cj)| *zj = self.scale * cj);
            z[y] = self.scale * f;
            total += log_softmax_into(&z, &mut p) - z[y];
            let g = &mut grad[i * c..(i + 1) * c];
            for j in 0..c {
                g[j] = self.scale * p[j] / b as f64;
                if j != y {
                    active += usize::from(z[j] >= z[y]);
                    an.push(row[j]);
                }
            }
            g[y] = self.scale * (p[y] - 1.0) * df / b as f64;
            ap.push(row[y]);
        }
        let value = total / b as f64;
        let stats = LossStats::new(value, &ap, &an, b * (c - 1), active);
        Ok(LossOutput::new(class_sim::attach(s, grad, value), stats))
    }
}

impl super::MetricLoss for MarginSoftmaxLoss {
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        MarginSoftmaxLoss::forward(self, batch, tuples)
    }
}
