//! Training the losses with per-class parameters (ArcFace, CosFace, normalised softmax,
//! Proxy-Anchor, Proxy-NCA, SoftTriple: `margin`'s Burn Modules) together with the encoder.
//!
//! Kept apart from the trainer so the trainer only asks three things: the loss for a step
//! ([`TrainedLoss::forward`]), the update after it ([`TrainedLoss::step`]), and its files in a
//! checkpoint ([`TrainedLoss::files`], [`TrainedLoss::restore`]).
//!
//! - **Classes.** The parameters are per class, indexed `0..C`: the training set's labels
//!   (indices into a class table that may also hold other splits' classes) are mapped to
//!   their rank among the training set's distinct labels ([`ClassMap`]), so `C` is the number
//!   of training classes (after `rotated_classes`).
//! - **Optimiser.** The parameters have their own optimiser (the run's kind and settings)
//!   and their own learning rate `train.loss.lr` (default `train.lr`), scaled by the
//!   encoder's schedule: at every step it is `schedule(lr_encoder) · lr / train.lr`.
//! - **Initialisation** is seeded from the run's seed (a stream of its own), so a fresh run
//!   is reproducible.
//! - **Checkpoints** hold `loss.bpk` (the parameters) and `loss_optimizer.bpk` beside the
//!   model's. The module is built when the training set is known (at `fit`, [`LossState`]):
//!   a fresh run draws it, a resumed one rebuilds it for the same classes and loads both
//!   files — a resumed run equals an uninterrupted one.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use margin::{
    ArcFaceLossConfig, CosFaceLossConfig, MarginError, MarginSoftmaxLoss, MetricLoss, NormalizedSoftmaxLossConfig, ProxyAnchorLoss,
    ProxyAnchorLossConfig, ProxyNcaLoss, ProxyNcaLossConfig, SoftTripleLoss, SoftTripleLossConfig,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{LossSpec, TrainConfig};

type Result<T> = std::result::Result<T, MarginError>;

/// The checkpoint file of the loss's parameters.
pub const PARAMS_FILE: &str = "loss.bpk";
/// The checkpoint file of their optimiser state.
pub const OPTIM_FILE: &str = "loss_optimizer.bpk";

/// One of the losses with per-class parameters.
#[derive(Module, Debug)]
pub enum ParamLoss {
    /// ArcFace, CosFace or the normalised softmax.
    MarginSoftmax(MarginSoftmaxLoss),
    /// Proxy-Anchor.
    ProxyAnchor(ProxyAnchorLoss),
    /// Proxy-NCA.
    ProxyNca(ProxyNcaLoss),
    /// SoftTriple.
    SoftTriple(SoftTripleLoss),
}

/// Placeholder sizes for validating a configuration before the data is read.
const ANY: usize = 1;

/// Checks a parametric loss's options (the class count and dimension are checked at init).
pub fn validate(spec: &LossSpec) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    ParamLoss::init(spec, ANY, ANY, &mut rng, &Device::flex()).map(|_| ())
}

/// Where a loss's parameters come from.
enum Source<'a> {
    /// Drawn from `rng` (PML's initialiser of the loss, `f32`) on a device.
    Draw(&'a mut ChaCha8Rng, &'a Device),
    /// Given values (`[C·K, d]`; their float type and device are the loss's).
    Given(Tensor<2>),
}

/// `$cfg.init(rng, device)` or `$cfg.init_with(values)`, as `$src` says.
macro_rules! build {
    ($cfg:expr, $src:expr) => {
        match $src {
            Source::Draw(rng, device) => $cfg.init(rng, device),
            Source::Given(values) => $cfg.init_with(values),
        }
    };
}

impl ParamLoss {
    /// The loss `spec` names for `num_classes` classes of `embedding_dim`, its parameters
    /// drawn from `rng` on `device`. An error for a stateless `spec`.
    pub fn init(spec: &LossSpec, num_classes: usize, embedding_dim: usize, rng: &mut ChaCha8Rng, device: &Device) -> Result<Self> {
        Self::build(spec, num_classes, embedding_dim, Source::Draw(rng, device))
    }

    /// The loss `spec` names for `num_classes` classes of `embedding_dim` with given
    /// parameters (`[C·K, d]` rows, [`rows_per_class`] `K`; finite; their float type and
    /// device are the loss's). A shape other than the configuration's is an error naming both.
    pub fn init_with(spec: &LossSpec, num_classes: usize, embedding_dim: usize, params: Tensor<2>) -> Result<Self> {
        Self::build(spec, num_classes, embedding_dim, Source::Given(params))
    }

