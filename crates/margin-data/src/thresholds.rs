//! Calibrated decision thresholds recorded in the model card (card version 3): measured by
//! `margin train` on held-out classes that are not the test classes (the validation
//! classes, or the calibration share of the training classes: `margin_data::calibration`),
//! so test metrics at these thresholds stay honest. The card's `dedup` section
//! ([`DedupThresholds`]) holds the near-duplicate threshold, measured on the same held-out
//! items: an item against an augmented, re-encoded copy of itself, against pairs of
//! different items. Fields added after version 3 first shipped are optional
//! (`held_out`, `dedup`), so every version-3 card still reads. Every threshold is a
//! distance in its metric's unit (smaller is closer; a pair matches at `distance <=
//! threshold`), and carries the pair counts it was estimated from.

use serde::{Deserialize, Serialize};

/// The verification thresholds of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The distance the thresholds are in (`euclidean`), between the card's output
    /// embeddings (L2-normalised when the card's `normalize_output` is).
    pub metric: String,
    /// Where they were measured, in words (`validation classes: 12 classes, 240 samples`).
    pub source: String,
    /// Same-class pairs used.
    pub n_genuine: usize,
    /// Different-class pairs used.
    pub n_impostor: usize,
    /// Equal error rate on those pairs.
    pub eer: f64,
    /// The threshold at the EER.
    pub eer_threshold: f64,
    /// One entry per false-accept-rate target.
    pub far: Vec<FarThreshold>,
    /// Which classes the thresholds were measured on, and how they were chosen (absent
    /// in cards written before the calibration share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<HeldOut>,
}

/// The held-out classes thresholds were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// Validation classes or the calibration share.
    pub kind: HeldOutKind,
    /// Their names.
    pub classes: Vec<String>,
    /// Their samples.
    pub samples: usize,
    /// How they were chosen, in words (fraction, count, seed).
    pub rule: String,
}

/// Where held-out classes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldOutKind {
    /// The configuration's validation classes (`split.val_fraction` / `val_classes`).
    Validation,
    /// A share of the training classes held out of training (`split.calibration_fraction`).
    CalibrationShare,
}

/// The near-duplicate threshold of `margin dedup` (the card's `dedup` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupThresholds {
    /// The distance (`euclidean` between the card's outputs).
    pub metric: String,
    /// Where it was measured, in words (the held-out classes, never the test classes).
    pub source: String,
    /// How each item's copy was made (the training augmentations, re-encoding).
    pub copies: String,
    /// Duplicate pairs: an item and its copy (one per held-out item).
    pub n_duplicate: usize,
    /// Different pairs: two different held-out items (all, or a seeded sample).
    pub n_different: usize,
    /// One entry per target false-duplicate rate (strictest first).
    pub rates: Vec<DedupRate>,
    /// The target rate `margin dedup` uses by default: the strictest one estimable
    /// (`None`: none is).
    pub default_rate: Option<f64>,
}

/// The dedup threshold at one false-duplicate rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupRate {
    /// The target rate: the share of different-item pairs within the threshold.
    pub target_rate: f64,
    /// The threshold (`None`: not estimable, or only accepting nothing meets it).
    pub threshold: Option<f64>,
    /// The false-duplicate rate reached at it.
    pub rate: Option<f64>,
    /// The share of duplicate pairs within it (recall of the copies).
    pub recall: Option<f64>,
    /// Why there is no threshold, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DedupThresholds {
    /// The entry `margin dedup` uses by default.
    pub fn default_entry(&self) -> Option<&DedupRate> {
        let r = self.default_rate?;
        self.rates.iter().find(|e| e.target_rate == r && e.threshold.is_some())
    }
}

/// The threshold for one false-accept rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FarThreshold {
    /// The target false-accept rate.
    pub far_target: f64,
    /// The threshold (`None`: not estimable from these pairs, or only accepting nothing
    /// meets the target).
    pub threshold: Option<f64>,
    /// The false-accept rate reached at it (`None` when not estimable).
    pub far: Option<f64>,
    /// The true-accept rate at it (`None` when not estimable).
    pub tar: Option<f64>,
    /// Why there is no threshold, when there is none ("not estimable: 120 impostor pairs,
    /// 100000 needed").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
