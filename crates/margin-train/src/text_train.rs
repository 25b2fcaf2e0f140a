//! Fine-tuning a pretrained sentence encoder (a sentence-transformers folder) with margin's
//! losses: P×K batches of intents → tokens → BERT → pooling (→ normalise) → the loss's
//! one entry point (miner planned inside; InfoNCE over the batch's positive pairs) →
//! backward → global-norm clipping → AdamW at the step's warm-up/decay learning rate.
//!
//! Kept apart from the image [`crate::Trainer`] (whose model is an `EmbeddingNet` fed
//! `f32` samples): a text batch is strings, tokenised once at the start; each step
//! splits its batch into length-sorted chunks padded to their own longest
//! ([`length_buckets`]: a P×K batch of short utterances padded to its longest computes on
//! up to twice its real tokens) and concatenates their embeddings for the loss. The schedule is per step ([`crate::schedule`]), as
//! transformer fine-tuning does, not per epoch.
//!
//! Freezing: `freeze.embeddings` and the lowest `freeze.layers` transformer layers are
//! taken off the graph (`no_grad`): no gradient is computed for them and the optimizer
//! never touches them (AdamW's decoupled decay included). Applied again after a resume.
//!
//! Differences from sentence-transformers' fit, on purpose: no dropout (the step is a
//! deterministic function of the weights and the batch, so a resumed run is bit-identical
//! to an uninterrupted one); weight decay applies to every trained parameter (Burn's
//! AdamW has no per-name exclusion of biases and LayerNorm).
//!
//! Reproducible: batches of epoch `e` come from the PK sampler's plan for `(seed, e)`,
//! mining from a ChaCha8 stream of `(seed, e)`; a checkpoint (model, optimizer, state)
//! is published atomically every epoch through the run's [`RunSink`], with the image
//! trainer's validated pointer (`checkpoint.json`).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use margin::sampler::{PKSampler, SmallClassPolicy};
use margin::{Batch, MarginError, MinerConfig, Tuples, check};
use margin_data::text::TextSet;
use margin_models::text::{BertModel, SentenceEncoder, length_buckets, pad_batch};

/// What a step's chunk costs beyond its padded positions, in positions
/// ([`length_buckets`]): chunks are cut only where that saves more padding than this.
const CHUNK_COST: usize = 64;

use crate::checkpoint::{LOG, POINTER, Pointer, parse_pointer};
use crate::config::{BuiltLoss, LossSpec, SamplerConfig, validate_loss_and_miner, validate_sampler};
use crate::schedule::WarmupDecay;
use crate::{MinerSpec, RunSink, TrainError};

/// What fine-tuning leaves unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextFreeze {
    /// Freeze the embedding layer (word, position and token-type tables and their LayerNorm).
    #[serde(default)]
    pub embeddings: bool,
    /// Freeze the lowest this many transformer layers.
    #[serde(default)]
    pub layers: usize,
}

/// The `[train]` section of a text run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextTrainConfig {
    /// Seed of every random choice (batches, mining).
    #[serde(default)]
    pub seed: u64,
    /// Epochs (each `sampler.batches_per_epoch` steps, default utterances / (P·K)).
    pub epochs: usize,
    /// Peak learning rate (after the warm-up).
    pub lr: f64,
    /// Warm-up and decay, per step.
    #[serde(default)]
    pub schedule: WarmupDecay,
    /// AdamW's decoupled weight decay.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Clip the gradients' global L2 norm to this (none when absent; 1.0 is usual).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Frozen parts.
    #[serde(default)]
    pub freeze: TextFreeze,
    /// The loss (`kind = "info_nce"`, `"triplet"`, `"contrastive"`).
    #[serde(default)]
    pub loss: LossSpec,
    /// The miner (`kind = "none"` for InfoNCE).
    #[serde(default)]
    pub miner: MinerSpec,
    /// P×K batches of intents.
    #[serde(default)]
    pub sampler: SamplerConfig,
    /// Sentences per forward when embedding for evaluation.
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
}

fn default_weight_decay() -> f64 {
    0.01
}
fn default_eval_batch() -> usize {
    64
}

impl TextTrainConfig {
    /// Checks every field, naming the first bad one as the TOML spells it.
    pub fn validate(&self) -> Result<(), MarginError> {
        check::count("train.epochs", self.epochs, 1)?;
        check::positive("train.lr", self.lr)?;
        self.schedule.validate(self.lr)?;
        check::non_negative("train.weight_decay", self.weight_decay)?;
        if let Some(c) = self.clip_grad_norm {
            check::positive("train.clip_grad_norm", c)?;
        }
        validate_sampler(&self.sampler)?;
        check::count("train.eval_batch", self.eval_batch, 1)?;
        check::size("train.eval_batch", self.eval_batch, check::MAX_BATCH)?;
        validate_loss_and_miner(&self.loss, &self.miner)
    }
}

