//! Training configuration: every knob of a run, serialisable (the CLI reads it from TOML).

use serde::{Deserialize, Serialize};

use crate::miner_spec::MinerSpec;
use crate::device::DeviceSpec;
use margin::check;
use margin::MarginError;

pub use crate::loss_spec::{BuiltLoss, LossSpec};
pub(crate) use crate::loss_spec::validate_loss_and_miner;
use margin_data::ModelConfig;

type Result<T> = std::result::Result<T, MarginError>;

pub(crate) fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> MarginError {
    MarginError::InvalidConfig { field, value: value.to_string(), reason }
}

/// P×K batches: `classes_per_batch` classes, `samples_per_class` samples each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// P: classes per batch.
    pub classes_per_batch: usize,
    /// K: samples per class (drawn with replacement when a class has fewer).
    pub samples_per_class: usize,
    /// Batches per epoch; default: training samples / (P·K) (PML's `length_before_new_iter`).
    #[serde(default)]
    pub batches_per_epoch: Option<usize>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { classes_per_batch: 32, samples_per_class: 4, batches_per_epoch: None }
    }
}

/// Optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// Adam (PyTorch defaults: betas 0.9/0.999, eps 1e-8); L2 weight decay added to the gradient.
    Adam {
        /// Weight decay (L2).
        #[serde(default)]
        weight_decay: f64,
    },
    /// AdamW (decoupled weight decay).
    Adamw {
        /// Decoupled weight decay.
        #[serde(default = "default_adamw_wd")]
        weight_decay: f64,
    },
    /// SGD with momentum (PyTorch semantics: dampening 0).
    Sgd {
        /// Momentum.
        #[serde(default = "default_momentum")]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
        /// Weight decay (L2).
        #[serde(default)]
        weight_decay: f64,
    },
}

fn default_adamw_wd() -> f64 {
    1e-2
}
fn default_momentum() -> f64 {
    0.9
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec::Adam { weight_decay: 0.0 }
    }
}

/// Learning-rate schedule, evaluated per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Multiply by `gamma` every `step_epochs` epochs.
    Step {
        /// Period in epochs.
        step_epochs: usize,
        /// Factor.
        gamma: f64,
    },
    /// Cosine annealing from `lr` to `min_lr` over the run.
    Cosine {
        /// Final learning rate.
        #[serde(default)]
        min_lr: f64,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Constant
    }
}

impl Schedule {
    /// Learning rate at (0-based) `epoch` of `epochs` for base rate `lr`.
    pub fn lr(&self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { step_epochs, gamma } => lr * gamma.powi((epoch / step_epochs.max(1)) as i32),
            Schedule::Cosine { min_lr } => {
                let t = epoch as f64 / epochs.max(1) as f64;
                min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// Random image augmentation (images only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Maximum shift in pixels (each axis, uniform).
    #[serde(default = "default_shift")]
    pub max_shift: f64,
    /// Maximum rotation in degrees (uniform in ±).
    #[serde(default = "default_rotation")]
    pub max_rotation_deg: f64,
    /// Class augmentation: every training class also appears rotated by 90°, 180° and
    /// 270° as three new classes (Santoro et al. 2016, Vinyals et al. 2016), so an epoch
    /// is four times longer. Square images only; validation and test data are untouched.
    #[serde(default)]
    pub rotated_classes: bool,
    /// Photo augmentation after the shift/rotation (`[train.augment.photo]`: random
    /// resized crop, flip, colour jitter; [`crate::photo_augment`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<crate::photo_augment::PhotoAugment>,
}

fn default_shift() -> f64 {
    2.0
}
fn default_rotation() -> f64 {
    10.0
}

/// Everything the trainer needs besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of every random choice (initialisation, batches, mining, augmentation).
    #[serde(default)]
    pub seed: u64,
    /// Number of epochs.
    pub epochs: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Optimizer.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// The network.
    pub model: ModelConfig,
    /// The loss.
    #[serde(default)]
    pub loss: LossSpec,
    /// The miner.
    #[serde(default)]
    pub miner: MinerSpec,
    /// The batch sampler.
    #[serde(default)]
    pub sampler: SamplerConfig,
    /// Augmentation (off when absent).
    #[serde(default)]
    pub augment: Option<AugmentConfig>,
    /// Validate on the validation classes every this many epochs (0 = never);
    /// the best checkpoint by MAP@R is kept as `best/`.
    #[serde(default = "default_validate_every")]
    pub validate_every: usize,
    /// Samples per forward pass when embedding for validation/evaluation.
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
    /// The device to train and evaluate on (`cpu` when absent; `--device` overrides it).
    /// Not part of what a resume checks: a run may continue on another device.
    #[serde(default, skip_serializing_if = "DeviceSpec::is_cpu")]
    pub device: DeviceSpec,
}

fn default_validate_every() -> usize {
    1
}
fn default_eval_batch() -> usize {
    1024
}

impl TrainConfig {
    /// The bundled Omniglot default (ConvNet-4, 28×28).
    pub fn omniglot_default() -> Self {
        TrainConfig {
            seed: 0,
            epochs: 35,
            lr: 1e-3,
            schedule: Schedule::Constant,
            optimizer: OptimizerSpec::default(),
            model: ModelConfig::Convnet4 { width: 64, embedding_dim: 64, normalize: false },
            loss: LossSpec::default(),
            miner: MinerSpec::default(),
            sampler: SamplerConfig::default(),
            augment: None,
            validate_every: 5,
            eval_batch: 1024,
            device: DeviceSpec::Cpu,
        }
    }

