//! Calibrated decision thresholds recorded in the model card (card version 3): measured by
//! `margin train` on held-out classes that are not the test classes (the validation
//! classes), so test metrics at these thresholds stay honest. Every threshold is a
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
