//! `margin train` for a text run: a configuration that names a base sentence-transformers
//! folder (`encoder = "DIR"`, e.g. `configs/clinc150.toml`) fine-tunes it
//! (margin-train's `text_job`); `--encoder DIR` overrides the folder. The run folder is
//! itself a sentence-transformers folder, so `margin embed --model RUN` embeds with it.
//!
//! `--resume RUN` continues a text run with its stored `config.toml`; only `--epochs`
//! (to extend it), `--threads`, `--quiet` and `--no-eval` may be given with it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use margin_train::text_job::{TextRunConfig, TextRunMetrics, is_text_config, parse_text_config, run_text_job};

use super::train::{TrainArgs, holds_run, new_run_dir};

/// A text run's configuration and where it comes from, when the arguments name one.
pub struct TextRun {
    cfg: TextRunConfig,
    out: PathBuf,
    resume: bool,
}

/// The text run the arguments ask for, or `None` for an image/feature run.
pub fn text_config(args: &TrainArgs) -> anyhow::Result<Option<TextRun>> {
    let (path, resume) = match (&args.resume, &args.config) {
        (Some(dir), _) => (dir.join("config.toml"), true),
        (None, Some(p)) => (p.clone(), false),
        (None, None) => return Ok(None),
    };
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    if !is_text_config(&text) {
        return Ok(None);
    }
    let mut cfg = parse_text_config(&text, &path.display().to_string())?;
    if resume {
        let given = [("--lr", args.lr.is_some()), ("--seed", args.seed.is_some()), ("--batches-per-epoch", args.batches_per_epoch.is_some()), ("--encoder", args.encoder.is_some()), ("--val-fraction", args.val_fraction.is_some())];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            bail!("cannot resume {}: {flag} would change what the run was trained with; --resume continues a text run unchanged (only --epochs may extend it)", path.display());
        }
    } else {
        if let Some(e) = &args.encoder {
            cfg.encoder = e.clone();
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
        if args.val_fraction.is_some() {
            bail!("--val-fraction does not apply to a text run: its protocol ([eval]) decides the split");
        }
    }
    if let Some(e) = args.epochs {
        cfg.train.epochs = e;
    }
    cfg.train.validate().context("invalid configuration")?;
    let out = match (&args.resume, &args.out) {
        (Some(d), _) | (None, Some(d)) => d.clone(),
        (None, None) => new_run_dir(std::path::Path::new("runs"))?,
    };
    if !resume && holds_run(&out) {
        bail!("{} already holds a run (checkpoint.json or checkpoints/epoch-*); continue it with `margin train --resume {}` or choose another --out", out.display(), out.display());
    }
    Ok(Some(TextRun { cfg, out, resume }))
}

/// Runs the text run.
pub fn run(args: &TrainArgs, run: &TextRun) -> anyhow::Result<()> {
    let quiet = args.quiet;
    std::fs::create_dir_all(&run.out).with_context(|| format!("creating {}", run.out.display()))?;
    let mut on_step = |r: &margin_train::text_train::TextStepRecord| {
        if !quiet {
            eprintln!("epoch {} step {}: loss {:.4}  lr {:.2e}  {:.2}s", r.epoch, r.step, r.loss, r.lr, r.seconds);
        }
    };
    let metrics = run_text_job(&run.cfg, &run.out, run.resume, !args.no_eval, &mut on_step).with_context(|| format!("training in {}", run.out.display()))?;
    println!("run: {} (a sentence-transformers folder: `margin embed --model {}`)", run.out.display(), run.out.display());
    if let Some(m) = metrics {
        print_summary(&m);
    }
    Ok(())
}

fn print_summary(m: &TextRunMetrics) {
    println!("{} steps, {:.1} sentences/s", m.steps, m.train_sentences_per_s);
    let line = |name: &str, t: &margin_train::text_eval::TextMetrics| {
        let c = t.classification.as_ref();
        let oos = t.out_of_scope.as_ref().map(|o| format!("  OOS AUROC {:.4}", o.test.auroc)).unwrap_or_default();
        let acc = c.map(|c| format!("1-NN {:.4}  centroid {:.4}  ", c.nearest_neighbor_accuracy, c.centroid_accuracy)).unwrap_or_default();
        println!("{name}: {acc}P@1 {:.4}  MAP@R {:.4}{oos}", t.retrieval.precision_at_1, t.retrieval.map_at_r);
    };
    if let Some(f) = &m.frozen {
        line("frozen", f);
    }
    line("fine-tuned", &m.fine_tuned);
    println!("wrote metrics.json, text_model.json, model.safetensors, train_log.jsonl, config.toml");
}
