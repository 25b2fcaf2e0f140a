//! `margin train`: train an embedding model end to end — data, class-disjoint split,
//! training with per-epoch checkpoints, evaluation on unseen classes, report.
//!
//! `margin train` alone trains ConvNet-4 on the bundled Omniglot background set
//! (configs/omniglot.toml, compiled in) and evaluates on the 659 evaluation characters.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use margin::data::{self, ClassSplit, Dataset};
use margin::train::{self, EpochRecord, ModelCard, Observer, StepRecord, TrainConfig, Trainer};
use margin_eval::{Distance, Embeddings, EvalConfig, Labelled, OmniglotOneShot};
use serde::{Deserialize, Serialize};

/// The bundled default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../../../../configs/omniglot.toml");

/// Arguments of `margin train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// TOML configuration (default: the bundled Omniglot configuration).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output folder (default: a new folder under the config's `output_root`, `runs/`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its latest complete checkpoint.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "out"])]
    pub resume: Option<PathBuf>,
    /// Override `train.epochs` (with --resume: extend the run).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override `train.seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override `train.lr`.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override `train.sampler.batches_per_epoch`.
    #[arg(long)]
    pub batches_per_epoch: Option<usize>,
    /// Override `split.val_fraction` (validation classes held out of training).
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Skip the final evaluation and report.
    #[arg(long)]
    pub no_eval: bool,
    /// Only print errors and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where the data come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// Omniglot: train on images_background.npz, test on images_evaluation.npz (+ all_runs.zip).
    Omniglot {
        /// Folder with the two .npz files and all_runs.zip.
        dir: PathBuf,
        /// Side of the downsampled images.
        #[serde(default = "default_size")]
        image_size: usize,
    },
    /// `root/<class>/*.png|pgm` folder or zip.
    ImageFolder {
        /// Training pool.
        path: PathBuf,
        /// Separate test set (same layout), else split by class.
        #[serde(default)]
        test: Option<PathBuf>,
        /// Side of the resized images.
        #[serde(default = "default_size")]
        image_size: usize,
        /// Ink = 1 − grey (dark drawings on light paper).
        #[serde(default)]
        invert: bool,
    },
    /// Feature matrix in .npz (x/y entries) or .npy (+ labels .npy).
    Features {
        /// Features.
        path: PathBuf,
        /// Labels (.npy) for a .npy feature file.
        #[serde(default)]
        labels: Option<PathBuf>,
        /// Separate test features.
        #[serde(default)]
        test: Option<PathBuf>,
        /// Labels of the separate test features.
        #[serde(default)]
        test_labels: Option<PathBuf>,
    },
    /// CSV (or .csv.gz): one label column plus numeric features.
    Csv {
        /// The file.
        path: PathBuf,
        /// Label column (negative: from the end).
        #[serde(default = "default_label_column")]
        label_column: i64,
        /// Separate test CSV.
        #[serde(default)]
        test: Option<PathBuf>,
        /// Divide every feature by this (e.g. 16 for 0..16 pixel values).
        #[serde(default = "one")]
        scale: f64,
    },
}

fn default_size() -> usize {
    28
}
fn default_label_column() -> i64 {
    -1
}
fn one() -> f64 {
    1.0
}

/// Class-disjoint split of the training pool.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Fraction of the pool's classes held out for validation.
    #[serde(default)]
    pub val_fraction: f64,
    /// Fraction of the pool's classes held out as test (when there is no separate test set).
    #[serde(default)]
    pub test_fraction: f64,
    /// Seed of the class shuffle (default: `train.seed`).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Explicit training classes (with `test_classes`), instead of fractions.
    #[serde(default)]
    pub train_classes: Option<Vec<i64>>,
    /// Explicit validation classes.
    #[serde(default)]
    pub val_classes: Option<Vec<i64>>,
    /// Explicit test classes.
    #[serde(default)]
    pub test_classes: Option<Vec<i64>>,
}

/// Final evaluation settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// Verification pairs: all when at most this many, else a seeded sample.
    #[serde(default = "default_pairs")]
    pub max_pairs: usize,
    /// Classes shown in the report's 2-D map.
    #[serde(default = "default_map_classes")]
    pub map_classes: usize,
    /// Also evaluate the untrained network (the baseline in metrics.json).
    #[serde(default = "yes")]
    pub untrained_baseline: bool,
}