/// Resumable state besides the tensors (`state.json` of a checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextTrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: usize,
    /// Seconds spent in steps.
    pub train_seconds: f64,
    /// Sentences processed.
    pub sentences_seen: usize,
    /// The configuration in force.
    pub config: TextTrainConfig,
    /// The base sentence-transformers folder.
    pub encoder: std::path::PathBuf,
}

/// One step, as logged to `train_log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextStepRecord {
    /// Always `"step"`.
    pub kind: String,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Global step (1-based).
    pub step: usize,
    /// The loss.
    pub loss: f64,
    /// Fraction of tuples with a non-zero loss.
    pub active_fraction: f64,
    /// The gradients' global norm before clipping (when clipping).
    pub grad_norm: Option<f64>,
    /// The step's learning rate.
    pub lr: f64,
    /// Positions computed per sentence (padding included), rounded up: the step's
    /// length-sorted chunks are each padded to their own longest.
    pub tokens_per_sentence: usize,
    /// Wall seconds.
    pub seconds: f64,
}

/// The fine-tuning of one encoder. Build with [`TextTrainer::new`] or [`TextTrainer::resume`].
pub struct TextTrainer {
    config: TextTrainConfig,
    base: SentenceEncoder,
    model: BertModel,
    optim: ModuleOptimizer,
    state: TextTrainState,
    loss: BuiltLoss,
    miner: Option<MinerConfig>,
    sink: Box<dyn RunSink>,
    device: Device,
}

fn optimizer(c: &TextTrainConfig) -> ModuleOptimizer {
    // One pass per parameter on the CPU, Burn's formulas and state (`fused_adamw`).
    crate::fused_adamw::FusedAdamW::new(1e-8, c.weight_decay as f32).init()
}

/// `model` with the configured parts off the graph.
fn frozen(mut model: BertModel, f: &TextFreeze) -> Result<BertModel, MarginError> {
    if f.layers > model.layers.len() {
        return Err(MarginError::InvalidConfig {
            field: "train.freeze.layers",
            value: format!("{} (the encoder has {} layers)", f.layers, model.layers.len()),
            reason: "cannot freeze more layers than the encoder has",
        });
    }
    if f.embeddings {
        model.embeddings = model.embeddings.no_grad();
    }
    model.layers = model.layers.into_iter().enumerate().map(|(i, l)| if i < f.layers { l.no_grad() } else { l }).collect();
    Ok(model)
}

fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(epoch as u64);
    r
}

fn sink_err(sink: &dyn RunSink, name: &str, reason: impl ToString) -> TrainError {
    TrainError::Checkpoint { path: sink.locate(name), reason: reason.to_string() }
}

impl TextTrainer {
    /// A fresh run of `config` from the sentence-transformers folder `encoder`, on the
    /// autodiff device `device`, writing through `sink` (a fresh log).
    pub fn new(config: TextTrainConfig, encoder: &std::path::Path, mut sink: Box<dyn RunSink>, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let base = SentenceEncoder::load(encoder, device).map_err(margin_models::ModelError::from)?;
        let model = frozen(base.model.clone(), &config.freeze)?;
        let state = TextTrainState { epoch: 0, step: 0, train_seconds: 0.0, sentences_seen: 0, config: config.clone(), encoder: encoder.to_path_buf() };
        sink.write(LOG, b"")?;
        Self::assemble(config, base, model, optimizer_or(&state), state, sink, device)
    }

    fn assemble(config: TextTrainConfig, base: SentenceEncoder, model: BertModel, optim: ModuleOptimizer, state: TextTrainState, sink: Box<dyn RunSink>, device: &Device) -> Result<Self, TrainError> {
        let loss = config.loss.build()?;
        let miner = config.miner.build(config.loss.distance())?;
        Ok(TextTrainer { config, base, model, optim, state, loss, miner, sink, device: device.clone() })
    }