    fn build(spec: &LossSpec, num_classes: usize, embedding_dim: usize, src: Source<'_>) -> Result<Self> {
        let (c, d) = (num_classes, embedding_dim);
        Ok(match *spec {
            LossSpec::Arcface { margin_degrees, scale, .. } => {
                ParamLoss::MarginSoftmax(build!(ArcFaceLossConfig::new(c, d).with_margin_degrees(margin_degrees).with_scale(scale), src)?)
            }
            LossSpec::Cosface { margin, scale, .. } => ParamLoss::MarginSoftmax(build!(CosFaceLossConfig::new(c, d).with_margin(margin).with_scale(scale), src)?),
            LossSpec::NormalizedSoftmax { temperature, .. } => {
                ParamLoss::MarginSoftmax(build!(NormalizedSoftmaxLossConfig::new(c, d).with_temperature(temperature), src)?)
            }
            LossSpec::ProxyAnchor { margin, alpha, .. } => ParamLoss::ProxyAnchor(build!(ProxyAnchorLossConfig::new(c, d).with_margin(margin).with_alpha(alpha), src)?),
            LossSpec::ProxyNca { softmax_scale, .. } => ParamLoss::ProxyNca(build!(ProxyNcaLossConfig::new(c, d).with_softmax_scale(softmax_scale), src)?),
            LossSpec::SoftTriple { centers_per_class, la, gamma, margin, .. } => ParamLoss::SoftTriple(build!(
                SoftTripleLossConfig::new(c, d).with_centers_per_class(centers_per_class).with_la(la).with_gamma(gamma).with_margin(margin),
                src
            )?),
            LossSpec::Triplet { .. } | LossSpec::Contrastive { .. } | LossSpec::InfoNce { .. } => {
                return Err(MarginError::Unsupported("a triplet or contrastive loss has no class parameters".into()));
            }
        })
    }

    /// The parameter tensor (`[C·K, d]`; on the graph when the loss's device is autodiff).
    pub fn params(&self) -> Tensor<2> {
        match self {
            ParamLoss::MarginSoftmax(l) => l.weights.val(),
            ParamLoss::ProxyAnchor(l) => l.proxies.val(),
            ParamLoss::ProxyNca(l) => l.proxies.val(),
            ParamLoss::SoftTriple(l) => l.centers.val(),
        }
    }

    /// The loss behind the one entry point.
    pub fn as_metric(&self) -> &dyn MetricLoss {
        match self {
            ParamLoss::MarginSoftmax(l) => l,
            ParamLoss::ProxyAnchor(l) => l,
            ParamLoss::ProxyNca(l) => l,
            ParamLoss::SoftTriple(l) => l,
        }
    }

    /// The parameter tensor's host values (row-major).
    pub fn param_values(&self) -> Vec<f64> {
        margin::to_host(&self.params())
    }
}

/// Parameter rows per class of a parametric `spec`: SoftTriple's `centers_per_class`, else 1.
pub fn rows_per_class(spec: &LossSpec) -> usize {
    match *spec {
        LossSpec::SoftTriple { centers_per_class, .. } => centers_per_class,
        _ => 1,
    }
}

/// What a parametric `spec`'s parameters are called (PML's names): class weights, proxies
/// or centres; `None` for a stateless loss.
pub fn params_name(spec: &LossSpec) -> Option<&'static str> {
    match spec {
        LossSpec::Arcface { .. } | LossSpec::Cosface { .. } | LossSpec::NormalizedSoftmax { .. } => Some("class weights"),
        LossSpec::ProxyAnchor { .. } | LossSpec::ProxyNca { .. } => Some("proxies"),
        LossSpec::SoftTriple { .. } => Some("centers"),
        LossSpec::Triplet { .. } | LossSpec::Contrastive { .. } | LossSpec::InfoNce { .. } => None,
    }
}

/// The number of parameters `spec` holds for `num_classes` classes of `embedding_dim`
/// (`C · K · d`; 0 for a stateless loss), counted without building it (the memory budget's
/// figure; tested equal to the built module's).
pub fn parameter_count(spec: &LossSpec, num_classes: usize, embedding_dim: usize) -> u64 {
    if !spec.is_parametric() {
        return 0;
    }
    (num_classes as u64).saturating_mul(rows_per_class(spec) as u64).saturating_mul(embedding_dim as u64)
}