fn default_pairs() -> usize {
    1_000_000
}
fn default_map_classes() -> usize {
    12
}
fn yes() -> bool {
    true
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec { max_pairs: default_pairs(), map_classes: default_map_classes(), untrained_baseline: true }
    }
}

/// The whole run: what `config.toml` in the output folder holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Parent folder of new runs.
    #[serde(default = "default_root")]
    pub output_root: PathBuf,
    /// Input data.
    pub data: DataSpec,
    /// Split.
    #[serde(default)]
    pub split: SplitSpec,
    /// Training.
    pub train: TrainConfig,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalSpec,
}

fn default_root() -> PathBuf {
    PathBuf::from("runs")
}

/// Parses and validates a configuration, naming the file and field on error.
pub fn parse_config(text: &str, source: &str) -> anyhow::Result<RunConfig> {
    let cfg: RunConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{source}: invalid configuration: {e}"))?;
    Ok(cfg)
}

/// Resolves a data path: as given if it exists, else relative to the repository
/// (so `margin train` works from any folder of a checkout).
fn resolve(p: &Path) -> PathBuf {
    if p.exists() || p.is_absolute() {
        return p.to_path_buf();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p);
    if repo.exists() { repo } else { p.to_path_buf() }
}

/// The loaded data: training pool, optional validation and test sets.
pub struct Loaded {
    /// Training classes.
    pub train: Dataset,
    /// Validation classes (held out of training).
    pub val: Option<Dataset>,
    /// Test classes (unseen).
    pub test: Option<Dataset>,
    /// Omniglot one-shot benchmark file, when the data are Omniglot.
    pub one_shot: Option<PathBuf>,
}

/// Loads and splits the data of `cfg`, enforcing class-disjointness.
pub fn load_data(cfg: &RunConfig) -> anyhow::Result<Loaded> {
    let seed = cfg.split.seed.unwrap_or(cfg.train.seed);
    let (pool, test, one_shot) = match &cfg.data {
        DataSpec::Omniglot { dir, image_size } => {
            let dir = resolve(dir);
            let o = data::load_omniglot(&dir, *image_size).with_context(|| format!("loading Omniglot from {}", dir.display()))?;
            (o.background, Some(o.evaluation), Some(dir.join("all_runs.zip")))
        }
        DataSpec::ImageFolder { path, test, image_size, invert } => {
            let (d, _) = data::load_image_folder(&resolve(path), *image_size, *invert)?;
            let t = test.as_ref().map(|t| data::load_image_folder(&resolve(t), *image_size, *invert)).transpose()?.map(|x| x.0);
            (d, t, None)
        }
        DataSpec::Features { path, labels, test, test_labels } => {
            let d = data::load_features(&resolve(path), labels.as_deref().map(resolve).as_deref())?;
            let t = test.as_ref().map(|t| data::load_features(&resolve(t), test_labels.as_deref().map(resolve).as_deref())).transpose()?;
            (d, t, None)
        }
        DataSpec::Csv { path, label_column, test, scale } => {
            let mut d = data::load_csv(&resolve(path), *label_column)?;
            let mut t = test.as_ref().map(|t| data::load_csv(&resolve(t), *label_column)).transpose()?;
            if *scale != 1.0 {
                if !(scale.is_finite() && *scale > 0.0) {
                    bail!("data.scale = {scale}: must be finite and > 0");
                }
                let s = (1.0 / scale) as f32;
                d.features.iter_mut().for_each(|v| *v *= s);
                if let Some(t) = t.as_mut() {
                    t.features.iter_mut().for_each(|v| *v *= s);
                }
            }
            (d, t, None)
        }
    };
    let sp = &cfg.split;
    let classes = pool.classes();
    let split = if sp.train_classes.is_some() || sp.test_classes.is_some() || sp.val_classes.is_some() {
        if sp.val_fraction > 0.0 || sp.test_fraction > 0.0 {
            bail!(
                "split.val_fraction / split.test_fraction (or --val-fraction) cannot be combined with explicit \
                 split.train_classes / val_classes / test_classes: name the validation classes in split.val_classes"
            );
        }
        let given: std::collections::BTreeSet<i64> = classes.iter().copied().collect();
        for (name, list) in [("split.train_classes", &sp.train_classes), ("split.val_classes", &sp.val_classes), ("split.test_classes", &sp.test_classes)] {
            if let Some(l) = list
                && let Some(c) = l.iter().find(|c| !given.contains(c))
            {
                bail!("{name} names class {c}, which is not in {}", pool.name);
            }
        }
        let val = sp.val_classes.clone().unwrap_or_default();
        let test = sp.test_classes.clone().unwrap_or_default();
        let train = sp.train_classes.clone().unwrap_or_else(|| classes.iter().copied().filter(|c| !val.contains(c) && !test.contains(c)).collect());
        ClassSplit { train, val, test }
    } else {
        ClassSplit::random(&classes, sp.val_fraction, sp.test_fraction, seed).context("split")?
    };
    split.check().context("the configured split is not class-disjoint")?;
    let train = pool.with_classes(&split.train, format!("{} [train classes]", pool.name));
    let val = (!split.val.is_empty()).then(|| pool.with_classes(&split.val, format!("{} [validation classes]", pool.name)));
    let mut test_set = (!split.test.is_empty()).then(|| pool.with_classes(&split.test, format!("{} [test classes]", pool.name)));
    if let Some(t) = test {
        test_set = Some(match test_set {
            Some(s) => s.concat(&t, "test")?,
            None => t,
        });
    }
    if train.is_empty() {
        bail!("no training samples left after the split");
    }
    if let Some(t) = &test_set {
        data::check_no_leakage("train", &train.labels, "test", &t.labels).context("refusing to train")?;
    }
    if let Some(v) = &val {
        data::check_no_leakage("train", &train.labels, "validation", &v.labels).context("refusing to train")?;
    }
    Ok(Loaded { train, val, test: test_set, one_shot })
}

