//! One finished run of a sweep, as a line of `sweep.jsonl` (format version
//! [`RECORD_VERSION`]): its params, validation metrics, training curves, verdict and time.
//!
//! Everything but `wall_seconds` is a function of the configuration, the data and the
//! params: a killed-and-resumed sweep writes the same lines as an uninterrupted one, bit for
//! bit, `wall_seconds` aside (a resumed run counts the time of the call that finished it).

use serde::{Deserialize, Serialize};

use super::grid::ParamValue;
use super::verdict::Diagnosis;

/// The `sweep.jsonl` line format this release writes.
pub const RECORD_VERSION: u32 = 1;

/// Validation metrics of a run's final model (margin-eval's definitions; Euclidean distance
/// between L2-normalised embeddings, as `margin train` evaluates).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValMetrics {
    /// MAP@R.
    pub map_at_r: f64,
    /// Precision@1.
    pub precision_at_1: f64,
    /// R-Precision.
    pub r_precision: f64,
    /// Verification ROC AUC.
    pub auc: f64,
    /// Verification equal error rate.
    pub eer: f64,
}

/// Where a sweep's validation classes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationSource {
    /// The configuration's validation classes (`split.val_fraction` / `split.val_classes`).
    Configuration,
    /// [`super::VALIDATION_FRACTION`] of the training classes, at least two, held out by
    /// margin-data's seeded calibration-share rule.
    HeldOut,
}

/// The classes a run was validated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSplit {
    /// Where they come from.
    pub source: ValidationSource,
    /// Their names, sorted by label.
    pub classes: Vec<String>,
    /// Their samples.
    pub samples: usize,
    /// Training classes left.
    pub train_classes: usize,
}

/// One epoch of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean step loss.
    pub mean_loss: f64,
    /// Mean active fraction.
    pub mean_active_fraction: f64,
    /// Validation MAP@R after the epoch, when the configuration validates that epoch.
    pub val_map_at_r: Option<f64>,
}

/// Per-step curves of a run, in step order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepCurves {
    /// The epoch of each step.
    pub epoch: Vec<usize>,
    /// The loss of each step.
    pub loss: Vec<f64>,
    /// The active fraction of each step.
    pub active_fraction: Vec<f64>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunStatus {
    /// Trained and validated.
    Finished,
    /// Training diverged; the sweep goes on (a learning rate too high is a result).
    Diverged {
        /// The trainer's message.
        error: String,
    },
}

/// A line of `sweep.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The point's position in the grid (0-based).
    pub index: usize,
    /// The point's id (its folder: `runs/<id>`).
    pub id: String,
    /// Its params, in the grid's order.
    pub params: Vec<ParamValue>,
    /// How it ended.
    pub status: RunStatus,
    /// Validation metrics (`None` when it diverged).
    pub metrics: Option<ValMetrics>,
    /// The validation classes.
    pub validation: ValidationSplit,
    /// The loss's `kind`.
    pub loss: String,
    /// Whether it has a hinge (the verdict's rules apply).
    pub hinge: bool,
    /// The verdict and its figures.
    pub diagnosis: Diagnosis,
    /// Per epoch.
    pub epochs: Vec<EpochPoint>,
    /// Per step.
    pub steps: StepCurves,
    /// Wall seconds of the call that finished the run.
    pub wall_seconds: f64,
}

impl RunRecord {
    /// `train.loss.margin=0.05, train.lr=0.001`.
    pub fn label(&self) -> String {
        self.params.iter().map(|p| format!("{}={}", p.path, p.value)).collect::<Vec<_>>().join(", ")
    }
}
