//! `margin train`: train an embedding model end to end — data, class-disjoint split,
//! training with per-epoch checkpoints, evaluation on unseen classes, report.
//!
//! `margin train` alone trains ConvNet-4 on the bundled Omniglot background set
//! (configs/omniglot.toml, compiled in) and evaluates on the 659 evaluation characters.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use margin_train::{DEFAULT_CONFIG, JobOptions, RunConfig, parse_config, run_job};

use super::progress::Progress;

/// Arguments of `margin train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// TOML configuration (default: the bundled Omniglot configuration).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output folder (default: a new folder under the config's `output_root`, `runs/`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its latest complete checkpoint, with its stored
    /// configuration (only --epochs may extend it; --threads is free).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "out"])]
    pub resume: Option<PathBuf>,
    /// Override the data's path (`data.path`; Omniglot: `data.dir`): an image folder, a
    /// zip of one, a manifest, a feature or CSV file, as the configuration's `data.kind`.
    #[arg(long, value_name = "PATH", conflicts_with = "resume")]
    pub data: Option<PathBuf>,
    /// Override the separate test set (`data.test`: a folder, zip, feature or CSV file of
    /// other classes than the training data).
    #[arg(long, value_name = "PATH", conflicts_with = "resume")]
    pub test: Option<PathBuf>,
    /// Override the ResNet's pretrained weights (`train.model.weights`: a torchvision
    /// `state_dict`, `.pth` or `.safetensors`); the configuration's model must be a ResNet.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub weights: Option<PathBuf>,
    /// Override `train.epochs` (with --resume: extend the run).
    #[arg(long, value_parser = crate::flags::count)]
    pub epochs: Option<usize>,
    /// Override `train.seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override `train.lr`.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::positive)]
    pub lr: Option<f64>,
    /// Override `train.sampler.batches_per_epoch`.
    #[arg(long, value_parser = crate::flags::count)]
    pub batches_per_epoch: Option<usize>,
    /// Override `split.val_fraction` (validation classes held out of training).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::fraction)]
    pub val_fraction: Option<f64>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = crate::flags::count)]
    pub threads: Option<usize>,
    /// Device to compute on, overriding `[train] device`: cpu (default), cuda[:N], wgpu[:N] or
    /// vulkan (GPU devices need a margin built with `--features cuda` or `--features wgpu`).
    /// Free with --resume: a run may continue on another device.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<margin_train::DeviceSpec>,
    /// Skip the final evaluation and report.
    #[arg(long)]
    pub no_eval: bool,
    /// Only print errors and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Text runs: the base sentence-transformers folder (overrides the config's `encoder`).
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
}

pub(super) fn new_run_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    for i in 0..1000 {
        let p = root.join(format!("run-{secs}{}", if i == 0 { String::new() } else { format!("-{i}") }));
        if !p.exists() {
            return Ok(p);
        }
    }
    bail!("cannot find a free run folder under {}", root.display())
}

fn read_config(path: &Path, what: &str) -> anyhow::Result<RunConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))?;
    Ok(parse_config(&text, &path.display().to_string())?)
}

/// Whether `dir` holds a run that a new run would overwrite: a checkpoint pointer or a
/// published epoch checkpoint.
pub(super) fn holds_run(dir: &Path) -> bool {
    dir.join("checkpoint.json").exists()
        || std::fs::read_dir(dir.join("checkpoints")).is_ok_and(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("epoch-")))
}

/// The overrides of `args` that would change what the run in `dir` (configuration `cfg`)
/// was trained with: `--flag value (stored: field = value)` for each that differs.
fn changed_overrides(args: &TrainArgs, cfg: &RunConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |flag: &str, given: Option<String>, field: &str, stored: String| {
        if let Some(g) = given
            && g != stored
        {
            out.push(format!("{flag} {g} (the run has {field} = {stored})"));
        }
    };
    check("--lr", args.lr.map(|v| v.to_string()), "train.lr", cfg.train.lr.to_string());
    check("--seed", args.seed.map(|v| v.to_string()), "train.seed", cfg.train.seed.to_string());
    let stored_b = cfg.train.sampler.batches_per_epoch.map_or("unset".to_string(), |b| b.to_string());
    check("--batches-per-epoch", args.batches_per_epoch.map(|v| v.to_string()), "train.sampler.batches_per_epoch", stored_b);
    check("--val-fraction", args.val_fraction.map(|v| v.to_string()), "split.val_fraction", cfg.split.val_fraction.to_string());
    out
}