    /// Checks every field, naming the first bad one (as the TOML spells it: `train.lr`),
    /// with margin's one validator per concept ([`margin::check`]).
    pub fn validate(&self) -> Result<()> {
        check::count("train.epochs", self.epochs, 1)?;
        check::positive("train.lr", self.lr)?;
        self.validate_sizes()?;
        check::count("train.eval_batch", self.eval_batch, 1)?;
        match self.schedule {
            Schedule::Step { step_epochs, gamma } => {
                check::count("train.schedule.step_epochs", step_epochs, 1)?;
                check::positive("train.schedule.gamma", gamma)?;
            }
            Schedule::Cosine { min_lr } if !(min_lr.is_finite() && min_lr >= 0.0 && min_lr <= self.lr) => {
                return Err(invalid("train.schedule.min_lr", min_lr, "must be in [0, train.lr]"));
            }
            _ => {}
        }
        let wd = match self.optimizer {
            OptimizerSpec::Adam { weight_decay } | OptimizerSpec::Adamw { weight_decay } => weight_decay,
            OptimizerSpec::Sgd { momentum, weight_decay, .. } => {
                check::fraction("train.optimizer.momentum", momentum)?;
                weight_decay
            }
        };
        check::non_negative("train.optimizer.weight_decay", wd)?;
        if let Some(a) = self.augment {
            check::non_negative("train.augment.max_shift", a.max_shift)?;
            check::non_negative("train.augment.max_rotation_deg", a.max_rotation_deg)?;
            if let Some(p) = a.photo
                && let Err(reason) = p.validate()
            {
                return Err(MarginError::InvalidConfig { field: "train.augment.photo", value: format!("{p:?}"), reason }.into());
            }
        }
        self.validate_loss()?;
        self.miner.build(self.loss.distance())?;
        Ok(())
    }

    /// Sizes: the sampler's and the model's, each against a sanity bound (a typo such as
    /// `embedding_dim = 1e11` is refused before anything is allocated) and the batch
    /// `P × K` against [`check::MAX_BATCH`].
    fn validate_sizes(&self) -> Result<()> {
        validate_sampler(&self.sampler)?;
        check::size("train.eval_batch", self.eval_batch, check::MAX_BATCH)?;
        match &self.model {
            ModelConfig::Mlp { hidden, embedding_dim, .. } => {
                check::size("train.model.embedding_dim", *embedding_dim, check::MAX_DIM)?;
                for &h in hidden {
                    check::size("train.model.hidden", h, check::MAX_DIM)?;
                }
            }
            ModelConfig::Convnet4 { width, embedding_dim, .. } => {
                check::size("train.model.embedding_dim", *embedding_dim, check::MAX_DIM)?;
                check::size("train.model.width", *width, check::MAX_CHANNELS)?;
            }
            ModelConfig::Resnet(r) => {
                check::size("train.model.head.embedding_dim", r.head.embedding_dim, check::MAX_DIM)?;
            }
        }
        Ok(())
    }

    /// The loss's parameters, and its margins against the range of its distance
    /// ([`check::margin`], [`check::threshold`]: a margin past what normalised embeddings
    /// can reach keeps every tuple active forever).
    fn validate_loss(&self) -> Result<()> {
        validate_loss_and_miner(&self.loss, &self.miner)
    }
}

/// The sampler's sizes: P ≥ 2, K ≥ 2, each and `P × K` within [`check::MAX_BATCH`].
pub(crate) fn validate_sampler(s: &SamplerConfig) -> Result<()> {
    if s.classes_per_batch < 2 {
        return Err(invalid("train.sampler.classes_per_batch", s.classes_per_batch, "need at least 2 classes per batch for negatives"));
    }
    if s.samples_per_class < 2 {
        return Err(invalid("train.sampler.samples_per_class", s.samples_per_class, "need at least 2 samples per class for positives"));
    }
    check::size("train.sampler.classes_per_batch", s.classes_per_batch, check::MAX_BATCH)?;
    check::size("train.sampler.samples_per_class", s.samples_per_class, check::MAX_BATCH)?;
    let batch = s.classes_per_batch.checked_mul(s.samples_per_class).unwrap_or(usize::MAX);
    if batch > check::MAX_BATCH {
        return Err(MarginError::InvalidConfig {
            field: "train.sampler (classes_per_batch × samples_per_class)",
            value: format!("{} × {} (the largest batch accepted is {})", s.classes_per_batch, s.samples_per_class, check::MAX_BATCH),
            reason: "is too large",
        });
    }
    if let Some(b) = s.batches_per_epoch {
        check::count("train.sampler.batches_per_epoch", b, 1)?;
    }
    Ok(())
}

/// Checks the sections of a whole run configuration that are not the trainer's, before
/// anything runs (a bad `eval.max_pairs` used to surface only after training).
pub fn validate_run(cfg: &margin_data::RunConfig<TrainConfig>) -> Result<()> {
    cfg.train.validate()?;
    // margin-eval samples at least one genuine and one impostor pair.
    check::count("eval.max_pairs", cfg.eval.max_pairs, 2)?;
    let sp = &cfg.split;
    check::fraction("split.val_fraction", sp.val_fraction)?;
    check::fraction("split.test_fraction", sp.test_fraction)?;
    if let Some(f) = sp.calibration_fraction {
        check::fraction("split.calibration_fraction", f)?;
    }
    if sp.val_fraction + sp.test_fraction >= 1.0 {
        return Err(MarginError::InvalidConfig {
            field: "split.val_fraction + split.test_fraction",
            value: format!("{} + {}", sp.val_fraction, sp.test_fraction),
            reason: "must be < 1: no class would be left to train on",
        });
    }
    Ok(())
}
