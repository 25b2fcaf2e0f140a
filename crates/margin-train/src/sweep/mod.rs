//! `margin sweep`: short runs of one configuration over a grid of parameter values, each
//! validated on classes held out of training (never the test classes), with the seed's
//! advice as a rule — "sweep margins and monitor the fraction of active constraints".
//!
//! One concept per file: [`grid`] (the `--param PATH=V1,V2` grid and its points' ids),
//! [`overrides`] (values set in the TOML document before it is typed; `best.toml`),
//! [`run`] (one run: validation classes, train or resume, metrics, curves), [`verdict`]
//! (collapse / stall / too large, with its thresholds), [`record`] (a `sweep.jsonl` line),
//! [`state`] (the sweep folder: `sweep.json`, `sweep.jsonl`, resuming and refusing another
//! sweep's folder), [`best`] (the best run). This file schedules the runs.
//!
//! **The folder** `DIR`: `sweep.json` (the sweep), `sweep.jsonl` (a line per finished
//! run, grid order), `runs/<id>/` (each run's folder: `config.toml`, `train_log.jsonl`,
//! checkpoints — a trainer run folder), `best.toml` once every run finished; the CLI adds
//! `report.html`.
//!
//! **Parallel runs.** `jobs` runs at a time, each in its own rayon pool of
//! `threads_per_run` threads (Burn's CPU backend and margin-eval use the pool they are called
//! in). Every random choice of a run is seeded by its configuration, and the initial draw is
//! serialised ([`crate::device`]), so a run's result does not depend on what runs beside it;
//! the lines are written in grid order whatever order runs finish in.
//!
//! **No new dependency.** `best.toml` keeps the original's comments by splicing values into
//! its text at the spans of the `toml` crate's parser ([`overrides`]); a format-preserving
//! editor crate (`toml_edit`) would turn on features of a crate below Burn and rebuild it.

pub mod best;
pub mod grid;
pub mod overrides;
pub mod record;
pub mod run;
pub mod state;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::tensor::Device;

pub use best::best;
pub use grid::{Grid, Param, ParamValue, Point};
pub use overrides::BaseConfig;
pub use record::{RunRecord, RunStatus, ValMetrics, ValidationSource};
pub use run::{RunObserver, VALIDATION_FRACTION};
pub use state::SweepHeader;
pub use verdict::{Diagnosis, Verdict};

use crate::{RunConfig, TrainError};

/// Why a sweep cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A `--param` that does not parse.
    #[error("--param {param}: {reason}")]
    Param {
        /// The param as given (or its path).
        param: String,
        /// What is wrong.
        reason: String,
    },
    /// A value the configuration refuses at a param's path.
    #[error("--param {param}={value}: {reason}")]
    Value {
        /// The param's path.
        param: String,
        /// The value, as TOML.
        value: String,
        /// The parser's or validator's reason.
        reason: String,
    },
    /// A point of the grid whose combination of values is refused.
    #[error("the grid point {point}: {reason}")]
    Point {
        /// The point's params.
        point: String,
        /// Why.
        reason: String,
    },
    /// No validation classes can be had.
    #[error("no validation split for the sweep: {reason}")]
    Validation {
        /// Why, and what to do.
        reason: String,
    },
    /// The sweep folder holds another sweep.
    #[error("{}: it holds another sweep: {}; rerun that sweep's command to continue it, or choose another --out", dir.display(), differences.join("; "))]
    OtherSweep {
        /// The folder.
        dir: PathBuf,
        /// Each difference, in words.
        differences: Vec<String>,
    },
    /// A sweep file that cannot be used.
    #[error("{}: {reason}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Training, data or evaluation.
    #[error(transparent)]
    Train(#[from] TrainError),
}

impl From<margin_data::DataError> for SweepError {
    fn from(e: margin_data::DataError) -> Self {
        SweepError::Train(e.into())
    }
}

impl From<margin_data::memory::MemoryError> for SweepError {
    fn from(e: margin_data::memory::MemoryError) -> Self {
        SweepError::Train(e.into())
    }
}

/// Runs at a time by default: one on two cores or fewer (a run uses every core it gets),
/// else half the cores.
pub fn default_jobs(cores: usize) -> usize {
    if cores <= 2 { 1 } else { cores / 2 }
}

/// How a sweep runs.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The sweep folder.
    pub out: PathBuf,
    /// Runs at a time (≥ 1).
    pub jobs: usize,
    /// Threads of each run's pool (≥ 1).
    pub threads_per_run: usize,
}

/// What the sweep tells its caller (a progress bar): the runs' progress and results.
pub trait SweepObserver: RunObserver {
    /// The sweep starts: `total` points, `done` of them finished before.
    fn planned(&self, _total: usize, _done: usize) {}
    /// Run `point` starts (or resumes).
    fn started(&self, _point: &Point) {}
    /// Run `point` finished and is recorded.
    fn finished(&self, _record: &RunRecord) {}
}

/// A sweep of a configuration over a grid, every point checked before anything runs.
#[derive(Debug)]
pub struct Sweep {
    /// The configuration file.
    pub base: BaseConfig,
    /// The grid.
    pub grid: Grid,
    /// Its points, in order.
    pub points: Vec<Point>,
    /// Each point's run configuration.
    pub configs: Vec<RunConfig>,
    /// The sweep's `--epochs`.
    pub epochs: Option<usize>,
}

