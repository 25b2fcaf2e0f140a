//! Test-only fault injection: the kill test's hook into every write step of a run.
//!
//! `MARGIN_FAULT=<point>[#<n>]` makes the process abort (`std::process::abort()`, as
//! abrupt as a SIGKILL: no destructor, no flush) the `n`-th time (default: the first) it
//! reaches `<point>`. The variable is read only in builds with debug assertions (the
//! `checked` test profile); in `release` [`step`] and [`point`] compile to the write alone,
//! so the shipped binary has no such hook.
//!
//! Every whole-file write of a run is a step named by its file, with three points:
//! `<file>:before` (nothing written yet), `<file>:partial` (half the bytes written to the
//! temporary file `write_atomic` would rename — what a kill in the middle of the write
//! leaves), `<file>:after` (renamed into place). The files:
//!
//! - a checkpoint folder's files, written into its temporary folder: `checkpoint/model.bpk`,
//!   `checkpoint/optimizer.bpk`, `checkpoint/state.json` (`best/…` for `checkpoints/best`),
//!   and the folder's rename: `checkpoint/publish:before`, `checkpoint/publish:after`;
//! - the pointer `checkpoint.json`, the log rewrite of a resume `train_log.jsonl`;
//! - the final outputs: `model.safetensors`, `model.json`, `metrics.json`, `report.html`
//!   (the CLI), and the run's `config.toml` and `run.json`.
//!
//! The CLI test `kill_resume` aborts at each of them, resumes, and compares with an
//! uninterrupted run.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use margin_data::DataError;

/// Hits of the armed point so far.
static HITS: AtomicUsize = AtomicUsize::new(0);

/// Whether the process should stop at `name` now (counts the hit).
fn armed(name: &str) -> bool {
    if !cfg!(debug_assertions) {
        return false;
    }
    let Ok(spec) = std::env::var("MARGIN_FAULT") else { return false };
    let (point, nth) = match spec.split_once('#') {
        Some((p, n)) => (p, n.parse::<usize>().unwrap_or(1)),
        None => (spec.as_str(), 1),
    };
    point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth
}

fn stop(name: &str) -> ! {
    eprintln!("MARGIN_FAULT: aborting at {name}");
    std::process::abort()
}

/// Aborts here when `MARGIN_FAULT` names `name` (debug builds only).
pub fn point(name: &str) {
    if armed(name) {
        stop(name)
    }
}

/// The write of `bytes` to `path` by `write` (an atomic write), as the step `name`:
/// `name:before`, `name:partial`, `name:after` (see the module docs).
pub fn step<R>(name: &str, path: &Path, bytes: &[u8], write: impl FnOnce() -> Result<R, DataError>) -> Result<R, DataError> {
    point(&format!("{name}:before"));
    let partial = format!("{name}:partial");
    if armed(&partial) {
        let _ = std::fs::write(margin_data::atomic::temp_path(path), &bytes[..bytes.len() / 2]);
        stop(&partial)
    }
    let r = write()?;
    point(&format!("{name}:after"));
    Ok(r)
}
