//! One run of a sweep, in its folder `runs/<id>`: the data of its configuration, the
//! validation classes (never the test classes), training with the trainer's per-epoch
//! checkpoints — a run folder with a checkpoint is resumed, exactly as `margin train
//! --resume` continues a run — then the validation metrics of the final model and the
//! curves and verdict from the run's `train_log.jsonl` (so a resumed run reports the whole
//! training, not only the epochs of the call that finished it).
//!
//! **Validation classes.** The configuration's validation split when it has one; else
//! [`VALIDATION_FRACTION`] of the training classes, at least two, held out of training by
//! margin-data's calibration-share rule (a seeded shuffle of the training classes,
//! `margin_data::calibration::choose`, seeded by the split seed — the same classes for every
//! point). The test classes are loaded by the data loader but never looked at.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use margin_data::Dataset;
use margin_eval::{Distance, Embeddings, Labelled, RetrievalConfig, VerificationConfig};

use super::SweepError;
use super::grid::Point;
use super::record::*;
use super::verdict::{Verdict, has_hinge, judge};
use crate::{EpochRecord, Observer, RunConfig, StepRecord, TrainError, Trainer};

/// The share of the training classes a sweep validates on when the configuration has no
/// validation split (at least two classes).
pub const VALIDATION_FRACTION: f64 = 0.2;

/// What a run tells the sweep while it trains.
pub trait RunObserver: Sync {
    /// A step of run `point` finished.
    fn step(&self, _point: &Point, _s: &StepRecord) {}
    /// An epoch of run `point` finished.
    fn epoch(&self, _point: &Point, _e: &EpochRecord) {}
    /// A warning of run `point` (the trainer's stall and collapse warnings among them).
    fn warn(&self, _point: &Point, _msg: &str) {}
    /// A line about run `point` (resumed, restarted).
    fn info(&self, _point: &Point, _line: &str) {}
}

/// The trainer's observer, forwarding to the sweep's.
struct Forward<'a> {
    point: &'a Point,
    obs: &'a dyn RunObserver,
}

impl Observer for Forward<'_> {
    fn step(&mut self, s: &StepRecord) {
        self.obs.step(self.point, s);
    }
    fn epoch(&mut self, e: &EpochRecord) {
        self.obs.epoch(self.point, e);
    }
    fn warn(&mut self, msg: &str) {
        self.obs.warn(self.point, msg);
    }
}

fn has_validation(cfg: &RunConfig) -> bool {
    cfg.split.val_fraction > 0.0 || cfg.split.val_classes.as_ref().is_some_and(|v| !v.is_empty())
}

/// The training feed and the validation classes of `cfg` (see the module docs).
fn split(cfg: &RunConfig) -> Result<(crate::feed::Loaded, Dataset, ValidationSplit), SweepError> {
    let mut c = cfg.clone();
    let from_config = has_validation(&c);
    c.split.calibration_fraction = Some(if from_config { 0.0 } else { VALIDATION_FRACTION });
    let mut loaded = crate::feed::load(&c)?;
    let (val, source) = match (loaded.val.take(), std::mem::replace(&mut loaded.share, crate::feed::Share::NotNeeded)) {
        (Some(v), _) => (v, ValidationSource::Configuration),
        (None, crate::feed::Share::Held { calibration, .. }) => (calibration, ValidationSource::HeldOut),
        (None, crate::feed::Share::Skipped(_)) => {
            let n = loaded.train_classes;
            let held = ((VALIDATION_FRACTION * n as f64).round() as usize).max(2);
            return Err(SweepError::Validation {
                reason: format!(
                    "the configuration has no validation classes, and holding out {held} of its {n} training classes ({}%, at least 2) would leave {}, fewer than train.sampler.classes_per_batch = {}; give it validation classes (split.val_classes or split.val_fraction) or lower train.sampler.classes_per_batch",
                    VALIDATION_FRACTION * 100.0,
                    n.saturating_sub(held),
                    c.train.sampler.classes_per_batch
                ),
            });
        }
        (None, crate::feed::Share::NotNeeded) => unreachable!("a share is needed without validation classes"),
    };
    if let Some(t) = &loaded.test {
        margin_data::check_no_leakage("validation", &val, "test", t)?;
    }
    let info = ValidationSplit {
        source,
        classes: val.classes().iter().map(|&c| val.class_name(c).to_string()).collect(),
        samples: val.len(),
        train_classes: loaded.train_classes,
    };
    Ok((loaded, val, info))
}

/// The trainer of the run in `dir`: resumed from its checkpoint when it has one of this
/// configuration, else fresh (a folder of another configuration, or one whose checkpoint
/// cannot be read, is emptied first).
fn trainer(cfg: &RunConfig, shape: &[usize], dir: &Path, device: &Device, say: &dyn Fn(&str)) -> Result<Trainer, TrainError> {
    let has_checkpoint = dir.join("checkpoint.json").exists()
        || std::fs::read_dir(dir.join("checkpoints")).is_ok_and(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("epoch-")));
    if has_checkpoint {
        match Trainer::resume(dir, shape, None, device) {
            Ok(t) => {
                let (mut a, mut b) = (t.config().clone(), cfg.train.clone());
                (a.device, b.device) = (crate::DeviceSpec::Cpu, crate::DeviceSpec::Cpu);
                if a == b {
                    say(&format!("resuming after epoch {} of {}", t.state().epoch, cfg.train.epochs));
                    return Ok(t);
                }
                say("its checkpoint is of another configuration: starting it again");
            }
            Err(e) => say(&format!("its checkpoint cannot be resumed ({e}): starting it again")),
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| margin_data::DataError::io(dir, e))?;
    }
    Trainer::new(cfg.train.clone(), shape, dir, device)
}

