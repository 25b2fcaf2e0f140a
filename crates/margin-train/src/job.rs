//! The training job as a library call: data → class-disjoint split → training with
//! per-epoch checkpoints → evaluation on unseen classes → `metrics.json`, the model and
//! its card in the run folder. `margin train` is this plus a progress bar and the HTML
//! report; a library user or a binding calls [`run_job`] directly.
//!
//! Resuming continues the run the folder holds and nothing else: before any data is
//! loaded the configuration and data are checked against the run's manifest `run.json`
//! (the `manifest` module), and the `[train]` section against the configuration the
//! checkpoint stored (also for run folders older than the manifest).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use margin_data::{Dataset, ModelCard, write_atomic};
use margin_eval::{Distance, Embeddings, EvalConfig, EvalReport, Labelled, OneShotReport};
use margin_models::{EmbeddingNet, embed_views};

use crate::manifest::RunManifest;
use crate::{Observer, TrainConfig, TrainError, Trainer, fault, save_model};

/// The whole run's configuration (`config.toml`): data, split, training, evaluation.
pub type RunConfig = margin_data::RunConfig<TrainConfig>;

/// The bundled default configuration (ConvNet-4 on Omniglot).
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/omniglot.toml");

/// Parses a configuration (TOML), naming `source` and the field on error, and refuses a
/// newer format version.
pub fn parse_config(text: &str, source: &str) -> Result<RunConfig, TrainError> {
    let cfg: RunConfig = toml::from_str(text).map_err(|e| TrainError::Config { file: source.to_string(), reason: e.to_string() })?;
    cfg.check_version(source)?;
    Ok(cfg)
}

/// The configuration as the TOML `config.toml` holds.
pub fn config_toml(cfg: &RunConfig) -> String {
    toml::to_string_pretty(cfg).expect("a run configuration serialises to TOML")
}

/// How [`run_job`] runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// The run folder (created if needed).
    pub out: PathBuf,
    /// Continue the run in `out` from its latest checkpoint.
    pub resume: bool,
    /// With `resume`: extend (or set) the number of epochs.
    pub epochs: Option<usize>,
    /// Evaluate on the test classes (and the untrained baseline, as configured).
    pub evaluate: bool,
}

/// What the final evaluation produced (for a report).
#[derive(Debug)]
pub struct Evaluation {
    /// Retrieval, clustering, verification and few-shot metrics on the test classes.
    pub report: EvalReport,
    /// The Omniglot 20-way one-shot runs, for Omniglot data.
    pub one_shot: Option<OneShotReport>,
    /// The test embeddings (`labels.len() × dim`, L2-normalised).
    pub embeddings: Vec<f32>,
    /// Their dimension.
    pub dim: usize,
    /// The test labels (indices into `class_names`).
    pub labels: Vec<i64>,
    /// The test set's class-name table (what outputs show for a label).
    pub class_names: Vec<String>,
    /// The report's neighbour gallery (top-5 neighbours, pictures of the shown samples).
    pub gallery: Option<crate::gallery::Gallery>,
}

/// What a finished job returns.
#[derive(Debug)]
pub struct JobOutcome {
    /// `metrics.json` as written.
    pub metrics: serde_json::Value,
    /// The final evaluation, when it ran.
    pub evaluation: Option<Evaluation>,
}

/// Progress of a job: the trainer's callbacks plus messages about the data and phases.
pub trait JobObserver: Observer {
    /// A line about the job (what was loaded, where the run is).
    fn info(&mut self, _line: &str) {}
}