/// The training set's labels as class indices `0..C`: each label's rank among the distinct
/// labels (sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMap {
    distinct: Vec<i64>,
}

impl ClassMap {
    /// The map of a training set's labels.
    pub fn of(labels: &[i64]) -> Self {
        let mut distinct = labels.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        ClassMap { distinct }
    }

    /// `C`.
    pub fn len(&self) -> usize {
        self.distinct.len()
    }

    /// Whether there is no class.
    pub fn is_empty(&self) -> bool {
        self.distinct.is_empty()
    }

    /// The class indices of `labels` (a label outside the training set maps past `C`, which
    /// the loss refuses, naming it).
    pub fn map(&self, labels: &[i64]) -> Vec<i64> {
        labels.iter().map(|l| self.distinct.binary_search(l).map_or(self.len() as i64, |i| i as i64)).collect()
    }
}

/// The loss a fresh run of `config` starts from, for `num_classes` training classes: its
/// parameters drawn from a stream of the run's seed of their own.
pub fn init_for_run(config: &TrainConfig, num_classes: usize, embedding_dim: usize, device: &Device) -> Result<ParamLoss> {
    init_seeded(&config.loss, config.seed, num_classes, embedding_dim, device)
}

/// The loss `spec` names, its parameters drawn as a run seeded `seed` draws them
/// ([`margin::param_rng`]): what `margin loss --seed` computes with.
pub fn init_seeded(spec: &LossSpec, seed: u64, num_classes: usize, embedding_dim: usize, device: &Device) -> Result<ParamLoss> {
    let mut rng = margin::param_rng(seed);
    ParamLoss::init(spec, num_classes, embedding_dim, &mut rng, device)
}

/// The loss's module, its optimiser and learning-rate ratio, and the gradients of the step
/// in flight.
pub struct TrainedLoss {
    /// The loss.
    pub loss: ParamLoss,
    optim: ModuleOptimizer,
    /// `train.loss.lr / train.lr`.
    lr_ratio: f64,
    /// The class map of the training set.
    pub classes: ClassMap,
    pending: Option<GradientsParams>,
}

/// The spec's own learning rate, if any.
fn own_lr(spec: &LossSpec) -> Option<f64> {
    match *spec {
        LossSpec::Arcface { lr, .. }
        | LossSpec::Cosface { lr, .. }
        | LossSpec::NormalizedSoftmax { lr, .. }
        | LossSpec::ProxyAnchor { lr, .. }
        | LossSpec::ProxyNca { lr, .. }
        | LossSpec::SoftTriple { lr, .. } => lr,
        LossSpec::Triplet { .. } | LossSpec::Contrastive { .. } | LossSpec::InfoNce { .. } => None,
    }
}

/// `train.loss.lr` checked (> 0, finite) when given.
pub fn validate_lr(spec: &LossSpec) -> Result<()> {
    if let Some(lr) = own_lr(spec) {
        margin::check::positive("train.loss.lr", lr)?;
    }
    Ok(())
}

impl TrainedLoss {
    /// A fresh loss for the training labels `labels` and embeddings of `embedding_dim`, its
    /// parameters drawn from the run's seed.
    pub fn fresh(config: &TrainConfig, labels: &[i64], embedding_dim: usize, optim: ModuleOptimizer, device: &Device) -> Result<Self> {
        let classes = ClassMap::of(labels);
        let loss = init_for_run(config, classes.len(), embedding_dim, device)?;
        Ok(Self::with(config, loss, classes, optim))
    }

    fn with(config: &TrainConfig, loss: ParamLoss, classes: ClassMap, optim: ModuleOptimizer) -> Self {
        let lr_ratio = own_lr(&config.loss).map_or(1.0, |lr| lr / config.lr);
        TrainedLoss { loss, optim, lr_ratio, classes, pending: None }
    }

    /// Takes this loss's gradients out of a step's gradients (before the encoder's are taken).
    pub fn take_grads(&mut self, grads: &mut burn::tensor::Gradients) {
        self.pending = Some(GradientsParams::from_module(grads, &self.loss));
    }

    /// Applies the step's gradients at the encoder's learning rate `lr` (scaled by the ratio).
    pub fn step(&mut self, lr: f64) {
        if let Some(grads) = self.pending.take() {
            let loss = std::mem::replace(&mut self.loss, placeholder());
            self.loss = self.optim.step(burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate::from(lr * self.lr_ratio), loss, grads);
        }
    }