    /// Continues the run held by `sink` from its latest checkpoint (the validated pointer);
    /// `epochs` may extend it, never shorten it.
    pub fn resume(mut sink: Box<dyn RunSink>, epochs: Option<usize>, device: &Device) -> Result<Self, TrainError> {
        let bytes = sink.read(POINTER)?.ok_or_else(|| sink_err(sink.as_ref(), POINTER, "missing: the run has no complete checkpoint to resume from"))?;
        let ptr = parse_pointer(&bytes).map_err(|e| sink_err(sink.as_ref(), POINTER, e))?;
        let read = |sink: &dyn RunSink, name: &str| sink.read(&format!("{}/{name}", ptr.dir))?.ok_or_else(|| sink_err(sink, &format!("{}/{name}", ptr.dir), "missing"));
        let name = format!("{}/state.json", ptr.dir);
        let mut state: TextTrainState = serde_json::from_slice(&read(sink.as_ref(), "state.json")?).map_err(|e| sink_err(sink.as_ref(), &name, format!("corrupt state: {e}")))?;
        if state.epoch != ptr.epoch {
            return Err(sink_err(sink.as_ref(), &name, format!("holds epoch {}, the pointer says {}", state.epoch, ptr.epoch)));
        }
        if let Some(e) = epochs {
            if e < state.epoch {
                return Err(sink_err(sink.as_ref(), POINTER, format!("epochs = {e} is fewer than the {} the run has completed; a resumed run can only be extended", state.epoch)));
            }
            state.config.epochs = e;
        }
        state.config.validate()?;
        let base = SentenceEncoder::load(&state.encoder, device).map_err(margin_models::ModelError::from)?;
        let mname = format!("{}/model.bpk", ptr.dir);
        let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(read(sink.as_ref(), "model.bpk")?)).map_err(|e| sink_err(sink.as_ref(), &mname, e))?;
        let model = base.model.clone().try_load_record(record).map_err(|e| sink_err(sink.as_ref(), &mname, e))?;
        let model = frozen(model, &state.config.freeze)?;
        let oname = format!("{}/optimizer.bpk", ptr.dir);
        let optim = optimizer(&state.config).from_bytes(burn::tensor::Bytes::from_bytes_vec(read(sink.as_ref(), "optimizer.bpk")?)).map_err(|e| sink_err(sink.as_ref(), &oname, e))?;
        crate::checkpoint::truncate_log(sink.as_mut(), state.epoch)?;
        let config = state.config.clone();
        Self::assemble(config, base, model, optim, state, sink, device)
    }

    /// The state.
    pub fn state(&self) -> &TextTrainState {
        &self.state
    }

    /// The encoder as it is now.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// The base pipeline (tokenizer, pooling, normalisation; its `model` is the base weights).
    pub fn base(&self) -> &SentenceEncoder {
        &self.base
    }

    /// The run's storage.
    pub fn sink(&self) -> &dyn RunSink {
        self.sink.as_ref()
    }

    /// An inference encoder of the current weights (no autodiff).
    pub fn inference_encoder(&self) -> SentenceEncoder {
        let plain = self.device.clone().inner();
        self.base.with_model(self.model.valid(), &plain)
    }

    /// Runs the remaining epochs on `train` (labelled utterances); `on_step` sees each
    /// step's record.
    pub fn fit(&mut self, train: &TextSet, on_step: &mut dyn FnMut(&TextStepRecord)) -> Result<(), TrainError> {
        self.fit_until(train, self.config.epochs, on_step)
    }

    /// [`TextTrainer::fit`], stopping after epoch `last` (at most the configured epochs):
    /// what a run interrupted after that epoch's checkpoint leaves (the schedule is the
    /// whole run's either way).
    pub fn fit_until(&mut self, train: &TextSet, last: usize, on_step: &mut dyn FnMut(&TextStepRecord)) -> Result<(), TrainError> {
        let cfg = self.config.clone();
        let classes = train.labels().iter().collect::<std::collections::BTreeSet<_>>().len();
        if cfg.sampler.classes_per_batch > classes {
            return Err(MarginError::InvalidConfig {
                field: "train.sampler.classes_per_batch",
                value: format!("{} (the training set {} has {classes} intents)", cfg.sampler.classes_per_batch, margin_data::Samples::name(train)),
                reason: "is more classes per batch than there are",
            }
            .into());
        }
        let ids = self.base.tokenizer.tokenize(train.texts()).map_err(margin_models::ModelError::from)?;
        let sampler = PKSampler::new(train.labels(), cfg.sampler.classes_per_batch, cfg.sampler.samples_per_class, SmallClassPolicy::WithReplacement, cfg.seed)?;
        let steps = cfg.sampler.batches_per_epoch.unwrap_or(sampler.batches_per_epoch()).max(1);
        let total = steps * cfg.epochs;
        for epoch in self.state.epoch + 1..=last.min(cfg.epochs) {
            let batches = sampler.epoch_batches(epoch as u64);
            let mut rng = epoch_rng(cfg.seed, epoch);
            for s in 0..steps {
                let t = Instant::now();
                let lr = cfg.schedule.lr(cfg.lr, self.state.step, total);
                let mut rec = self.step(epoch, lr, train, &ids, &batches[s % batches.len()], &mut rng)?;
                rec.seconds = t.elapsed().as_secs_f64();
                self.state.train_seconds += rec.seconds;
                self.sink.append_line(LOG, &serde_json::to_string(&rec).expect("a record serialises"))?;
                on_step(&rec);
            }
            self.state.epoch = epoch;
            self.sink.sync(LOG)?;
            self.commit()?;
        }
        Ok(())
    }

    /// One step on the utterances `idx`.
    fn step(&mut self, epoch: usize, lr: f64, train: &TextSet, ids: &[Vec<u32>], idx: &[usize], rng: &mut ChaCha8Rng) -> Result<TextStepRecord, TrainError> {
        // Length-sorted chunks, each padded to its own longest (`length_buckets`); the
        // embeddings' rows (and so the labels) follow the chunks' order — the loss
        // compares rows by label, so the order is the batch's business only.
        let lengths: Vec<usize> = idx.iter().map(|&i| ids[i].len()).collect();
        let chunks = length_buckets(&lengths, CHUNK_COST);
        let rows: Vec<usize> = chunks.iter().flatten().map(|&k| idx[k]).collect();
        let labels: Vec<i64> = rows.iter().map(|&i| train.labels()[i]).collect();
        let mut parts = Vec::with_capacity(chunks.len());
        let mut padded = 0;
        for chunk in &chunks {
            let seqs: Vec<&[u32]> = chunk.iter().map(|&k| ids[idx[k]].as_slice()).collect();
            let p = pad_batch(&seqs, self.base.tokenizer.pad_id());
            padded += p.batch * p.len;
            let shape = [p.batch, p.len];
            let t_ids = Tensor::<2, Int>::from_data(TensorData::new(p.ids, shape), &self.device);
            let mask = Tensor::<2>::from_data(TensorData::new(p.mask, shape), &self.device);
            parts.push(self.base.forward_with(&self.model, t_ids, mask));
        }
        let emb = Tensor::cat(parts, 0);
        let diverged = |what: String| TrainError::Diverged { epoch, step: self.state.step + 1, lr, what };
        if let Some(i) = margin::to_host(&emb).iter().position(|v| !v.is_finite()) {
            return Err(diverged(format!("the embedding of utterance {} is not finite; lower train.lr or set train.clip_grad_norm", rows[i / emb.dims()[1]])));
        }
        let tuples = match &self.miner {
            Some(m) => Tuples::mined(m, rng),
            None => Tuples::All,
        };
        let out = self.loss.as_metric_loss().forward(Batch::labelled(emb, &labels), tuples)?;
        if !out.stats.loss.is_finite() {
            return Err(diverged(format!("the loss is {}", out.stats.loss)));
        }
        let mut grads = GradientsParams::from_grads(out.loss.backward(), &self.model);
        let grad_norm = self.config.clip_grad_norm.map(|c| crate::grad_clip::clip_global_norm(&self.model, &mut grads, c));
        let model = std::mem::replace(&mut self.model, self.base.model.clone());
        self.model = self.optim.step(lr, model, grads);
        self.state.step += 1;
        self.state.sentences_seen += idx.len();
        Ok(TextStepRecord {
            kind: "step".into(),
            epoch,
            step: self.state.step,
            loss: out.stats.loss,
            active_fraction: out.stats.active_fraction,
            grad_norm,
            lr,
            tokens_per_sentence: padded.div_ceil(idx.len().max(1)),
            seconds: 0.0,
        })
    }

    /// Publishes the checkpoint of `state.epoch`, points `checkpoint.json` at it and
    /// removes the older ones.
    fn commit(&mut self) -> Result<(), TrainError> {
        let epoch = self.state.epoch;
        let name = format!("epoch-{epoch:04}");
        let dir = format!("checkpoints/{name}");
        let model = self.model.clone().into_record().into_bytes().map_err(|e| sink_err(self.sink.as_ref(), &dir, e))?;
        let optim = self.optim.into_bytes().map_err(|e| sink_err(self.sink.as_ref(), &dir, e))?;
        let state = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        self.sink.publish(&dir, &[("model.bpk", &model), ("optimizer.bpk", &optim), ("state.json", &state)])?;
        self.sink.write(POINTER, &serde_json::to_vec(&Pointer { epoch, dir }).expect("a pointer serialises"))?;
        for old in self.sink.subdirs("checkpoints")? {
            if old.starts_with("epoch-") && old != name {
                self.sink.remove_dir(&format!("checkpoints/{old}"))?;
            }
        }
        Ok(())
    }
}

fn optimizer_or(state: &TextTrainState) -> ModuleOptimizer {
    optimizer(&state.config)
}