/// Runs the job of `cfg` in `opts.out`.
pub fn run_job(cfg: &RunConfig, opts: &JobOptions, device: &Device, obs: &mut dyn JobObserver) -> Result<JobOutcome, TrainError> {
    let started = Instant::now();
    let share_given = cfg.split.calibration_fraction.is_some();
    let cfg = &with_calibration_default(cfg);
    crate::config::validate_run(cfg)?;
    let out = &opts.out;
    let manifest = if opts.resume { RunManifest::read(out)? } else { None };
    if let Some(m) = &manifest {
        m.check(cfg, out)?;
    }
    let t_load = Instant::now();
    let mut loaded = crate::feed::load(cfg)?;
    let load_seconds = t_load.elapsed().as_secs_f64();
    let held = hold_out(&mut loaded, cfg, share_given, obs)?;
    obs.info(&describe(&loaded, load_seconds));
    for (file, why) in &loaded.skipped {
        obs.warn(&format!("skipped a bad image (data.skip_bad): {file}: {why}"));
    }
    let shape = loaded.train.sample_shape().to_vec();
    cfg.eval.tta.validate(&shape)?;
    let batch = cfg.train.sampler.classes_per_batch.saturating_mul(cfg.train.sampler.samples_per_class);
    crate::budget::check_training_with(&cfg.train, &shape, param_classes(&loaded, &cfg.train), loaded.train.loader_memory(batch))?;
    std::fs::create_dir_all(out).map_err(|e| margin_data::DataError::io(out, e))?;
    let mut trainer = if opts.resume {
        let t = Trainer::resume(out, &shape, opts.epochs, device)?;
        check_stored_train(cfg, t.config(), out)?;
        t
    } else {
        Trainer::new(cfg.train.clone(), &shape, out, device)?
    };
    if let margin_data::card::Preprocessing::Image(p) = cfg.data.preprocessing(&shape) {
        trainer.set_pixel_map(pixel_map(&p));
    }
    let config_path = out.join("config.toml");
    let text = config_toml(cfg);
    fault::step("config.toml", &config_path, text.as_bytes(), || write_atomic(&config_path, text.as_bytes()))?;
    if manifest.is_none() {
        // A fresh run, or a run folder from before manifests: from now on it has one.
        RunManifest::of(cfg)?.write(out)?;
    }
    if opts.resume {
        obs.info(&format!("resuming {} after epoch {} of {}", out.display(), trainer.state().epoch, trainer.config().epochs));
    } else {
        obs.info(&format!("run folder: {}", out.display()));
    }
    let untrained = match &loaded.test {
        Some(t) if opts.evaluate && cfg.eval.untrained_baseline => {
            let fresh;
            let model = if opts.resume {
                // The initial network of this run, rebuilt from the seed.
                // (As `Trainer::with_sink` draws it: pretrained weights, CPU-drawn on other devices.)
                fresh = crate::device::seeded(device, cfg.train.seed, || crate::device::init_model(&cfg.train, &shape, device))?;
                &fresh
            } else {
                trainer.model()
            };
            Some(baseline(model, t, cfg, device)?)
        }
        _ => None,
    };
    let outcome = trainer.fit_feed(&loaded.train, loaded.val.as_ref(), obs)?;
    let skipped: Vec<_> = loaded.skipped.iter().cloned().chain(loaded.train.skipped()).collect();
    let mut card = ModelCard::new(cfg.train.model.clone(), cfg.data.preprocessing(&shape), true);
    card.tta = cfg.eval.tta;
    if let Some((set, h)) = &held {
        let dim = cfg.train.model.embedding_dim();
        card.thresholds = crate::calibrate::calibrate(&outcome.model, set, h, dim, cfg.train.eval_batch, cfg.eval.tta, cfg.eval.max_pairs, cfg.train.seed, device)?;
        let recipe = crate::dedup_calibrate::CopyRecipe { augment: cfg.train.augment, levels: levels_map(&cfg.data.preprocessing(&shape)), seed: cfg.train.seed };
        let source = crate::calibrate::source_words(h);
        card.dedup = crate::dedup_calibrate::calibrate_dedup(&outcome.model, set, &source, &recipe, cfg.train.eval_batch, cfg.eval.tta, cfg.eval.max_pairs, device)?;
    }
    debug_assert_eq!(card.sample_shape, shape, "the preprocessing describes the loaded samples");
    save_model(&outcome.model, &card, out)?;
    let st = &outcome.state;
    let images_per_s = st.images_seen as f64 / st.train_seconds.max(1e-9);
    let mut metrics = serde_json::json!({
        "margin_version": env!("CARGO_PKG_VERSION"),
        "seed": cfg.train.seed,
        "train": {
            "epochs": st.epoch,
            "steps": st.step,
            "images_seen": st.images_seen,
            "train_seconds": st.train_seconds,
            "images_per_s": images_per_s,
            "load_seconds": load_seconds,
            "best_validation": st.best.map(|(m, e)| serde_json::json!({"map_at_r": m, "epoch": e})),
            "classes": loaded.train_classes,
            "samples": loaded.train.labels().len(),
            "held_out": held.as_ref().map(|(_, h)| serde_json::json!({"kind": h.kind, "classes": h.classes.len(), "samples": h.samples, "rule": h.rule})),
            "lazy_loading": matches!(loaded.train, crate::feed::Feed::Lazy(_)),
            "skipped_images": skipped.iter().map(|(f, why)| serde_json::json!({"file": f, "error": why})).collect::<Vec<_>>(),
        },
        "reference": {
            "what": "PyTorch 2 + pytorch-metric-learning, same ConvNet-4, 35 epochs, 2 CPU cores (from issue 5)",
            "images_per_s": 1321.0,
            "train_seconds": 509.0,
            "precision_at_1": 0.776, "r_precision": 0.521, "map_at_r": 0.430, "oneshot_20way_acc": 0.8975
        },
    });
    if let Some(u) = untrained {
        metrics["untrained"] = u;
    }
    let mut evaluation = None;
    if opts.evaluate && let Some(test) = &loaded.test {
        let t_eval = Instant::now();
        let mut e = evaluate_test(&outcome.model, test, cfg, device)?;
        metrics["test"] = serde_json::to_value(&e.report).expect("a report serialises");
        if let Some(g) = &e.gallery {
            metrics["test_by_class"] = crate::gallery::by_class(g, &e.labels, &|y| test.class_name(y).to_string());
        }
        if let Some(p) = &loaded.one_shot {
            let r = omniglot_one_shot(&outcome.model, p, &shape, cfg.eval.tta, device)?;
            metrics["omniglot_one_shot"] = serde_json::to_value(&r).expect("a report serialises");
            e.one_shot = Some(r);
        }
        metrics["eval_seconds"] = serde_json::json!(t_eval.elapsed().as_secs_f64());
        evaluation = Some(e);
    }
    metrics["total_seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    let bytes = serde_json::to_vec_pretty(&metrics).expect("metrics serialise");
    let metrics_path = out.join("metrics.json");
    fault::step("metrics.json", &metrics_path, &bytes, || write_atomic(&metrics_path, &bytes))?;
    Ok(JobOutcome { metrics, evaluation })
}

/// Refuses a `config.toml` whose `[train]` section is not the one the checkpoint stored
/// (`epochs` aside: a resume may extend the run).
fn check_stored_train(cfg: &RunConfig, stored: &TrainConfig, out: &Path) -> Result<(), TrainError> {
    let mut a = stored.clone();
    let mut b = cfg.train.clone();
    (a.epochs, b.epochs) = (0, 0);
    if a == b {
        return Ok(());
    }
    let text = |t: &TrainConfig| toml::to_string(t).unwrap_or_default();
    let fields: Vec<String> = crate::manifest::differing_keys(&text(&a), &text(&b)).into_iter().map(|k| format!("train.{k}")).collect();
    let file = out.join("config.toml");
    Err(TrainError::Resume {
        run: out.to_path_buf(),
        reason: format!(
            "{} does not match the configuration stored with the run's checkpoint ({} changed): it was edited after the run started — to train with the edited file, start a new run: `margin train --config {} --out NEWDIR`",
            file.display(),
            if fields.is_empty() { "[train]".to_string() } else { fields.join(", ") },
            file.display()
        ),
    })
}

fn describe(loaded: &crate::feed::Loaded, load_seconds: f64) -> String {
    format!(
        "data: {} train samples ({} classes{}){}{}; loaded in {load_seconds:.1}s",
        loaded.train.labels().len(),
        loaded.train_classes,
        if matches!(loaded.train, crate::feed::Feed::Lazy(_)) { ", decoded per batch" } else { "" },
        loaded.val.as_ref().map(|v| format!(", {} validation ({} classes)", v.len(), v.classes().len())).unwrap_or_default(),
        loaded.test.as_ref().map(|v| format!(", {} test ({} classes, unseen)", v.len(), v.classes().len())).unwrap_or_default(),
    )
}

/// The full evaluation report of `model` on the test classes.
fn evaluate_test(model: &EmbeddingNet, test: &Dataset, cfg: &RunConfig, device: &Device) -> Result<Evaluation, TrainError> {
    let emb = embed_views(model, test, cfg.train.eval_batch, true, cfg.eval.tta, device);
    let dim = cfg.train.model.embedding_dim();
    let e = Embeddings::new("test embeddings", &emb, dim)?;
    let l = Labelled::new(e, "test labels", &test.labels)?;
    let mut ec = EvalConfig::default();
    if let Some(v) = ec.verification.as_mut() {
        v.max_pairs = cfg.eval.max_pairs;
        v.seed = cfg.train.seed;
    }
    if let Some(c) = ec.clustering.as_mut() {
        c.seed = cfg.train.seed;
    }
    if let Some(f) = ec.few_shot.as_mut() {
        f.seed = cfg.train.seed;
    }
    let report = margin_eval::evaluate(&l, None, &ec)?;
    let map = levels_map(&cfg.data.preprocessing(&test.sample_shape));
    let gallery = crate::gallery::gallery(&l.embeddings, test, map, cfg.train.seed)?;
    Ok(Evaluation { report, one_shot: None, embeddings: emb, dim, labels: test.labels.clone(), class_names: test.classes.clone(), gallery })
}

/// How samples of preprocessing `p` map back to picture levels in `[0, 1]` (for display
/// and for the dedup copies' re-encoding); `None` for feature vectors.
fn levels_map(p: &margin_data::card::Preprocessing) -> Option<crate::photo_augment::PixelMap> {
    match p {
        margin_data::card::Preprocessing::Image(p) => Some(pixel_map(p)),
        // Ink back to grey (1 = white paper).
        margin_data::card::Preprocessing::GreyImage { invert: true, .. } => Some(crate::photo_augment::PixelMap { mean: [1.0; 3], std: [-1.0; 3] }),
        margin_data::card::Preprocessing::GreyImage { invert: false, .. } => Some(crate::photo_augment::PixelMap::IDENTITY),
        margin_data::card::Preprocessing::Features { .. } => None,
    }
}

/// The configuration with `split.calibration_fraction` made explicit when there are no
/// validation classes (the default share, written into the run's `config.toml` and its
/// manifest, so a resume holds out the same classes and a run folder from before the
/// share is not resumed with a different training set).
fn with_calibration_default(cfg: &RunConfig) -> RunConfig {
    let mut c = cfg.clone();
    let has_val = c.split.val_fraction > 0.0 || c.split.val_classes.as_ref().is_some_and(|v| !v.is_empty());
    if !has_val && c.split.calibration_fraction.is_none() {
        c.split.calibration_fraction = Some(margin_data::calibration::DEFAULT_CALIBRATION_FRACTION);
    }
    c
}

/// The held-out classes the card's thresholds are measured on: the validation classes,
/// else the calibration share, taken out of `loaded.train` here (never trained on).
/// The number of classes a loss with class parameters holds parameters for: the training
/// set's distinct labels (the trainer's `ClassMap`), four times as many with `rotated_classes`.
pub(crate) fn param_classes(loaded: &crate::feed::Loaded, cfg: &crate::TrainConfig) -> usize {
    let n = crate::param_loss::ClassMap::of(loaded.train.labels()).len();
    if cfg.augment.is_some_and(|a| a.rotated_classes) { 4 * n } else { n }
}

fn hold_out(loaded: &mut crate::feed::Loaded, cfg: &RunConfig, given: bool, obs: &mut dyn JobObserver) -> Result<Option<(Dataset, margin_data::thresholds::HeldOut)>, TrainError> {
    use margin_data::thresholds::HeldOutKind;
    if let Some(v) = &loaded.val {
        let rule = "the configuration's validation classes (split.val_fraction / split.val_classes), held out of training".to_string();
        return Ok(Some((v.clone(), crate::calibrate::held_out(v, HeldOutKind::Validation, rule))));
    }
    match std::mem::replace(&mut loaded.share, crate::feed::Share::NotNeeded) {
        crate::feed::Share::Held { calibration, rule } => {
            if let Some(t) = &loaded.test {
                margin_data::check_no_leakage("calibration", &calibration, "test", t)?;
            }
            let h = crate::calibrate::held_out(&calibration, HeldOutKind::CalibrationShare, rule);
            obs.info(&format!("calibration share: {} classes ({} samples) held out of training for the model card's thresholds", h.classes.len(), h.samples));
            Ok(Some((calibration, h)))
        }
        crate::feed::Share::Skipped(why) => {
            let line = format!("no calibration share ({why}): the model card will have no calibrated thresholds");
            // Asked for in the configuration: a warning; the default on a small pool: a note.
            let fraction = cfg.split.calibration_fraction.unwrap_or(0.0);
            if given && fraction > 0.0 { obs.warn(&line) } else { obs.info(&line) }
            Ok(None)
        }
        crate::feed::Share::NotNeeded => Ok(None),
    }
}

fn baseline(model: &EmbeddingNet, test: &Dataset, cfg: &RunConfig, device: &Device) -> Result<serde_json::Value, TrainError> {
    let emb = embed_views(model, test, cfg.train.eval_batch, true, cfg.eval.tta, device);
    let e = Embeddings::new("untrained test embeddings", &emb, cfg.train.model.embedding_dim())?;
    let l = Labelled::new(e, "test labels", &test.labels)?;
    let r = margin_eval::retrieval(&l, None, Distance::Euclidean, &margin_eval::RetrievalConfig { mrr: false, ..Default::default() })?;
    Ok(serde_json::json!({"precision_at_1": r.precision_at_1, "r_precision": r.r_precision, "map_at_r": r.map_at_r}))
}

/// The 20 standard 20-way one-shot runs of `all_runs.zip` at `path`, the images
/// preprocessed as the training data (ink, area-resized to the model's input).
pub fn omniglot_one_shot(model: &EmbeddingNet, path: &Path, shape: &[usize], tta: margin_data::tta::TestTimeAugment, device: &Device) -> Result<OneShotReport, TrainError> {
    let bench = margin_data::omniglot::OmniglotOneShot::load(path)?;
    if shape.len() != 3 || shape[0] != 1 || shape[1] != shape[2] {
        return Err(margin_data::DataError::format(path, format!("the one-shot runs need a model on square grey images, not {shape:?}")).into());
    }
    let feats = bench.ink_images(shape[1]);
    let labels = (0..bench.images.len() as i64).collect();
    let ds = Dataset::new(path.display().to_string(), feats, shape.to_vec(), labels)?;
    let emb = embed_views(model, &ds, 1024, true, tta, device);
    let e = Embeddings::new("one-shot embeddings", &emb, emb.len() / ds.len().max(1))?;
    Ok(margin_eval::one_shot_accuracy(&bench.runs, &e, Distance::Euclidean)?)
}

/// How a picture spec's values map back to levels in `[0, 1]` (the photo jitter's units).
pub(crate) fn pixel_map(p: &margin_data::preprocess::ImagePreprocess) -> crate::photo_augment::PixelMap {
    use margin_data::preprocess::{IMAGENET_MEAN, IMAGENET_STD, Normalize, Scaling};
    let scale = if p.scaling == Scaling::Byte { 255.0 } else { 1.0 };
    let (mean, std) = match p.normalize {
        Normalize::None => ([0.0; 3], [1.0; 3]),
        Normalize::Imagenet => (IMAGENET_MEAN, IMAGENET_STD),
        Normalize::MeanStd { mean, std } => (mean, std),
    };
    crate::photo_augment::PixelMap { mean: mean.map(|m| m / scale), std: std.map(|s| s / scale) }
}
