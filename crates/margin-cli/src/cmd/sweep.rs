//! `margin sweep`: short runs of a configuration over a grid of values, validated on
//! training classes held out of training, with the active-fraction verdicts; resumable.
//! The library does the work (`margin_train::sweep`); this module wires the flags, the
//! progress bar and the report (`report::sweep`).

use std::path::PathBuf;

use anyhow::Context;
use margin_train::sweep::{Param, Sweep, SweepError, SweepOptions, default_jobs};

use super::sweep_progress::SweepProgress;

/// Arguments of `margin sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The TOML configuration to sweep (as `margin train --config`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// A dotted TOML path and its comma-separated values, each parsed as the TOML value it
    /// would be in the file (`train.loss.margin=0.05,0.1,0.2`, `train.schedule.kind=constant,cosine`,
    /// `train.model.hidden=[64,64],[128]`); several --param form a grid (the first varies slowest).
    #[arg(long = "param", value_name = "PATH=V1,V2,…", required = true, value_parser = param)]
    pub params: Vec<String>,
    /// Epochs of every run (default: the configuration's); best.toml keeps the configuration's.
    #[arg(long, value_parser = crate::flags::count)]
    pub epochs: Option<usize>,
    /// Runs at a time (default: 1 on two cores or fewer, else half the cores); each run gets
    /// cores / jobs threads.
    #[arg(long, value_parser = crate::flags::count)]
    pub jobs: Option<usize>,
    /// The sweep folder: sweep.json, sweep.jsonl, runs/, best.toml, report.html. The same
    /// command again continues a sweep it holds.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only print errors, warnings and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Checks a `--param` spec's syntax (types and paths are checked against the configuration).
fn param(s: &str) -> Result<String, String> {
    match Param::parse(s) {
        Ok(_) => Ok(s.to_string()),
        Err(SweepError::Param { reason, .. }) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `margin sweep`.
pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config).with_context(|| format!("reading configuration {}", args.config.display()))?;
    let source = args.config.display().to_string();
    let sweep = Sweep::new(&text, &source, &args.params, args.epochs)?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let jobs = args.jobs.unwrap_or_else(|| default_jobs(cores)).min(sweep.points.len());
    let opts = SweepOptions { out: args.out.clone(), jobs, threads_per_run: (cores / jobs.max(1)).max(1) };
    let device = sweep.base.config.train.device.device()?.autodiff();
    let progress = SweepProgress::new(args.quiet, &sweep.points);
    let outcome = sweep.run(&opts, &device, &progress);
    progress.finish();
    let outcome = outcome.with_context(|| format!("sweeping in {}", args.out.display()))?;
    let html = crate::report::sweep::render(&crate::report::sweep::SweepReportInput {
        title: format!("margin sweep · {}", args.config.display()),
        params: &sweep.grid.describe(),
        records: &outcome.records,
        best: outcome.best,
        best_toml: outcome.best_toml.as_deref(),
        run_epochs: sweep.epochs.unwrap_or(sweep.base.config.train.epochs),
    });
    let report = args.out.join("report.html");
    margin_train::fault::step("report.html", &report, html.as_bytes(), || margin_data::write_atomic(&report, html.as_bytes()))?;
    print_summary(&outcome, &args.out);
    Ok(())
}

fn print_summary(outcome: &margin_train::sweep::SweepOutcome, out: &std::path::Path) {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    println!("{:>3}  {:<40} {:>7} {:>7} {:>7} {:>7}  verdict", "#", "params", "MAP@R", "P@1", "AUC", "active");
    for r in &outcome.records {
        let m = r.metrics;
        let best = if outcome.best == Some(r.index) { " *" } else { "" };
        println!(
            "{:>3}  {:<40} {:>7} {:>7} {:>7} {:>7}  {}{best}",
            r.index + 1,
            r.label(),
            f(m.map(|m| m.map_at_r)),
            f(m.map(|m| m.precision_at_1)),
            f(m.map(|m| m.auc)),
            f(r.diagnosis.late_active_fraction),
            r.diagnosis.verdict.words()
        );
    }
    if outcome.skipped > 0 {
        println!("{} run(s) finished by an earlier call, skipped", outcome.skipped);
    }
    match (outcome.best, &outcome.best_toml) {
        (Some(i), Some(_)) => println!("best: #{} ({}); wrote best.toml, sweep.jsonl, report.html in {}", i + 1, outcome.records.iter().find(|r| r.index == i).map(|r| r.label()).unwrap_or_default(), out.display()),
        _ => println!("no run finished without diverging: no best.toml; wrote sweep.jsonl, report.html in {}", out.display()),
    }
}