/// The step and epoch records of the run's log.
fn curves(dir: &Path) -> Result<(StepCurves, Vec<EpochPoint>), TrainError> {
    let p = dir.join("train_log.jsonl");
    let text = std::fs::read_to_string(&p).map_err(|e| margin_data::DataError::io(&p, e))?;
    let (mut steps, mut epochs) = (StepCurves::default(), Vec::new());
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| TrainError::Checkpoint { path: p.clone(), reason: format!("a corrupt log line: {e}") })?;
        let bad = |e: serde_json::Error| TrainError::Checkpoint { path: p.clone(), reason: format!("a corrupt log record: {e}") };
        let kind = v["kind"].as_str().map(str::to_string);
        match kind.as_deref() {
            Some("step") => {
                let s: StepRecord = serde_json::from_value(v).map_err(bad)?;
                steps.epoch.push(s.epoch);
                steps.loss.push(s.loss);
                steps.active_fraction.push(s.active_fraction);
            }
            Some("epoch") => {
                let e: EpochRecord = serde_json::from_value(v).map_err(bad)?;
                epochs.push(EpochPoint { epoch: e.epoch, mean_loss: e.mean_loss, mean_active_fraction: e.mean_active_fraction, val_map_at_r: e.val_map_at_r });
            }
            _ => {}
        }
    }
    Ok((steps, epochs))
}

/// Validation metrics of `model` on `val` (Euclidean between L2-normalised embeddings; the
/// verification pairs sampled with the split seed, the same for every point).
fn validate(model: &margin_models::EmbeddingNet, val: &Dataset, cfg: &RunConfig, device: &Device) -> Result<ValMetrics, TrainError> {
    let emb = margin_models::embed_views(model, val, cfg.train.eval_batch, true, cfg.eval.tta, device);
    let e = Embeddings::new("validation embeddings", &emb, cfg.train.model.embedding_dim())?;
    let l = Labelled::new(e, "validation labels", &val.labels)?;
    let r = margin_eval::retrieval(&l, None, Distance::Euclidean, &RetrievalConfig { mrr: false, ..Default::default() })?;
    let vc = VerificationConfig { max_pairs: cfg.eval.max_pairs, seed: cfg.split.seed.unwrap_or(cfg.train.seed), ..Default::default() };
    let v = margin_eval::verification(&l, Distance::Euclidean, &vc)?;
    Ok(ValMetrics { map_at_r: r.map_at_r, precision_at_1: r.precision_at_1, r_precision: r.r_precision, auc: v.metrics.auc, eer: v.metrics.eer })
}

/// Runs (or resumes) `point` with configuration `cfg` in `dir`.
pub(crate) fn run_point(point: &Point, cfg: &RunConfig, dir: &Path, device: &Device, obs: &dyn RunObserver) -> Result<RunRecord, SweepError> {
    let started = Instant::now();
    let (loaded, val, validation) = split(cfg)?;
    let shape = loaded.train.sample_shape().to_vec();
    cfg.eval.tta.validate(&shape)?;
    let batch = cfg.train.sampler.classes_per_batch.saturating_mul(cfg.train.sampler.samples_per_class);
    crate::budget::check_training_with(&cfg.train, &shape, crate::job::param_classes(&loaded, &cfg.train), loaded.train.loader_memory(batch))?;
    let say = |line: &str| obs.info(point, line);
    let mut t = trainer(cfg, &shape, dir, device, &say)?;
    if let margin_data::card::Preprocessing::Image(p) = cfg.data.preprocessing(&shape) {
        t.set_pixel_map(crate::job::pixel_map(&p));
    }
    let text = crate::config_toml(cfg);
    let config_path = dir.join("config.toml");
    margin_data::write_atomic(&config_path, text.as_bytes())?;
    let fitted = t.fit_feed(&loaded.train, Some(&val), &mut Forward { point, obs });
    let (status, metrics) = match fitted {
        Ok(outcome) => (RunStatus::Finished, Some(validate(&outcome.model, &val, cfg, device)?)),
        Err(e @ TrainError::Diverged { .. }) => (RunStatus::Diverged { error: e.to_string() }, None),
        Err(e) => return Err(e.into()),
    };
    let (steps, epochs) = curves(dir)?;
    let hinge = has_hinge(&cfg.train.loss);
    let mut diagnosis = judge(hinge, &steps.loss, &steps.active_fraction);
    if metrics.is_none() {
        diagnosis.verdict = Verdict::Diverged;
    }
    let loss = serde_json::to_value(&cfg.train.loss).ok().and_then(|v| v["kind"].as_str().map(str::to_string)).unwrap_or_default();
    Ok(RunRecord {
        version: RECORD_VERSION,
        index: point.index,
        id: point.id(),
        params: point.params(),
        status,
        metrics,
        validation,
        loss,
        hinge,
        diagnosis,
        epochs,
        steps,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}