struct Progress {
    bar: Option<ProgressBar>,
    steps: usize,
    quiet: bool,
}

impl Observer for Progress {
    fn start(&mut self, first: usize, epochs: usize, steps: usize) {
        self.steps = steps;
        if !self.quiet {
            let total = (epochs + 1 - first.min(epochs + 1)) * steps;
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps ({eta} left) {msg}")
                    .expect("valid template"),
            );
            self.bar = Some(bar);
        }
    }
    fn step(&mut self, s: &StepRecord) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if s.step % 5 == 0 {
                b.set_message(format!("epoch {} loss {:.4} active {:.3}", s.epoch, s.loss, s.active_fraction));
            }
        }
    }
    fn epoch(&mut self, e: &EpochRecord) {
        let mut val = e.val_map_at_r.map(|m| format!("  val MAP@R {m:.4}")).unwrap_or_default();
        if let Some(o) = e.val_one_shot {
            val.push_str(&format!("  one-shot {:.1}%", 100.0 * o));
        }
        let line = format!(
            "epoch {:>3}: loss {:.4}  active {:.3}  d_ap {:.3}  d_an {:.3}  {:.0} img/s{val}",
            e.epoch,
            e.mean_loss,
            e.mean_active_fraction,
            e.mean_ap_dist.unwrap_or(f64::NAN),
            e.mean_an_dist.unwrap_or(f64::NAN),
            e.images_per_s
        );
        match &self.bar {
            Some(b) => b.println(line),
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
    }
    fn warn(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(format!("warning: {msg}")),
            None => eprintln!("warning: {msg}"),
        }
    }
}

fn write_json(path: &Path, v: &impl Serialize) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(v)?;
    data::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

fn new_run_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    for i in 0..1000 {
        let p = root.join(format!("run-{secs}{}", if i == 0 { String::new() } else { format!("-{i}") }));
        if !p.exists() {
            return Ok(p);
        }
    }
    bail!("cannot find a free run folder under {}", root.display())
}

