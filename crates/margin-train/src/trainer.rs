//! The trainer: P×K batches → embeddings → loss (its miner planned inside) → optimizer,
//! per-step statistics, a JSONL log, an atomic checkpoint every epoch, exact resume.
//!
//! Reproducibility: every random choice of epoch `e` (batches, mining, augmentation)
//! comes from a ChaCha8 stream seeded by `(seed, e)`, and initialisation from the
//! device seed. A run resumed from the checkpoint of epoch `k` therefore replays
//! epochs `k+1…` exactly as the uninterrupted run does (same seed → same metrics on CPU).
//!
//! Checkpoints (written atomically every epoch, read by [`Trainer::resume`]): the
//! `checkpoint` module.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use margin::sampler::{PKSampler, SmallClassPolicy};
use thiserror::Error;

use margin::{Batch, MarginError, MetricLoss, MinerConfig, Tuples};
use margin_data::{DataError, Dataset, ModelCard, write_atomic};
use margin_models::{BuildEncoder, EmbeddingNet, ModelError, embed};

use crate::augment;
use crate::fault;
use crate::checkpoint::{self, ckpt_err};
use crate::sink::{FolderSink, RunSink};
use crate::config::{BuiltLoss, OptimizerSpec, TrainConfig};

/// Why training stopped.
#[derive(Debug, Error)]
pub enum TrainError {
    /// Loading or writing data / files.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A loss, miner or configuration error.
    #[error(transparent)]
    Margin(#[from] MarginError),
    /// Evaluation during training.
    #[error("validation: {0}")]
    Eval(#[from] margin_eval::EvalError),
    /// Building, saving or loading the model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A configuration file that cannot be parsed.
    #[error("{file}: invalid configuration: {reason}")]
    Config {
        /// The file (or "the bundled configs/omniglot.toml").
        file: String,
        /// The parser's message (field and position).
        reason: String,
    },
    /// A checkpoint or model file that cannot be used.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The run needs more memory than the machine has.
    #[error(transparent)]
    Memory(#[from] margin_data::memory::MemoryError),
    /// A run that cannot be continued as asked (what was trained would change, or there is
    /// nothing to continue).
    #[error("cannot resume {run}: {reason}")]
    Resume {
        /// The run folder.
        run: PathBuf,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Training diverged: the embeddings or the loss of a step are not finite.
    #[error("training diverged at epoch {epoch}, step {step} (learning rate {lr:e}): {what}")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Global step.
        step: usize,
        /// The step's learning rate.
        lr: f64,
        /// What was non-finite, and the likely cause.
        what: String,
    },
}


/// One training step, as logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Always `"step"`.
    pub kind: String,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Global step (1-based).
    pub step: usize,
    /// Loss value.
    pub loss: f64,
    /// Fraction of mined tuples with a non-zero loss.
    pub active_fraction: f64,
    /// Number of tuples the loss saw.
    pub num_tuples: usize,
    /// Mean anchor–positive distance.
    pub mean_ap_dist: Option<f64>,
    /// Mean anchor–negative distance.
    pub mean_an_dist: Option<f64>,
    /// Mean over dimensions of the per-dimension std of the batch embeddings (collapse watch).
    pub embedding_spread: f64,
    /// Learning rate.
    pub lr: f64,
    /// Wall seconds of the step.
    pub seconds: f64,
}

/// One epoch, as logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Always `"epoch"`.
    pub kind: String,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean step loss.
    pub mean_loss: f64,
    /// Mean active fraction.
    pub mean_active_fraction: f64,
    /// Mean d_ap over steps that had tuples.
    pub mean_ap_dist: Option<f64>,
    /// Mean d_an over steps that had tuples.
    pub mean_an_dist: Option<f64>,
    /// Learning rate.
    pub lr: f64,
    /// Seconds spent in training steps.
    pub train_seconds: f64,
    /// Images (samples) per second over the steps.
    pub images_per_s: f64,
    /// Validation MAP@R, if validated this epoch.
    pub val_map_at_r: Option<f64>,
    /// Validation P@1, if validated this epoch.
    pub val_precision_at_1: Option<f64>,
    /// Validation 20-way one-shot accuracy (2,000 seeded episodes, one query per
    /// class, as the Omniglot runs), if validated this epoch and the split has at
    /// least 20 classes with two samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_one_shot: Option<f64>,
    /// Warnings raised this epoch.
    pub warnings: Vec<String>,
}

/// Progress callbacks (the CLI draws a progress bar with these).
pub trait Observer {
    /// Called once before the first epoch that runs.
    fn start(&mut self, _first_epoch: usize, _epochs: usize, _steps_per_epoch: usize) {}
    /// After each step.
    fn step(&mut self, _s: &StepRecord) {}
    /// After each epoch (after its checkpoint is written).
    fn epoch(&mut self, _e: &EpochRecord) {}
    /// A warning (also stored in the epoch record).
    fn warn(&mut self, _msg: &str) {}
}

/// An observer that does nothing.
pub struct Silent;
impl Observer for Silent {}

/// Resumable state besides the model and optimizer tensors.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Steps completed.
    pub step: usize,
    /// Seconds spent in steps so far.
    pub train_seconds: f64,
    /// Samples processed so far.
    pub images_seen: usize,
    /// Best validation MAP@R so far and its epoch.
    pub best: Option<(f64, usize)>,
    /// Epochs in a row with a near-zero active fraction (warning state).
    pub low_active_epochs: usize,
    /// The configuration the run started with (resume refuses a different one).
    pub config: Option<TrainConfig>,
}