    /// The checkpoint files: the parameters and the optimiser state.
    pub fn files(&self) -> std::result::Result<Vec<(&'static str, Vec<u8>)>, String> {
        let params = self.loss.clone().into_record().into_bytes().map_err(|e| e.to_string())?;
        let optim = self.optim.into_bytes().map_err(|e| e.to_string())?;
        Ok(vec![(PARAMS_FILE, params.to_vec()), (OPTIM_FILE, optim.to_vec())])
    }

    /// The loss of a checkpoint: rebuilt for `classes` and `embedding_dim`, then the stored
    /// parameters and optimiser state loaded (`params`, `optim`: the two files' bytes).
    /// An error is the file that did not load and why.
    pub fn restore(
        config: &TrainConfig,
        classes: ClassMap,
        embedding_dim: usize,
        params: Vec<u8>,
        optim_bytes: Vec<u8>,
        optim: ModuleOptimizer,
        device: &Device,
    ) -> std::result::Result<Self, (&'static str, String)> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let skeleton = ParamLoss::init(&config.loss, classes.len(), embedding_dim, &mut rng, device).map_err(|e| (PARAMS_FILE, e.to_string()))?;
        let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(params)).map_err(|e| (PARAMS_FILE, e.to_string()))?;
        let loss = skeleton
            .try_load_record(record)
            .map_err(|e| (PARAMS_FILE, format!("{e} (the loss's parameters for {} training classes do not load)", classes.len())))?;
        let optim = optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(optim_bytes)).map_err(|e| (OPTIM_FILE, e.to_string()))?;
        Ok(Self::with(config, loss, classes, optim))
    }
}

/// An empty stand-in while the optimiser owns the module.
fn placeholder() -> ParamLoss {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    ParamLoss::init(&LossSpec::ProxyNca { softmax_scale: 1.0, lr: None }, 1, 1, &mut rng, &Device::flex()).expect("a valid loss")
}

/// The embedding dimension a model configuration produces.
pub fn embedding_dim(model: &margin_data::ModelConfig) -> usize {
    match model {
        margin_data::ModelConfig::Mlp { embedding_dim, .. } | margin_data::ModelConfig::Convnet4 { embedding_dim, .. } => *embedding_dim,
        margin_data::ModelConfig::Resnet(r) => r.head.embedding_dim,
    }
}

/// The trainer's loss parameters: none (a stateless loss), a checkpoint's files waiting for
/// the training set, or the live module.
pub enum LossState {
    /// A stateless loss, or a parametric one before the first `fit` of a fresh run.
    Fresh,
    /// A resumed run's parameter and optimiser files.
    Stored {
        /// The checkpoint folder they were read from.
        dir: String,
        /// `loss.bpk`.
        params: Vec<u8>,
        /// `loss_optimizer.bpk`.
        optim: Vec<u8>,
    },
    /// Built.
    Live(TrainedLoss),
}

impl LossState {
    /// Builds the module for the training labels (fresh: drawn; stored: loaded), once. A
    /// stored file that does not load is `stored_error(its name in the run, reason)`.
    pub fn activate(
        &mut self,
        config: &TrainConfig,
        labels: &[i64],
        optim: impl FnOnce() -> ModuleOptimizer,
        device: &Device,
        stored_error: impl FnOnce(String, String) -> crate::TrainError,
    ) -> std::result::Result<(), crate::TrainError> {
        if !config.loss.is_parametric() || matches!(self, LossState::Live(_)) {
            return Ok(());
        }
        let dim = embedding_dim(&config.model);
        let live = match std::mem::replace(self, LossState::Fresh) {
            LossState::Fresh => TrainedLoss::fresh(config, labels, dim, optim(), device)?,
            LossState::Stored { dir, params, optim: bytes } => TrainedLoss::restore(config, ClassMap::of(labels), dim, params, bytes, optim(), device)
                .map_err(|(file, reason)| stored_error(format!("{dir}/{file}"), reason))?,
            LossState::Live(_) => unreachable!("returned above"),
        };
        *self = LossState::Live(live);
        Ok(())
    }

    /// The live module, if any.
    pub fn live(&mut self) -> Option<&mut TrainedLoss> {
        match self {
            LossState::Live(t) => Some(t),
            _ => None,
        }
    }
}
