//! The progress of `margin sweep` on stderr: one bar over the runs (position: runs
//! finished), its message the latest step of a running run; a line per finished run.
//! As `margin train`'s progress (`progress.rs`): plain lines when stderr is not a
//! terminal, warnings shown even with `--quiet`. Called from the parallel runs' threads
//! (indicatif's bar is thread-safe).

use indicatif::{ProgressBar, ProgressStyle};
use margin_train::sweep::{Point, RunObserver, RunRecord, SweepObserver};
use margin_train::{EpochRecord, StepRecord};

/// The observer of `margin sweep`.
pub struct SweepProgress {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: usize,
}

impl SweepProgress {
    /// A progress display for the sweep of `points`; `quiet` keeps only warnings.
    pub fn new(quiet: bool, points: &[Point]) -> Self {
        let bar = (!quiet).then(|| {
            let b = ProgressBar::new(points.len() as u64);
            b.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs {msg}").expect("valid template"));
            b
        });
        SweepProgress { bar, quiet, total: points.len() }
    }

    /// Clears the bar (before the summary is printed).
    pub fn finish(&self) {
        super::progress::finish_bar(self.bar.as_ref());
    }

    fn line(&self, line: String) {
        super::progress::print_line(self.bar.as_ref(), line);
    }
}

impl RunObserver for SweepProgress {
    fn step(&self, point: &Point, s: &StepRecord) {
        if let Some(b) = &self.bar
            && s.step % 5 == 0
        {
            b.set_message(format!("#{} epoch {} loss {:.4} active {:.3}", point.index + 1, s.epoch, s.loss, s.active_fraction));
        }
    }
    fn epoch(&self, point: &Point, e: &EpochRecord) {
        if !self.quiet {
            self.line(format!("run #{} epoch {:>3}: loss {:.4}  active {:.3}", point.index + 1, e.epoch, e.mean_loss, e.mean_active_fraction));
        }
    }
    fn warn(&self, point: &Point, msg: &str) {
        self.line(format!("warning: run #{} ({}): {msg}", point.index + 1, point.label()));
    }
    fn info(&self, point: &Point, line: &str) {
        if !self.quiet {
            self.line(format!("run #{} ({}): {line}", point.index + 1, point.label()));
        }
    }
}

impl SweepObserver for SweepProgress {
    fn planned(&self, total: usize, done: usize) {
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
        }
        if !self.quiet && done > 0 {
            self.line(format!("continuing the sweep: {done} of {total} runs finished before, skipped"));
        }
    }
    fn started(&self, point: &Point) {
        if !self.quiet {
            self.line(format!("run #{}/{} ({}) started", point.index + 1, self.total, point.label()));
        }
    }
    fn finished(&self, r: &RunRecord) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        if !self.quiet {
            let m = r.metrics.map(|m| format!("val MAP@R {:.4}  P@1 {:.4}  AUC {:.4}", m.map_at_r, m.precision_at_1, m.auc)).unwrap_or_else(|| "diverged".into());
            self.line(format!("run #{} ({}) finished: {m}; {}", r.index + 1, r.label(), r.diagnosis.verdict.words()));
        }
    }
}
