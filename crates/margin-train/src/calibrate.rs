//! Verification thresholds calibrated at the end of `margin train`, recorded in the model
//! card (`margin_data::thresholds`), so `margin verify --far F` and `margin search --far F`
//! decide with a threshold measured on classes the model never trained on and that are not
//! the test classes.
//!
//! **Which classes.** The validation classes, when the configuration has them
//! (`split.val_fraction` or `split.val_classes`); they are already held out of training.
//! Otherwise the calibration share of the training classes (`margin_data::calibration`,
//! `split.calibration_fraction`, 10% by default, at least two classes), which `run_job`
//! holds out of training for this purpose. The card names the classes and the rule
//! (`thresholds.held_out`). With `split.calibration_fraction = 0` (or too few training
//! classes for a share) there are no thresholds and commands ask for `--threshold`.
//!
//! **How.** The validation embeddings (L2-normalised, as the card's output), all pairs or
//! a seeded sample of `eval.max_pairs`, Euclidean distance, margin-eval's verification
//! metrics: the EER threshold, and the threshold of each FAR target in [`FAR_TARGETS`]
//! where the impostor pairs resolve it (margin-eval's rule: `impostors · FAR ≥ 10`),
//! "not estimable" otherwise, with the pair counts.

use burn::tensor::Device;
use margin_data::Dataset;
use margin_data::thresholds::{FarThreshold, HeldOut, HeldOutKind, Thresholds};
use margin_eval::{Distance, Embeddings, Labelled, TarAtFar, VerificationConfig};
use margin_models::{EmbeddingNet, embed_views};

use crate::TrainError;

/// The false-accept rates a card records thresholds for.
pub const FAR_TARGETS: [f64; 3] = [1e-2, 1e-3, 1e-4];

/// Thresholds of `model` measured on the held-out set `val` (described by `held`); `None`
/// when `val` has fewer than two classes (no impostor pairs) or no class with two samples
/// (no genuine pairs).
///
/// # Errors
/// Embedding or metric errors (non-finite embeddings are refused by margin-eval).
#[allow(clippy::too_many_arguments)]
pub fn calibrate(model: &EmbeddingNet, val: &Dataset, held: &HeldOut, dim: usize, batch: usize, tta: margin_data::tta::TestTimeAugment, max_pairs: usize, seed: u64, device: &Device) -> Result<Option<Thresholds>, TrainError> {
    // The views the model card records: thresholds for the embeddings users will get.
    let emb = embed_views(model, val, batch, true, tta, device);
    let e = Embeddings::new("held-out (calibration) embeddings", &emb, dim)?;
    let l = Labelled::new(e, "held-out labels", &val.labels)?;
    let config = VerificationConfig { far_targets: FAR_TARGETS.to_vec(), max_pairs: max_pairs.max(2), seed, ..VerificationConfig::default() };
    let report = match margin_eval::verification(&l, Distance::Euclidean, &config) {
        Ok(r) => r,
        Err(margin_eval::EvalError::NotEnoughData { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(from_metrics(&report.metrics, val, held)))
}

/// The description of held-out classes `set` of kind `kind`, chosen by `rule`.
pub fn held_out(set: &Dataset, kind: HeldOutKind, rule: String) -> HeldOut {
    let classes = set.classes().iter().map(|&c| set.class_name(c).to_string()).collect();
    HeldOut { kind, classes, samples: set.len(), rule }
}

/// The words naming held-out classes in a threshold's source.
pub fn source_words(held: &HeldOut) -> String {
    let what = match held.kind {
        HeldOutKind::Validation => "validation classes",
        HeldOutKind::CalibrationShare => "calibration share of the training classes",
    };
    format!("{what}: {} classes, {} samples", held.classes.len(), held.samples)
}

/// `x` to 12 significant digits: a decimal that JSON parsing gives back bit for bit
/// (serde_json's default parser is exact on such short mantissas, not on every 17-digit
/// one), so the card read back from `model.json` hashes as the card the weights were saved
/// with (`margin_models::weights::card_hash`).
pub(crate) fn tidy(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

fn from_metrics(m: &margin_eval::VerificationMetrics, val: &Dataset, held: &HeldOut) -> Thresholds {
    let far = m
        .tar_at_far
        .iter()
        .map(|t| match t {
            TarAtFar::Estimated { far_target, tar, far, threshold } => FarThreshold {
                far_target: *far_target,
                threshold: threshold.map(tidy),
                far: Some(tidy(*far)),
                tar: Some(tidy(*tar)),
                note: threshold.is_none().then(|| "only accepting nothing meets this rate".to_string()),
            },
            TarAtFar::NotEstimable { far_target, impostors, required } => FarThreshold {
                far_target: *far_target,
                threshold: None,
                far: None,
                tar: None,
                note: Some(format!("not estimable: {impostors} impostor pairs, {required} needed")),
            },
        })
        .collect();
    debug_assert_eq!(held.samples, val.len());
    Thresholds {
        metric: Distance::Euclidean.name().to_string(),
        source: source_words(held),
        n_genuine: m.n_genuine,
        n_impostor: m.n_impostor,
        eer: tidy(m.eer),
        eer_threshold: tidy(m.eer_threshold),
        far,
        held_out: Some(held.clone()),
    }
}