/// What a finished run returns.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The final model (the best by validation MAP@R when validation ran, else the last).
    pub model: EmbeddingNet,
    /// Final state.
    pub state: TrainState,
    /// Epoch records of the epochs this call ran.
    pub epochs: Vec<EpochRecord>,
    /// The run's storage (the folder, or the memory holding the log and checkpoints).
    pub sink: Box<dyn RunSink>,
    /// A parametric loss's parameters at the end (row-major host values), `None` otherwise.
    pub loss_params: Option<Vec<f64>>,
}

fn build_optimizer(spec: &OptimizerSpec) -> ModuleOptimizer {
    match *spec {
        OptimizerSpec::Adam { weight_decay } => {
            let c = AdamConfig::new().with_epsilon(1e-8);
            let c = if weight_decay > 0.0 { c.with_weight_decay(Some(WeightDecayConfig::new(weight_decay as f32))) } else { c };
            c.init()
        }
        OptimizerSpec::Adamw { weight_decay } => crate::fused_adamw::FusedAdamW::new(1e-8, weight_decay as f32).init(),
        OptimizerSpec::Sgd { momentum, nesterov, weight_decay } => {
            let m = (momentum > 0.0).then(|| MomentumConfig::new().with_momentum(momentum).with_dampening(0.0).with_nesterov(nesterov));
            let wd = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
            SgdConfig::new().with_momentum(m).with_weight_decay(wd).init()
        }
    }
}

/// The RNG of epoch `epoch` (1-based) of a run seeded with `seed`.
fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(epoch as u64);
    r
}