/// Runs `margin train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        rayon_threads(t);
    }
    let started = Instant::now();
    let (mut cfg, out, resume) = match &args.resume {
        Some(dir) => {
            let p = dir.join("config.toml");
            let text = std::fs::read_to_string(&p).with_context(|| format!("reading {} (is {} a run folder?)", p.display(), dir.display()))?;
            (parse_config(&text, &p.display().to_string())?, dir.clone(), true)
        }
        None => {
            let cfg = match &args.config {
                Some(p) => {
                    let text = std::fs::read_to_string(p).with_context(|| format!("reading configuration {}", p.display()))?;
                    parse_config(&text, &p.display().to_string())?
                }
                None => parse_config(DEFAULT_CONFIG, "the bundled configs/omniglot.toml")?,
            };
            let out = match &args.out {
                Some(o) => o.clone(),
                None => new_run_dir(&cfg.output_root)?,
            };
            if out.join("checkpoint.json").exists() {
                bail!(
                    "{} already holds a run (checkpoint.json); continue it with `margin train --resume {}` or choose another --out",
                    out.display(),
                    out.display()
                );
            }
            (cfg, out, false)
        }
    };
    if let Some(e) = args.epochs {
        cfg.train.epochs = e;
    }
    if let Some(s) = args.seed {
        cfg.train.seed = s;
    }
    if let Some(l) = args.lr {
        cfg.train.lr = l;
    }
    if let Some(b) = args.batches_per_epoch {
        cfg.train.sampler.batches_per_epoch = Some(b);
    }
    if let Some(v) = args.val_fraction {
        cfg.split.val_fraction = v;
    }
    cfg.train.validate().context("invalid configuration")?;
    let t_load = Instant::now();
    let loaded = load_data(&cfg)?;
    let load_seconds = t_load.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!(
            "data: {} train samples ({} classes){}{}; loaded in {load_seconds:.1}s",
            loaded.train.len(),
            loaded.train.classes().len(),
            loaded.val.as_ref().map(|v| format!(", {} validation ({} classes)", v.len(), v.classes().len())).unwrap_or_default(),
            loaded.test.as_ref().map(|v| format!(", {} test ({} classes, unseen)", v.len(), v.classes().len())).unwrap_or_default(),
        );
    }
    let device = margin::burn::tensor::Device::flex().autodiff();
    let shape = loaded.train.sample_shape.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating output folder {}", out.display()))?;
    let trainer = if resume {
        Trainer::resume(&out, &shape, args.epochs, &device).with_context(|| format!("resuming from {}", out.display()))?
    } else {
        let t = Trainer::new(cfg.train.clone(), &shape, &out, &device).with_context(|| format!("starting a run in {}", out.display()))?;
        let text = toml::to_string_pretty(&cfg).context("serialising the configuration")?;
        data::write_atomic(&out.join("config.toml"), text.as_bytes())?;
        t
    };
    if resume {
        let text = toml::to_string_pretty(&cfg).context("serialising the configuration")?;
        data::write_atomic(&out.join("config.toml"), text.as_bytes())?;
        if !args.quiet {
            eprintln!("resuming {} after epoch {} of {}", out.display(), trainer.state().epoch, cfg.train.epochs);
        }
    } else if !args.quiet {
        eprintln!("run folder: {}", out.display());
    }
    let untrained = if !args.no_eval && cfg.eval.untrained_baseline {
        match &loaded.test {
            Some(t) if resume => {
                // The initial network of this run, rebuilt from the seed.
                let d = device.clone();
                d.seed(cfg.train.seed);
                let fresh = cfg.train.model.init(&shape, &d)?;
                Some(baseline(&fresh, t, &cfg, &device)?)
            }
            Some(t) => Some(baseline(trainer.model(), t, &cfg, &device)?),
            None => None,
        }
    } else {
        None
    };
    let mut progress = Progress { bar: None, steps: 0, quiet: args.quiet };
    let outcome = trainer.fit(&loaded.train, loaded.val.as_ref(), &mut progress).context("training")?;
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let card = ModelCard { model: cfg.train.model.clone(), sample_shape: shape.clone(), normalize_output: true };
    train::save_safetensors(&outcome.model, &out.join("model.safetensors"))?;
    write_json(&out.join("model.json"), &card)?;
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
            "classes": loaded.train.classes().len(),
            "samples": loaded.train.len(),
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
    if !args.no_eval && let Some(test) = &loaded.test {
        let t_eval = Instant::now();
        let emb = train::embed(&outcome.model, test, cfg.train.eval_batch, true, &device);
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
        let report = margin_eval::evaluate(&l, None, &ec).context("evaluating the test embeddings")?;
        metrics["test"] = serde_json::to_value(&report)?;
        let mut one_shot = None;
        if let Some(p) = &loaded.one_shot {
            let r = omniglot_one_shot(&outcome.model, p, &shape, &device).with_context(|| format!("one-shot runs of {}", p.display()))?;
            metrics["omniglot_one_shot"] = serde_json::to_value(&r)?;
            one_shot = Some(r);
        }
        metrics["eval_seconds"] = serde_json::json!(t_eval.elapsed().as_secs_f64());
        metrics["total_seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
        write_json(&out.join("metrics.json"), &metrics)?;
        let log = std::fs::read_to_string(out.join("train_log.jsonl")).unwrap_or_default();
        let html = crate::report::render(&crate::report::ReportInput {
            title: format!("margin · {}", out.display()),
            config_toml: toml::to_string_pretty(&cfg).unwrap_or_default(),
            log: &log,
            eval: &report,
            one_shot: one_shot.as_ref(),
            metrics: &metrics,
            embeddings: &emb,
            dim,
            labels: &test.labels,
            map_classes: cfg.eval.map_classes,
            seed: cfg.train.seed,
        });
        data::write_atomic(&out.join("report.html"), html.as_bytes())?;
        print_summary(&out, &metrics);
    } else {
        metrics["total_seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
        write_json(&out.join("metrics.json"), &metrics)?;
        println!("trained {} epochs in {:.1}s ({images_per_s:.0} images/s); model in {}", st.epoch, st.train_seconds, out.display());
    }
    Ok(())
}

fn baseline(model: &margin::model::EmbeddingNet, test: &Dataset, cfg: &RunConfig, device: &margin::burn::tensor::Device) -> anyhow::Result<serde_json::Value> {
    let emb = train::embed(model, test, cfg.train.eval_batch, true, device);
    let e = Embeddings::new("untrained test embeddings", &emb, cfg.train.model.embedding_dim())?;
    let l = Labelled::new(e, "test labels", &test.labels)?;
    let r = margin_eval::retrieval(&l, None, Distance::Euclidean, &margin_eval::RetrievalConfig { mrr: false, ..Default::default() })?;
    Ok(serde_json::json!({"precision_at_1": r.precision_at_1, "r_precision": r.r_precision, "map_at_r": r.map_at_r}))
}

/// The 20 standard 20-way one-shot runs, images preprocessed like the training data.
pub fn omniglot_one_shot(
    model: &margin::model::EmbeddingNet,
    path: &Path,
    shape: &[usize],
    device: &margin::burn::tensor::Device,
) -> anyhow::Result<margin_eval::OneShotReport> {
    let bench = OmniglotOneShot::load(path)?;
    let size = shape[1];
    let mut feats = Vec::with_capacity(bench.images.len() * size * size);
    let mut dst = vec![0f32; size * size];
    for img in &bench.images {
        let ink: Vec<f32> = img.pixels.iter().map(|&p| if p >= 128 { 0.0 } else { 1.0 }).collect();
        data::area_resize(&ink, img.height as usize, img.width as usize, &mut dst, size, shape[2]);
        feats.extend_from_slice(&dst);
    }
    let labels = (0..bench.images.len() as i64).collect();
    let ds = Dataset::new(path.display().to_string(), feats, shape.to_vec(), labels)?;
    let emb = train::embed(model, &ds, 1024, true, device);
    let e = Embeddings::new("one-shot embeddings", &emb, emb.len() / ds.len())?;
    Ok(bench.accuracy(&e, Distance::Euclidean)?)
}

fn print_summary(out: &Path, m: &serde_json::Value) {
    let r = &m["test"]["retrieval"];
    let f = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.4}")).unwrap_or("-".into());
    println!("run: {}", out.display());
    println!(
        "train: {} epochs, {:.1}s, {:.0} images/s (PyTorch reference: 1321 images/s)",
        m["train"]["epochs"], m["train"]["train_seconds"].as_f64().unwrap_or(0.0), m["train"]["images_per_s"].as_f64().unwrap_or(0.0)
    );
    let recall: Vec<String> = r["recall_at"].as_array().map(|a| a.iter().map(|x| format!("R@{} {}", x["k"], f(&x["value"]))).collect()).unwrap_or_default();
    println!("test: P@1 {}  R-Precision {}  MAP@R {}  {}", f(&r["precision_at_1"]), f(&r["r_precision"]), f(&r["map_at_r"]), recall.join("  "));
    let v = &m["test"]["verification"]["metrics"];
    println!("verification: AUC {}  EER {}  NMI {}", f(&v["auc"]), f(&v["eer"]), f(&m["test"]["clustering"]["nmi"]));
    if let Some(o) = m.get("omniglot_one_shot") {
        println!("omniglot 20-way one-shot: {} ({} / {})", f(&o["accuracy"]), o["correct"], o["trials"]);
    }
    if let Some(u) = m.get("untrained") {
        println!("untrained baseline: MAP@R {}  P@1 {}", f(&u["map_at_r"]), f(&u["precision_at_1"]));
    }
    println!("wrote metrics.json, report.html, model.safetensors, train_log.jsonl, config.toml");
}

fn rayon_threads(n: usize) {
    // Burn's flex backend and margin-eval both use the global rayon pool.
    let _ = margin_eval::init_threads(n);
}