/// The configuration, run folder and whether it resumes, from the arguments.
///
/// With `--resume` the run folder's `config.toml` is the run's truth: an override that
/// would change what is trained (`--lr`, `--seed`, `--batches-per-epoch`,
/// `--val-fraction` with a value other than the stored one) is refused, naming it;
/// `--epochs` may extend the run (fewer than completed is refused by the trainer, which
/// knows the count); `--threads` changes nothing of the result and is free.
fn configure(args: &TrainArgs) -> anyhow::Result<(RunConfig, PathBuf, bool)> {
    let (mut cfg, out, resume) = match &args.resume {
        Some(dir) => {
            if !dir.join("config.toml").is_file() {
                bail!(
                    "cannot resume {}: it has no config.toml — it is not a run folder of `margin train`, or its run was stopped before it started; start the run again: `margin train --config CONFIG --out {}`",
                    dir.display(),
                    dir.display()
                );
            }
            let cfg = read_config(&dir.join("config.toml"), &format!("the configuration of run folder {}:", dir.display()))?;
            let changed = changed_overrides(args, &cfg);
            if !changed.is_empty() {
                bail!(
                    "cannot resume {}: {} would change what the run was trained with; --resume continues a run unchanged (only --epochs may extend it, --threads is free) — to train with other settings start a new run: `margin train --config {} --out NEWDIR` with the flags",
                    dir.display(),
                    changed.join(", "),
                    dir.join("config.toml").display()
                );
            }
            (cfg, dir.clone(), true)
        }
        None => {
            let cfg = match &args.config {
                Some(p) => read_config(p, "configuration")?,
                None => parse_config(DEFAULT_CONFIG, "the bundled configs/omniglot.toml")?,
            };
            let out = match &args.out {
                Some(o) => o.clone(),
                None => new_run_dir(&cfg.output_root)?,
            };
            if holds_run(&out) {
                bail!(
                    "{} already holds a run (checkpoint.json or checkpoints/epoch-*); continue it with `margin train --resume {}` or choose another --out",
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
    if let Some(d) = args.device {
        cfg.train.device = d;
    }
    if !resume {
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
        override_paths(args, &mut cfg)?;
    }
    margin_train::validate_run(&cfg).context("invalid configuration")?;
    Ok((cfg, out, resume))
}

/// Applies `--data`, `--test` and `--weights` to the fields the configuration's data kind
/// and model have; a flag the configuration has no field for is refused, naming both.
fn override_paths(args: &TrainArgs, cfg: &mut RunConfig) -> anyhow::Result<()> {
    use margin_data::{DataSpec, ModelConfig};
    if let Some(p) = &args.data {
        match &mut cfg.data {
            DataSpec::Omniglot { dir, .. } => *dir = p.clone(),
            DataSpec::ImageFolder { path, .. } | DataSpec::Manifest { path, .. } | DataSpec::Features { path, .. } | DataSpec::Csv { path, .. } => *path = p.clone(),
        }
    }
    if let Some(p) = &args.test {
        match &mut cfg.data {
            DataSpec::ImageFolder { test, .. } | DataSpec::Features { test, .. } | DataSpec::Csv { test, .. } => *test = Some(p.clone()),
            DataSpec::Manifest { .. } => bail!("--test {}: a manifest's test images are its rows with split = test (data.kind = \"manifest\" has no data.test)", p.display()),
            DataSpec::Omniglot { .. } => bail!("--test {}: Omniglot's test set is its evaluation half (data.kind = \"omniglot\" has no data.test)", p.display()),
        }
    }
    if let Some(w) = &args.weights {
        match &mut cfg.train.model {
            ModelConfig::Resnet(r) => r.weights = Some(w.clone()),
            other => bail!(
                "--weights {}: pretrained weights are for a ResNet backbone, but the configuration's model is {} (set [train.model] kind = \"resnet\", as configs/photos_resnet.toml does)",
                w.display(),
                serde_json::to_value(&*other).ok().and_then(|v| v["kind"].as_str().map(|k| format!("kind = \"{k}\""))).unwrap_or_else(|| "not a ResNet".into())
            ),
        }
    }
    Ok(())
}

/// Runs `margin train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        rayon_threads(t);
    }
    if let Some(text) = super::train_text::text_config(&args)? {
        return super::train_text::run(&args, &text);
    }
    if args.encoder.is_some() {
        bail!("--encoder is for text runs (a configuration naming `encoder`, e.g. configs/clinc150.toml)");
    }
    let (cfg, out, resume) = configure(&args)?;
    let device = cfg.train.device.device()?.autodiff();
    let opts = JobOptions { out: out.clone(), resume, epochs: args.epochs, evaluate: !args.no_eval };
    let mut progress = Progress::new(args.quiet);
    let job = run_job(&cfg, &opts, &device, &mut progress).with_context(|| format!("training in {}", out.display()));
    progress.finish();
    let job = job?;
    let metrics = &job.metrics;
    match &job.evaluation {
        Some(e) => {
            let log = std::fs::read_to_string(out.join("train_log.jsonl")).unwrap_or_default();
            let html = crate::report::render(&crate::report::ReportInput {
                title: format!("margin · {}", out.display()),
                config_toml: margin_train::config_toml(&cfg),
                log: &log,
                eval: &e.report,
                one_shot: e.one_shot.as_ref(),
                metrics,
                embeddings: &e.embeddings,
                dim: e.dim,
                labels: &e.labels,
                class_names: &e.class_names,
                map_classes: cfg.eval.map_classes,
                seed: cfg.train.seed,
                gallery: e.gallery.as_ref(),
            });
            let report = out.join("report.html");
            margin_train::fault::step("report.html", &report, html.as_bytes(), || margin_data::write_atomic(&report, html.as_bytes()))?;
            print_summary(&out, metrics);
        }
        None => {
            let t = &metrics["train"];
            println!(
                "trained {} epochs in {:.1}s ({:.0} images/s); model in {}",
                t["epochs"],
                t["train_seconds"].as_f64().unwrap_or(0.0),
                t["images_per_s"].as_f64().unwrap_or(0.0),
                out.display()
            );
        }
    }
    Ok(())
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