/// A finished (or continued) sweep.
#[derive(Debug)]
pub struct SweepOutcome {
    /// Every run, in grid order.
    pub records: Vec<RunRecord>,
    /// Runs finished by an earlier call (skipped by this one).
    pub skipped: usize,
    /// The best run's grid index (`None`: no run finished).
    pub best: Option<usize>,
    /// `best.toml` as written.
    pub best_toml: Option<String>,
}

impl Sweep {
    /// The sweep of `text` (the configuration file `source`) over `params` (`--param` specs),
    /// every run for `epochs` epochs when given; every value and point is checked.
    pub fn new(text: &str, source: &str, params: &[String], epochs: Option<usize>) -> Result<Self, SweepError> {
        let grid = Grid::parse(params)?;
        let base = BaseConfig::parse(text, source)?;
        base.check_grid(&grid)?;
        let points = grid.points();
        let configs = points.iter().map(|p| base.run_config(p, epochs)).collect::<Result<Vec<_>, _>>()?;
        Ok(Sweep { base, grid, points, configs, epochs })
    }

    /// `sweep.json` of this sweep (fingerprints the data: reads every data file).
    pub fn header(&self) -> Result<SweepHeader, SweepError> {
        Ok(SweepHeader {
            version: state::HEADER_VERSION,
            config_file: self.base.source.clone(),
            manifest: crate::manifest::RunManifest::of(&self.base.config)?,
            grid: self.grid.describe(),
            run_epochs: self.epochs.unwrap_or(self.base.config.train.epochs),
        })
    }

    /// Runs the points not finished yet in `opts.out` (see the module docs), then writes
    /// `best.toml` once every point has finished.
    pub fn run(&self, opts: &SweepOptions, device: &Device, obs: &dyn SweepObserver) -> Result<SweepOutcome, SweepError> {
        let header = self.header()?;
        let ids: Vec<String> = self.points.iter().map(Point::id).collect();
        let done = state::open(&opts.out, &header, &ids)?;
        let skipped = done.len();
        obs.planned(self.points.len(), skipped);
        let pending: Vec<usize> = (0..self.points.len()).filter(|i| !done.contains_key(i)).collect();
        let records = Mutex::new(done);
        self.run_pending(&pending, &records, opts, device, obs)?;
        let records: Vec<RunRecord> = records.into_inner().unwrap_or_else(|p| p.into_inner()).into_values().collect();
        let best = best::best(&records).map(|r| r.index);
        let best_toml = match best {
            Some(i) if records.len() == self.points.len() => {
                let text = self.base.text_with(&self.points[i].values)?;
                let p = opts.out.join("best.toml");
                crate::fault::step("best.toml", &p, text.as_bytes(), || margin_data::write_atomic(&p, text.as_bytes()))?;
                Some(text)
            }
            _ => None,
        };
        Ok(SweepOutcome { records, skipped, best, best_toml })
    }

    /// Runs the points `pending` (grid indices), `opts.jobs` at a time; each finished run is
    /// recorded at once. The first error stops new runs from starting and is returned.
    fn run_pending(&self, pending: &[usize], records: &Mutex<BTreeMap<usize, RunRecord>>, opts: &SweepOptions, device: &Device, obs: &dyn SweepObserver) -> Result<(), SweepError> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_error: Mutex<Option<SweepError>> = Mutex::new(None);
        let fail = |e: SweepError| {
            stop.store(true, Ordering::SeqCst);
            let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(e);
        };
        let worker = || {
            let pool = match rayon::ThreadPoolBuilder::new().num_threads(opts.threads_per_run.max(1)).build() {
                Ok(p) => p,
                Err(e) => return fail(SweepError::State { path: opts.out.clone(), reason: format!("cannot start a run's thread pool: {e}") }),
            };
            while !stop.load(Ordering::SeqCst) {
                let Some(&i) = pending.get(next.fetch_add(1, Ordering::SeqCst)) else { break };
                let point = &self.points[i];
                obs.started(point);
                let dir = run_dir(&opts.out, point);
                let result = pool.install(|| run::run_point(point, &self.configs[i], &dir, device, obs));
                let recorded = result.and_then(|rec| {
                    let mut all = records.lock().unwrap_or_else(|p| p.into_inner());
                    all.insert(i, rec.clone());
                    state::write_lines(&opts.out, &all)?;
                    Ok(rec)
                });
                match recorded {
                    Ok(rec) => obs.finished(&rec),
                    Err(e) => fail(SweepError::Point { point: point.label(), reason: e.to_string() }),
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 0..opts.jobs.clamp(1, pending.len().max(1)) {
                s.spawn(&worker);
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The folder of `point`'s run.
pub fn run_dir(out: &Path, point: &Point) -> PathBuf {
    out.join("runs").join(point.id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_run_at_a_time_on_two_cores_else_half_the_cores() {
        assert_eq!([1, 2, 3, 4, 16].map(super::default_jobs), [1, 1, 1, 2, 8]);
    }
}
