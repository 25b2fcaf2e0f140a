//! Proxy-NCA loss (Movshovitz-Attias et al. 2017, "No Fuss Distance Metric Learning using
//! Proxies", ICCV, arXiv:1703.07464), with the semantics and defaults of
//! pytorch-metric-learning 2.9's `ProxyNCALoss` (golden values in `tests/param_losses.rs`).
//!
//! One proxy `p_c` per class. PML's distance is the squared Euclidean distance between
//! L2-normalised rows, `d²_ic = ‖x̂_i − p̂_c‖² = 2 − 2 c_ic` with `c_ic = cos(x_i, p_c)` (one
//! GEMM); with the softmax scale `σ` (PML's default 1) every row's loss is NCA's
//!
//! `ℓ_i = −log( exp(−σ d²_iy) / Σ_c exp(−σ d²_ic) )`,
//!
//! and the loss is their mean (PML's `MeanReducer`). Computed in log space, so a row whose
//! own proxy is far gets a large finite loss; PML instead drops a row whose softmax
//! probability underflows to 0 (only past `exp(−745)` in f64 — never at `σ ≤ 100` between
//! normalised rows, where `σ d²` is at most `4σ`).
//!
//! Statistics: the tuples are the `(row, other proxy)` pairs, active when the other proxy is
//! at least as near as the row's own (`d²_ic ≤ d²_iy`); the mean distances are the mean
//! squared distances to the own and to the other proxies.
//!
//! Parameters: the proxies, `[C, d]` (PML's layout), drawn `N(0, 1)` as PML's default.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use rand::RngCore;

use super::class_sim::{self, Init, check_inputs, cosine_matrix, labelled_rows, log_softmax_into};
use super::{LossOutput, LossStats};
use crate::error::Result as MarginResult;
use crate::{Batch, Tuples};

/// Proxy-NCA's configuration (PML's `ProxyNCALoss` defaults).
#[derive(Config, Debug)]
pub struct ProxyNcaLossConfig {
    /// Number of classes `C` (labels are `0..C`).
    pub num_classes: usize,
    /// Embedding dimension `d`.
    pub embedding_dim: usize,
    /// The softmax scale `σ` (> 0) multiplying the negated squared distances.
    #[config(default = 1.0)]
    pub softmax_scale: f64,
}

impl ProxyNcaLossConfig {
    fn checked(&self) -> MarginResult<()> {
        class_sim::check_sizes(self.num_classes, self.embedding_dim)?;
        crate::check::positive("softmax_scale", self.softmax_scale)?;
        Ok(())
    }

    /// Validates the configuration and builds the loss, its proxies drawn from `rng`
    /// (`N(0, 1)`, `f32`, on `device`).
    pub fn init(&self, rng: &mut dyn RngCore, device: &Device) -> MarginResult<ProxyNcaLoss> {
        self.checked()?;
        let proxies = class_sim::init_param(rng, Init::Normal { std: 1.0 }, self.num_classes, self.embedding_dim, device);
        Ok(ProxyNcaLoss { proxies, softmax_scale: self.softmax_scale })
    }

    /// The loss with given proxies (`[C, d]`, finite; their float type is the loss's).
    pub fn init_with(&self, proxies: Tensor<2>) -> MarginResult<ProxyNcaLoss> {
        self.checked()?;
        let proxies = class_sim::given_param("proxies", proxies, self.num_classes, self.embedding_dim)?;
        Ok(ProxyNcaLoss { proxies, softmax_scale: self.softmax_scale })
    }
}

/// The Proxy-NCA loss (see the module docs). A Burn `Module`: the trainer optimises
/// `proxies` with the encoder.
#[derive(Module, Debug)]
pub struct ProxyNcaLoss {
    /// One proxy per class, `[C, d]`.
    pub proxies: Param<Tensor<2>>,
    /// The softmax scale `σ`.
    pub softmax_scale: f64,
}

impl ProxyNcaLoss {
    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.proxies.val().dims()[0]
    }

    /// The loss of a labelled batch, `Tuples::All` only.
    ///
    /// `ℓ_i = log Σ_c exp(−σ d²_ic) + σ d²_iy`, `d²_ic = 2 − 2 cos(x_i, p_c)`, `L = mean_i ℓ_i`.
    ///
    /// # Shapes
    /// - `embeddings`: `[B, d]`, `B` labels in `0..C` → loss `[1]`
    pub fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        let (x, labels) = labelled_rows("Proxy-NCA", batch, &tuples)?;
        let p = self.proxies.val();
        let classes = check_inputs(&x, labels, &p, "proxies", self.num_classes())?;
        let (s, host) = cosine_matrix(x, p);
        let (b, c) = (host.rows, host.cols);
        let sigma = self.softmax_scale;
        let (mut grad, mut z, mut prob) = (vec![0.0; b * c], vec![0.0; c], vec![0.0; c]);
        let (mut total, mut active) = (0.0, 0);
        let (mut ap, mut an) = (Vec::with_capacity(b), Vec::with_capacity(b * (c - 1)));
        for (i, &y) in classes.iter().enumerate() {
            let row = host.row(i);
            z.iter_mut().zip(row).for_each(|(zc, &cos)| *zc = -sigma * (2.0 - 2.0 * cos));
            total += log_softmax_into(&z, &mut prob) - z[y];
            let g = &mut grad[i * c..(i + 1) * c];
            for k in 0..c {
                // ∂z_k/∂c_ik = 2σ.
                g[k] = 2.0 * sigma * (prob[k] - f64::from(u8::from(k == y))) / b as f64;
                if k != y {
                    active += usize::from(z[k] >= z[y]);
                    an.push(2.0 - 2.0 * row[k]);
                }
            }
            ap.push(2.0 - 2.0 * row[y]);
        }
        let value = total / b as f64;
        let stats = LossStats::new(value, &ap, &an, b * (c - 1), active);
        Ok(LossOutput::new(class_sim::attach(s, grad, value), stats))
    }
}

impl super::MetricLoss for ProxyNcaLoss {
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        ProxyNcaLoss::forward(self, batch, tuples)
    }
}
