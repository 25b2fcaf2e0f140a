//! The progress of `margin train` on stderr: a progress bar on a terminal, plain lines
//! otherwise. Warnings and epoch lines are printed whatever stderr is (terminal, file,
//! pipe): indicatif hides its bar when stderr is not a terminal, and a hidden bar's
//! `println` prints nothing, so those lines go straight to stderr then. Warnings are shown
//! even with `--quiet` (they are also in `train_log.jsonl`, in each epoch's record).

use indicatif::{ProgressBar, ProgressStyle};
use margin_train::{EpochRecord, JobObserver, Observer, StepRecord};

/// The observer of `margin train`.
pub struct Progress {
    bar: Option<ProgressBar>,
    steps: usize,
    quiet: bool,
}

impl Progress {
    /// A progress display; `quiet` keeps only warnings.
    pub fn new(quiet: bool) -> Self {
        Progress { bar: None, steps: 0, quiet }
    }

    /// Clears the bar (before the summary is printed).
    pub fn finish(&self) {
        finish_bar(self.bar.as_ref());
    }

    fn line(&self, line: String) {
        print_line(self.bar.as_ref(), line);
    }
}

/// Clears `bar`, if any (before a command's summary is printed).
pub(crate) fn finish_bar(bar: Option<&ProgressBar>) {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// Prints `line` above `bar` on a terminal, else on stderr as a plain line.
pub(crate) fn print_line(bar: Option<&ProgressBar>, line: String) {
    match bar {
        Some(b) if !b.is_hidden() => b.println(line),
        _ => eprintln!("{line}"),
    }
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
        if !self.quiet {
            self.line(line);
        }
    }
    fn warn(&mut self, msg: &str) {
        self.line(format!("warning: {msg}"));
    }
}

impl JobObserver for Progress {
    fn info(&mut self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