/// MAP@R, P@1 and 20-way one-shot accuracy (`None` when the split has fewer
/// than 20 classes with two samples) of `emb` (rows of `data`) against itself.
fn validate(emb: &[f32], labels: &[i64], dim: usize) -> Result<(f64, f64, Option<f64>), TrainError> {
    let e = margin_eval::Embeddings::new("validation embeddings", emb, dim)?;
    let l = margin_eval::Labelled::new(e, "validation labels", labels)?;
    let r = margin_eval::retrieval(&l, None, margin_eval::Distance::Euclidean, &margin_eval::RetrievalConfig { mrr: false, ..Default::default() })?;
    let episodes = margin_eval::FewShotConfig { n_way: 20, k_shot: 1, n_query: 1, episodes: 2000, seed: 0 };
    let one_shot = match margin_eval::few_shot(&l, margin_eval::Distance::Euclidean, &episodes) {
        Ok(rep) => Some(rep.accuracy),
        Err(margin_eval::EvalError::NotEnoughData { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    Ok((r.map_at_r, r.precision_at_1, one_shot))
}

/// Saves a model's weights (`model.safetensors`) and then its card (`model.json`), each
/// atomically; the weights carry the card's hash, so a reader never accepts a card and
/// weights of different saves (`margin_models::weights`). Fault steps `model.safetensors`,
/// `model.json` (the `fault` module).
pub fn save_model(model: &EmbeddingNet, card: &ModelCard, dir: &Path) -> Result<(), TrainError> {
    let weights = dir.join("model.safetensors");
    let bytes = margin_models::weights::safetensors_bytes(model, card, &weights)?;
    fault::step("model.safetensors", &weights, &bytes, || write_atomic(&weights, &bytes))?;
    let card_path = dir.join("model.json");
    let bytes = margin_models::weights::card_bytes(card);
    fault::step("model.json", &card_path, &bytes, || write_atomic(&card_path, &bytes))?;
    Ok(())
}

/// The trainer. Build with [`Trainer::new`] (fresh) or [`Trainer::resume`].
pub struct Trainer {
    config: TrainConfig,
    sink: Box<dyn RunSink>,
    device: Device,
    model: EmbeddingNet,
    optim: ModuleOptimizer,
    state: TrainState,
    /// The stateless loss (`None`: the loss has class parameters, in `param`).
    loss: Option<BuiltLoss>,
    /// The class parameters of a parametric loss (`crate::param_loss`).
    param: crate::param_loss::LossState,
    miner: Option<MinerConfig>,
    sample_shape: Vec<usize>,
    /// How sample values map to picture levels, for the photo colour jitter.
    pixel_map: crate::photo_augment::PixelMap,
}

impl Trainer {
    /// Tells the photo augmentation how the samples were normalised (the preprocessing's
    /// mean/std; default: values are levels in `[0, 1]`).
    pub fn set_pixel_map(&mut self, map: crate::photo_augment::PixelMap) {
        self.pixel_map = map;
    }

    /// A fresh run writing into the folder `out` (created if needed).
    pub fn new(config: TrainConfig, sample_shape: &[usize], out: &Path, device: &Device) -> Result<Self, TrainError> {
        Self::with_sink(config, sample_shape, Box::new(FolderSink::new(out)?), device)
    }

    /// A fresh run writing through `sink` (a folder, or memory: [`crate::MemorySink`]).
    pub fn with_sink(config: TrainConfig, sample_shape: &[usize], mut sink: Box<dyn RunSink>, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        // A fresh run starts from the pretrained weights its configuration names (if any),
        // initialised on the CPU whatever the device (the same weights for a seed everywhere),
        // drawn with the generator seeded and no other run's draws in between.
        let model = crate::device::seeded(device, config.seed, || crate::device::init_model(&config, sample_shape, device))?;
        let optim = build_optimizer(&config.optimizer);
        let loss = config.loss.build_stateless()?;
        let miner = config.miner.build(config.loss.distance())?;
        let state = TrainState { config: Some(config.clone()), ..Default::default() };
        // A fresh run starts a fresh log.
        sink.write(checkpoint::LOG, b"")?;
        let param = crate::param_loss::LossState::Fresh;
        Ok(Trainer { config, sink, device: device.clone(), model, optim, state, loss, param, miner, sample_shape: sample_shape.to_vec(), pixel_map: crate::photo_augment::PixelMap::IDENTITY })
    }

    /// Continues the run in the folder `out` from its latest complete checkpoint (the
    /// pointer's, else the newest complete epoch folder). `epochs` (when given) may extend
    /// the run, never shorten it below the epochs completed; every other setting is the
    /// stored one.
    pub fn resume(out: &Path, sample_shape: &[usize], epochs: Option<usize>, device: &Device) -> Result<Self, TrainError> {
        Self::resume_sink(Box::new(FolderSink::new(out)?), sample_shape, epochs, device)
    }

    /// [`Trainer::resume`] from the run held by `sink`.
    pub fn resume_sink(mut sink: Box<dyn RunSink>, sample_shape: &[usize], epochs: Option<usize>, device: &Device) -> Result<Self, TrainError> {
        let restored = checkpoint::restore(sink.as_ref(), &mut |state| {
            let config = state.config.as_ref().ok_or_else(|| ckpt_err(sink.as_ref(), &format!("checkpoints/epoch-{:04}/state.json", state.epoch), "no configuration stored"))?;
            Ok((config.model.init(sample_shape, device)?, build_optimizer(&config.optimizer)))
        })?;
        let checkpoint::Restored { dir, mut state, model, optim } = restored;
        let mut config = state.config.clone().expect("checked by the restore's init");
        if let Some(e) = epochs {
            if e < state.epoch {
                let run = sink.locate(&dir);
                return Err(TrainError::Resume {
                    run: run.parent().and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("(the run)"), Path::to_path_buf),
                    reason: format!(
                        "epochs = {e} is fewer than the {} epochs the run has completed ({dir}); a resumed run can only be extended (epochs {} or more) — for a shorter run start a new one",
                        state.epoch, state.epoch
                    ),
                });
            }
            config.epochs = e;
        }
        config.validate()?;
        let loss = config.loss.build_stateless()?;
        let miner = config.miner.build(config.loss.distance())?;
        let param = checkpoint::stored_loss(sink.as_ref(), &dir, &config)?;
        checkpoint::truncate_log(sink.as_mut(), state.epoch)?;
        state.config = Some(config.clone());
        Ok(Trainer { config, sink, device: device.clone(), model, optim, state, loss, param, miner, sample_shape: sample_shape.to_vec(), pixel_map: crate::photo_augment::PixelMap::IDENTITY })
    }

    /// The configuration in force.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// The model as it is now.
    pub fn model(&self) -> &EmbeddingNet {
        &self.model
    }

    /// Runs the remaining epochs on `train`, validating on `val` (class-disjoint
    /// from `train`, checked) every `validate_every` epochs.
    pub fn fit(self, train: &Dataset, val: Option<&Dataset>, obs: &mut dyn Observer) -> Result<TrainOutcome, TrainError> {
        self.fit_feed(&crate::feed::Feed::Memory(std::borrow::Cow::Borrowed(train)), val, obs)
    }

    /// [`Trainer::fit`] on batches from `feed`: in memory, or decoded lazily by the
    /// loader's threads while the steps run (the `feed` module; the same run either way).
    pub fn fit_feed(mut self, feed: &crate::feed::Feed<'_>, val: Option<&Dataset>, obs: &mut dyn Observer) -> Result<TrainOutcome, TrainError> {
        let (rotated, rotated_feed);
        let train = match feed {
            crate::feed::Feed::Memory(train) => match self.checked_training_set(train, val)? {
                Some(r) => {
                    rotated = r;
                    rotated_feed = crate::feed::Feed::Memory(std::borrow::Cow::Borrowed(&rotated));
                    &rotated_feed
                }
                None => feed,
            },
            crate::feed::Feed::Lazy(_) => {
                feed.check_lazy(&self.sample_shape, &self.config, val)?;
                feed
            }
        };
        let cfg = self.config.clone();
        let sink = self.sink.as_ref();
        self.param.activate(&cfg, train.labels(), || build_optimizer(&cfg.optimizer), &self.device, |name, reason| TrainError::Checkpoint { path: sink.locate(&name), reason })?;
        let num_classes = margin_data::indices_by_class(train.labels()).len();
        if cfg.sampler.classes_per_batch > num_classes {
            return Err(MarginError::InvalidConfig {
                field: "train.sampler.classes_per_batch",
                value: format!("{} (the training set {} has {num_classes} classes after the split)", cfg.sampler.classes_per_batch, train.name()),
                reason: "is more classes per batch than there are; lower it to at most the number of training classes",
            }
            .into());
        }
        let sampler = PKSampler::new(
            train.labels(),
            cfg.sampler.classes_per_batch,
            cfg.sampler.samples_per_class,
            SmallClassPolicy::WithReplacement,
            cfg.seed,
        )?;
        obs.start(self.state.epoch + 1, cfg.epochs, cfg.sampler.batches_per_epoch.unwrap_or(sampler.batches_per_epoch()));
        let mut x = vec![0f32; sampler.batch_size() * train.sample_shape().iter().product::<usize>()];
        let mut records = Vec::new();
        for epoch in self.state.epoch + 1..=cfg.epochs {
            let lr = cfg.schedule.lr(cfg.lr, epoch - 1, cfg.epochs);
            // The epoch's plan depends on (seed, epoch) only, so a resumed run replays it exactly;
            // `batches_per_epoch` (if set) takes that many of its batches, cycling.
            let batches = sampler.epoch_batches(epoch as u64);
            let steps = cfg.sampler.batches_per_epoch.unwrap_or(batches.len());
            let mut rng = epoch_rng(cfg.seed, epoch);
            let mut totals = EpochTotals { min_spread: f64::INFINITY, ..Default::default() };
            let mut fed = train.epoch((0..steps).map(|s| batches[s % batches.len()].clone()).collect());
            for _ in 0..steps {
                let t = Instant::now();
                let batch = fed.next_batch(obs)?;
                if batch.samples.is_empty() {
                    continue; // every sample of the batch was a bad file (skip_bad), each warned about
                }
                let (grads, mut rec) = self.step(epoch, lr, &batch, &mut x, &mut rng)?;
                // (The model moves through the optimizer, so it can update the weights in place.)
                let policy = crate::head_lr::policy(crate::head_lr::HeadLr::of(&cfg.model, &self.model).as_ref(), lr);
                self.model = self.optim.step(policy, self.model, grads);
                if let Some(p) = self.param.live() {
                    p.step(lr);
                }
                rec.seconds = t.elapsed().as_secs_f64();
                totals.add(&rec);
                self.sink.append_line(checkpoint::LOG, &serde_json::to_string(&rec).expect("a record serialises"))?;
                obs.step(&rec);
            }
            let rec = self.close_epoch(epoch, lr, steps, sampler.batch_size(), &totals, val, obs)?;
            self.sink.append_line(checkpoint::LOG, &serde_json::to_string(&rec).expect("a record serialises"))?;
            self.sink.sync(checkpoint::LOG)?;
            let is_best = self.state.best.is_some_and(|(_, e)| e == epoch);
            self.model.sync_running_statistics();
            let loss_files = match self.param.live() {
                Some(p) => p.files().map_err(|reason| TrainError::Checkpoint { path: self.sink.locate("checkpoints"), reason })?,
                None => Vec::new(),
            };
            checkpoint::commit_epoch(self.sink.as_mut(), &self.model, &self.optim, &self.state, &loss_files, is_best)?;
            obs.epoch(&rec);
            records.push(rec);
        }
        // The final model: best by validation when available.
        let model = match self.state.best {
            Some((_, e)) if e != self.state.epoch => checkpoint::best_model(self.sink.as_ref(), self.model.clone())?,
            _ => self.model,
        };
        let loss_params = self.param.live().map(|p| p.loss.param_values());
        Ok(TrainOutcome { model, state: self.state, epochs: records, sink: self.sink, loss_params })
    }

    /// Checks `train` (and `val`) against the model and configuration; returns the
    /// training set with rotated copies as new classes when the configuration asks for them.
    fn checked_training_set(&self, train: &Dataset, val: Option<&Dataset>) -> Result<Option<Dataset>, TrainError> {
        if train.sample_shape != self.sample_shape {
            return Err(DataError::Split(format!("training data has sample shape {:?}, the model expects {:?}", train.sample_shape, self.sample_shape)).into());
        }
        if let Some(v) = val {
            margin_data::check_no_leakage("train", train, "validation", v)?;
        }
        let augment = self.config.augment;
        if augment.is_some() && train.sample_shape.len() != 3 {
            return Err(MarginError::InvalidConfig {
                field: "augment",
                value: format!("{augment:?}"),
                reason: "augmentation (shifts/rotations) applies to images only; these samples are feature vectors",
            }
            .into());
        }
        let rotated = match augment {
            Some(a) if a.rotated_classes => Some(augment::with_rotated_classes(train)?),
            _ => None,
        };
        let set = rotated.as_ref().unwrap_or(train);
        let num_classes = margin_data::indices_by_class(&set.labels).len();
        if num_classes < 2 {
            return Err(DataError::Split(format!("{} has {} class(es); metric learning needs at least 2", set.name, num_classes)).into());
        }
        Ok(rotated)
    }

    /// One step on `batch` (its samples augmented with `rng`, which the miner then draws
    /// from too): network → the loss's one entry point → backward; the gradients for the
    /// optimizer and the step's record (its `seconds` are the caller's to set).
    fn step(&mut self, epoch: usize, lr: f64, batch: &margin_data::lazy::Batch, x: &mut [f32], rng: &mut ChaCha8Rng) -> Result<(GradientsParams, StepRecord), TrainError> {
        let d: usize = self.sample_shape.iter().product();
        let (idx, labels) = (&batch.samples, &batch.labels);
        for (row, &i) in idx.iter().enumerate() {
            let dst = &mut x[row * d..(row + 1) * d];
            let src = &batch.values[row * d..(row + 1) * d];
            match self.config.augment {
                Some(a) => {
                    let s = &self.sample_shape;
                    augment::augment_image(src, s[0], s[1], s[2], a.max_shift, a.max_rotation_deg, rng, dst);
                    if let Some(p) = a.photo {
                        let shifted = dst.to_vec();
                        p.apply(&shifted, s[0], s[1], s[2], &self.pixel_map, self.config.seed, epoch, i, dst);
                    }
                }
                None => dst.copy_from_slice(src),
            }
        }
        let xt = Tensor::<2>::from_data(TensorData::new(x[..idx.len() * d].to_vec(), [idx.len(), d]), &self.device);
        let emb = self.model.forward_flat(xt, &self.sample_shape);
        let host = margin::to_host(&emb);
        if let Some(i) = host.iter().position(|v| !v.is_finite()) {
            return Err(self.diverged(epoch, lr, format!("embedding row {} holds {}", i / emb.dims()[1], host[i])));
        }
        let spread = spread(&host, emb.dims()[1]);
        // The loss's one entry point, the miner planned inside it: mined on the loss's own
        // distance matrix, fused where it can be (the shipped default, contrastive +
        // multi-similarity, never lists its pairs).
        // A parametric loss (class weights, proxies) reads class indices 0..C of the training set.
        let (loss, labels): (&dyn MetricLoss, std::borrow::Cow<'_, [i64]>) = match (&self.loss, &self.param) {
            (Some(l), _) => (l.as_metric_loss(), std::borrow::Cow::Borrowed(labels.as_slice())),
            (None, crate::param_loss::LossState::Live(p)) => (p.loss.as_metric(), std::borrow::Cow::Owned(p.classes.map(labels))),
            (None, _) => return Err(MarginError::Unsupported("the loss's class parameters are built by `fit`".into()).into()),
        };
        let tuples = match &self.miner {
            Some(m) => Tuples::mined(m, rng),
            None => Tuples::All,
        };
        let out = loss.forward(Batch::labelled(emb, &labels), tuples)?;
        let st = out.stats;
        if !st.loss.is_finite() {
            return Err(self.diverged(epoch, lr, format!("the loss is {} (the embeddings are finite: the distances overflowed)", st.loss)));
        }
        let mut all_grads = out.loss.backward();
        if let Some(p) = self.param.live() {
            p.take_grads(&mut all_grads);
        }
        let grads = GradientsParams::from_module(&mut all_grads, &self.model);
        self.state.step += 1;
        self.state.images_seen += idx.len();
        let rec = StepRecord {
            kind: "step".into(),
            epoch,
            step: self.state.step,
            loss: st.loss,
            active_fraction: st.active_fraction,
            num_tuples: st.num_tuples,
            mean_ap_dist: st.mean_ap_dist,
            mean_an_dist: st.mean_an_dist,
            embedding_spread: spread,
            lr,
            seconds: 0.0,
        };
        Ok((grads, rec))
    }

    /// The error for a non-finite step, with the likely cause: before any update, the data
    /// or the initial weights; after updates, the learning rate.
    fn diverged(&self, epoch: usize, lr: f64, what: String) -> TrainError {
        let cause = if self.state.step == 0 {
            "at the first step, before any update: the input data (check its scale) or the initial weights hold extreme values"
        } else {
            "the updates blew the weights up: lower train.lr"
        };
        TrainError::Diverged { epoch, step: self.state.step + 1, lr, what: format!("{what}; {cause}") }
    }

    /// The end of an epoch: the stall and collapse warnings, validation (and the best
    /// epoch), the epoch's record; `state.epoch` advances.
    #[allow(clippy::too_many_arguments)]
    fn close_epoch(&mut self, epoch: usize, lr: f64, steps: usize, batch: usize, t: &EpochTotals, val: Option<&Dataset>, obs: &mut dyn Observer) -> Result<EpochRecord, TrainError> {
        let cfg = &self.config;
        self.state.train_seconds += t.secs;
        let mean_act = t.active / steps as f64;
        self.state.low_active_epochs = if mean_act < 0.01 { self.state.low_active_epochs + 1 } else { 0 };
        let mut warnings = Vec::new();
        if self.state.low_active_epochs >= 2 {
            warnings.push(format!(
                "active fraction {:.4} for {} epochs in a row: almost no tuple violates the margin (margin too small or mining too easy); training has stalled",
                mean_act, self.state.low_active_epochs
            ));
        }
        if t.min_spread < 1e-4 {
            warnings.push(format!(
                "embeddings collapsed: per-dimension spread {:.2e} in a batch (all samples map to nearly the same point); lower the learning rate or raise the margin",
                t.min_spread
            ));
        }
        let (mut vmap, mut vp1, mut v1s) = (None, None, None);
        if let Some(v) = val
            && cfg.validate_every > 0
            && (epoch % cfg.validate_every == 0 || epoch == cfg.epochs)
        {
            let e = embed(&self.model, v, cfg.eval_batch, true, &self.device);
            let (m, p, o) = validate(&e, &v.labels, cfg.model.embedding_dim())?;
            (vmap, vp1, v1s) = (Some(m), Some(p), o);
            if self.state.best.is_none_or(|(b, _)| m > b) {
                self.state.best = Some((m, epoch));
            }
        }
        for w in &warnings {
            obs.warn(w);
        }
        self.state.epoch = epoch;
        Ok(EpochRecord {
            kind: "epoch".into(),
            epoch,
            mean_loss: t.loss / steps as f64,
            mean_active_fraction: mean_act,
            mean_ap_dist: (t.n_ap > 0).then(|| t.ap / t.n_ap as f64),
            mean_an_dist: (t.n_ap > 0).then(|| t.an / t.n_ap as f64),
            lr,
            train_seconds: t.secs,
            images_per_s: (steps * batch) as f64 / t.secs.max(1e-9),
            val_map_at_r: vmap,
            val_precision_at_1: vp1,
            val_one_shot: v1s,
            warnings,
        })
    }
}

/// Sums over an epoch's steps (in step order: the same bits on every run).
#[derive(Default)]
struct EpochTotals {
    loss: f64,
    active: f64,
    ap: f64,
    an: f64,
    n_ap: usize,
    secs: f64,
    min_spread: f64,
}

impl EpochTotals {
    fn add(&mut self, s: &StepRecord) {
        self.secs += s.seconds;
        self.loss += s.loss;
        self.active += s.active_fraction;
        if let (Some(a), Some(b)) = (s.mean_ap_dist, s.mean_an_dist) {
            self.ap += a;
            self.an += b;
            self.n_ap += 1;
        }
        self.min_spread = self.min_spread.min(s.embedding_spread);
    }
}

/// Mean over dimensions of the standard deviation across rows.
fn spread(x: &[f64], dim: usize) -> f64 {
    let n = x.len() / dim.max(1);
    if n < 2 {
        return 0.0;
    }
    let mut total = 0.0;
    for j in 0..dim {
        let m = (0..n).map(|i| x[i * dim + j]).sum::<f64>() / n as f64;
        let v = (0..n).map(|i| (x[i * dim + j] - m).powi(2)).sum::<f64>() / n as f64;
        total += v.sqrt();
    }
    total / dim as f64
}
