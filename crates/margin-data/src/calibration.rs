//! The calibration share: training classes held out of training so `margin train` can
//! measure decision thresholds on classes the model never saw and that are not the test
//! classes, when the configuration has no validation classes (`split.calibration_fraction`,
//! default [`DEFAULT_CALIBRATION_FRACTION`]; 0 disables it).
//!
//! **Rule.** The training pool's classes, sorted by label, are shuffled with a ChaCha8
//! stream seeded by the split seed mixed with a constant (so the share is not the first
//! classes of the validation/test shuffle of the same seed); the first
//! `max(2, round(fraction · classes))` are held out. The share is skipped, with the reason
//! in words, when fewer than `min_train` classes would remain for training (the sampler's
//! `classes_per_batch`, at least 2): a default must not make a small run impossible. The
//! held-out classes are named in the model card (`thresholds.held_out`).

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::{DataError, Dataset};

/// The share held out when the configuration says nothing.
pub const DEFAULT_CALIBRATION_FRACTION: f64 = 0.1;

/// Mixed into the split seed for the calibration shuffle.
const STREAM: u64 = 0xCA11_B8A7_E5EE_D001;

/// The training pool split into what is trained on and the calibration share.
#[derive(Debug, Clone)]
pub struct CalibrationShare {
    /// The classes trained on.
    pub train: Dataset,
    /// The held-out classes' samples.
    pub calibration: Dataset,
    /// The held-out classes' names, sorted by label.
    pub classes: Vec<String>,
    /// How they were chosen, in words (for the card).
    pub rule: String,
}

/// What [`hold_out`] decided.
#[derive(Debug, Clone)]
pub enum Share {
    /// A share was held out.
    Held(Box<CalibrationShare>),
    /// No share, and why (in words): disabled, or too few classes.
    Skipped(String),
}

/// Which classes of a training pool form the calibration share (the rule of the module
/// docs), decided from the pool's classes alone, so an in-memory [`Dataset`] and a lazily
/// decoded source ([`crate::lazy::LazyImages`]) are split alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Hold out `held`, train on `kept` (both sorted labels), as `rule` says in words.
    Held { held: Vec<i64>, kept: Vec<i64>, rule: String },
    /// No share, and why (in words): disabled, or too few classes.
    Skipped(String),
}

/// The calibration share of a pool whose classes (present labels) are `classes`.
///
/// # Errors
/// `fraction` outside `[0, 1)` (`split.calibration_fraction`).
pub fn choose(classes: &[i64], fraction: f64, min_train: usize, seed: u64) -> Result<Choice, DataError> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(DataError::Config { field: "split.calibration_fraction", value: fraction.to_string(), reason: "must be in [0, 1) (0: no calibration share)" });
    }
    if fraction == 0.0 {
        return Ok(Choice::Skipped("split.calibration_fraction = 0".into()));
    }
    let mut classes = classes.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let n = classes.len();
    let held = ((fraction * n as f64).round() as usize).max(2);
    let min_train = min_train.max(2);
    if n < held + min_train {
        return Ok(Choice::Skipped(format!("{n} training classes: holding out {held} for calibration would leave fewer than {min_train} to train on")));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ STREAM);
    classes.shuffle(&mut rng);
    let mut cal = classes[..held].to_vec();
    let mut kept = classes[held..].to_vec();
    cal.sort_unstable();
    kept.sort_unstable();
    let rule = format!(
        "calibration share of the training classes: {held} of {n} (split.calibration_fraction = {fraction}: max(2, round({fraction} · {n}))), chosen by a seeded shuffle (ChaCha8, split seed {seed}), held out of training"
    );
    Ok(Choice::Held { held: cal, kept, rule })
}

/// Holds out the calibration share of `train` (see the module docs and [`choose`]).
///
/// # Errors
/// `fraction` outside `[0, 1)` (`split.calibration_fraction`).
pub fn hold_out(train: &Dataset, fraction: f64, min_train: usize, seed: u64) -> Result<Share, DataError> {
    let (cal, kept, rule) = match choose(&train.classes(), fraction, min_train, seed)? {
        Choice::Held { held, kept, rule } => (held, kept, rule),
        Choice::Skipped(why) => return Ok(Share::Skipped(why)),
    };
    let calibration = train.with_classes(&cal, format!("{} [calibration classes]", train.name));
    let rest = train.with_classes(&kept, train.name.clone());
    crate::check_no_leakage("train", &rest, "calibration", &calibration)?;
    let names = cal.iter().map(|&c| train.class_name(c).to_string()).collect();
    Ok(Share::Held(Box::new(CalibrationShare { train: rest, calibration, classes: names, rule })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(classes: usize, per: usize) -> Dataset {
        let labels: Vec<i64> = (0..classes as i64).flat_map(|c| std::iter::repeat_n(c, per)).collect();
        let features = (0..labels.len()).map(|i| i as f32).collect();
        Dataset::new("pool", features, vec![1], labels).unwrap()
    }

    fn held(s: Share) -> CalibrationShare {
        match s {
            Share::Held(c) => *c,
            Share::Skipped(why) => panic!("skipped: {why}"),
        }
    }

    #[test]
    fn the_share_is_disjoint_seeded_and_at_least_two_classes() {
        let p = pool(40, 3);
        let a = held(hold_out(&p, 0.1, 4, 7).unwrap());
        assert_eq!((a.calibration.classes().len(), a.train.classes().len()), (4, 36));
        let cal: std::collections::BTreeSet<i64> = a.calibration.classes().into_iter().collect();
        assert!(a.train.classes().iter().all(|c| !cal.contains(c)), "disjoint");
        assert_eq!(a.calibration.len() + a.train.len(), p.len());
        let b = held(hold_out(&p, 0.1, 4, 7).unwrap());
        assert_eq!(a.classes, b.classes, "deterministic for a seed");
        let c = held(hold_out(&p, 0.1, 4, 8).unwrap());
        assert_ne!(a.classes, c.classes, "another seed, another share");
        assert!(a.rule.contains("4 of 40") && a.rule.contains("seed 7"), "{}", a.rule);
        // Tiny fractions still hold out two classes.
        assert_eq!(held(hold_out(&p, 0.001, 4, 7).unwrap()).classes.len(), 2);
    }

    #[test]
    fn zero_disables_too_few_classes_skip_and_bad_fractions_are_refused() {
        let p = pool(5, 2);
        assert!(matches!(hold_out(&p, 0.0, 2, 0).unwrap(), Share::Skipped(w) if w.contains("= 0")));
        assert!(matches!(hold_out(&p, 0.1, 4, 0).unwrap(), Share::Skipped(w) if w.contains("5 training classes")));
        assert_eq!(held(hold_out(&p, 0.1, 3, 0).unwrap()).train.classes().len(), 3);
        for bad in [1.0, -0.1, f64::NAN] {
            assert!(hold_out(&p, bad, 2, 0).unwrap_err().to_string().contains("split.calibration_fraction"));
        }
    }
}
