//! Verification metrics from pair scores: ROC, AUC, EER, TAR@FAR, accuracy.
//!
//! Input: the scores of genuine (same-identity) and impostor pairs, and
//! whether a higher or a lower score means "same" ([`Polarity`]). A threshold
//! `t` accepts a pair when its score is `≥ t` (higher is genuine) or `≤ t`
//! (lower is genuine, e.g. distances). At each distinct score:
//! `TAR = accepted genuine / G`, `FAR = accepted impostors / I`,
//! `FRR = 1 − TAR`.
//!
//! - **ROC**: one point per distinct score, from the strictest threshold to
//!   the loosest; the curve implicitly starts at (FAR, TAR) = (0, 0).
//! - **AUC**: trapezoidal area under that ROC, which equals the Mann–Whitney
//!   statistic `U / (G·I)` with ties counted ½ (Hanley & McNeil 1982, "The
//!   meaning and use of the area under a ROC curve"). It is computed exactly
//!   from integer counts.
//! - **EER**: the rate where FAR = FRR, by linear interpolation between the
//!   two ROC points that bracket the crossing (exact when a threshold attains
//!   FAR = FRR). Its threshold is the one of those two points with the smaller
//!   `max(FAR, FRR)`.
//! - **TAR@FAR = f**: the highest TAR over thresholds whose FAR ≤ f. Only
//!   reported when `I · f ≥` [`VerificationConfig::min_false_accepts`]
//!   (default 10), i.e. when the impostor set holds enough pairs for the
//!   FAR level to be resolved; otherwise [`TarAtFar::NotEstimable`].
//! - **Best accuracy**: `max_t (accepted genuine + rejected impostors) / (G + I)`
//!   including the threshold that accepts nothing. It depends on the
//!   genuine/impostor mix, which pair sampling may have balanced.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result, invalid};

/// Which direction of the score means "same identity".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Polarity {
    /// Similarities: accept when `score ≥ threshold`.
    HigherIsGenuine,
    /// Distances: accept when `score ≤ threshold`.
    LowerIsGenuine,
}

/// Settings of the verification metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationConfig {
    /// FAR levels at which TAR is reported.
    pub far_targets: Vec<f64>,
    /// TAR@FAR=f is estimable when `impostors · f ≥ min_false_accepts`.
    pub min_false_accepts: f64,
    /// Maximum ROC points kept in a report (the full curve is available from
    /// [`roc_curve`]).
    pub roc_points: usize,
    /// Pairs: all when `n(n−1)/2 ≤ max_pairs`, else a seeded sample of this size.
    pub max_pairs: usize,
    /// Seed of the pair sample.
    pub seed: u64,
    /// Bins of the distance histograms.
    pub histogram_bins: usize,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            far_targets: vec![1e-1, 1e-2, 1e-3, 1e-4],
            min_false_accepts: 10.0,
            roc_points: 400,
            max_pairs: 1_000_000,
            seed: 0,
            histogram_bins: 50,
        }
    }
}

/// One ROC operating point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// Threshold, in score units (see [`Polarity`]).
    pub threshold: f64,
    /// False accept rate.
    pub far: f64,
    /// True accept rate.
    pub tar: f64,
}

/// TAR at one FAR level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum TarAtFar {
    /// Estimated from the ROC.
    Estimated {
        /// Requested FAR level.
        far_target: f64,
        /// Highest TAR with FAR ≤ target.
        tar: f64,
        /// FAR actually reached at that threshold.
        far: f64,
        /// The threshold; `None` when only "accept nothing" meets the target.
        threshold: Option<f64>,
    },
    /// Too few impostor pairs to resolve this FAR.
    NotEstimable {
        /// Requested FAR level.
        far_target: f64,
        /// Impostor pairs available.
        impostors: usize,
        /// Impostor pairs that would be needed.
        required: usize,
    },
}

/// Verification metrics of one set of pair scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationMetrics {
    /// Score direction.
    pub polarity: Polarity,
    /// Genuine pairs.
    pub n_genuine: usize,
    /// Impostor pairs.
    pub n_impostor: usize,
    /// Area under the ROC (= Mann–Whitney U / (G·I), ties ½).
    pub auc: f64,
    /// Equal error rate.
    pub eer: f64,
    /// Threshold at the EER.
    pub eer_threshold: f64,
    /// TAR at each configured FAR.
    pub tar_at_far: Vec<TarAtFar>,
    /// Best accuracy over all thresholds.
    pub best_accuracy: f64,
    /// Its threshold (`None`: accepting nothing is best).
    pub best_threshold: Option<f64>,
    /// ROC, thinned to at most `roc_points` points (always keeping the
    /// first and last), strictest threshold first.
    pub roc: Vec<RocPoint>,
}

/// Counts after each distinct score, strictest first.
struct Sweep {
    /// Score in "higher is genuine" orientation.
    x: Vec<f64>,
    tp: Vec<u64>,
    fp: Vec<u64>,
    g: u64,
    i: u64,
    /// Twice the Mann–Whitney U.
    two_u: u128,
}

fn sweep(genuine: &[f64], impostor: &[f64], polarity: Polarity) -> Result<Sweep> {
    for (name, s) in [
        ("genuine pair scores", genuine),
        ("impostor pair scores", impostor),
    ] {
        if s.is_empty() {
            return Err(EvalError::Empty {
                input: name.into(),
                what: "no pairs".into(),
            });
        }
        if let Some(p) = s.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite {
                input: name.into(),
                row: p,
                column: 0,
                value: s[p],
            });
        }
    }
    let sign = if polarity == Polarity::HigherIsGenuine {
        1.0
    } else {
        -1.0
    };
    let mut all: Vec<(f64, bool)> = genuine
        .iter()
        .map(|&v| (sign * v, true))
        .chain(impostor.iter().map(|&v| (sign * v, false)))
        .collect();
    all.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let mut sw = Sweep {
        x: Vec::new(),
        tp: Vec::new(),
        fp: Vec::new(),
        g: genuine.len() as u64,
        i: impostor.len() as u64,
        two_u: 0,
    };
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut k = 0;
    while k < all.len() {
        let x = all[k].0;
        let (mut gg, mut ii) = (0u64, 0u64);
        while k < all.len() && all[k].0 == x {
            if all[k].1 {
                gg += 1
            } else {
                ii += 1
            }
            k += 1;
        }
        sw.two_u += u128::from(ii) * u128::from(2 * tp + gg);
        tp += gg;
        fp += ii;
        sw.x.push(x);
        sw.tp.push(tp);
        sw.fp.push(fp);
    }
    Ok(sw)
}

/// The full ROC: one point per distinct score, strictest threshold first.
pub fn roc_curve(genuine: &[f64], impostor: &[f64], polarity: Polarity) -> Result<Vec<RocPoint>> {
    let sw = sweep(genuine, impostor, polarity)?;
    let sign = if polarity == Polarity::HigherIsGenuine {
        1.0
    } else {
        -1.0
    };
    Ok((0..sw.x.len())
        .map(|p| RocPoint {
            threshold: sign * sw.x[p],
            far: sw.fp[p] as f64 / sw.i as f64,
            tar: sw.tp[p] as f64 / sw.g as f64,
        })
        .collect())
}

/// All verification metrics of the given pair scores.
///
/// # Errors
/// [`EvalError::Empty`] when either set is empty, [`EvalError::NonFinite`]
/// for a NaN/∞ score, [`EvalError::InvalidParameter`] for a FAR target
/// outside (0, 1].
pub fn verification_metrics(
    genuine: &[f64],
    impostor: &[f64],
    polarity: Polarity,
    config: &VerificationConfig,
) -> Result<VerificationMetrics> {
    if let Some(f) = config
        .far_targets
        .iter()
        .find(|f| !(**f > 0.0 && **f <= 1.0))
    {
        return Err(invalid("FAR target", format!("{f} is not in (0, 1]")));
    }
    if !(config.min_false_accepts.is_finite() && config.min_false_accepts >= 0.0) {
        return Err(invalid(
            "min_false_accepts",
            format!("{} is not a finite number ≥ 0", config.min_false_accepts),
        ));
    }
    let sw = sweep(genuine, impostor, polarity)?;
    let sign = if polarity == Polarity::HigherIsGenuine {
        1.0
    } else {
        -1.0
    };
    let (g, i) = (sw.g as f64, sw.i as f64);
    let far = |p: usize| sw.fp[p] as f64 / i;
    let tar = |p: usize| sw.tp[p] as f64 / g;
    let thr = |p: usize| sign * sw.x[p];
    let n = sw.x.len();

    // EER: first point with FAR ≥ FRR, interpolated with the one before.
    let c = (0..n).find(|&p| far(p) >= 1.0 - tar(p)).unwrap_or(n - 1);
    let (far_c, frr_c) = (far(c), 1.0 - tar(c));
    let (far_p, frr_p) = if c == 0 {
        (0.0, 1.0)
    } else {
        (far(c - 1), 1.0 - tar(c - 1))
    };
    let (eer, eer_threshold) = if far_c == frr_c {
        (far_c, thr(c))
    } else {
        let lambda = (frr_p - far_p) / ((frr_p - far_p) - (frr_c - far_c));
        let eer = far_p + lambda * (far_c - far_p);
        let t = if c > 0 && frr_p < far_c {
            thr(c - 1)
        } else {
            thr(c)
        };
        (eer, t)
    };

    let tar_at_far = config
        .far_targets
        .iter()
        .map(|&f| {
            let required = (config.min_false_accepts / f).ceil() as usize;
            if i * f < config.min_false_accepts {
                return TarAtFar::NotEstimable {
                    far_target: f,
                    impostors: sw.i as usize,
                    required,
                };
            }
            // Points are monotone in FAR: the last one with FAR ≤ f.
            let last = sw.fp.partition_point(|&fp| fp as f64 / i <= f);
            if last == 0 {
                TarAtFar::Estimated {
                    far_target: f,
                    tar: 0.0,
                    far: 0.0,
                    threshold: None,
                }
            } else {
                let p = last - 1;
                TarAtFar::Estimated {
                    far_target: f,
                    tar: tar(p),
                    far: far(p),
                    threshold: Some(thr(p)),
                }
            }
        })
        .collect();

    let mut best = (sw.i as f64 / (g + i), None);
    for p in 0..n {
        let acc = (sw.tp[p] + (sw.i - sw.fp[p])) as f64 / (g + i);
        if acc > best.0 {
            best = (acc, Some(thr(p)));
        }
    }

    let roc = thin_roc(&sw, config.roc_points)
        .into_iter()
        .map(|p| RocPoint {
            threshold: thr(p),
            far: far(p),
            tar: tar(p),
        })
        .collect();
    Ok(VerificationMetrics {
        polarity,
        n_genuine: sw.g as usize,
        n_impostor: sw.i as usize,
        auc: sw.two_u as f64 / (2.0 * g * i),
        eer,
        eer_threshold,
        tar_at_far,
        best_accuracy: best.0,
        best_threshold: best.1,
        roc,
    })
}

/// Indices of at most `max` points: half at log-spaced FAR levels (for
/// TAR@FAR plots), half at linear FAR levels, plus the ends.
fn thin_roc(sw: &Sweep, max: usize) -> Vec<usize> {
    let n = sw.x.len();
    if n <= max.max(2) {
        return (0..n).collect();
    }
    let i = sw.i as f64;
    let half = (max.saturating_sub(2) / 2).max(1);
    let mut keep = vec![0, n - 1];
    let lo = (1.0 / i).log10();
    for s in 0..half {
        let log_level = 10f64.powf(lo + (0.0 - lo) * s as f64 / (half - 1).max(1) as f64);
        let lin_level = (s + 1) as f64 / half as f64;
        for level in [log_level, lin_level] {
            let last = sw.fp.partition_point(|&fp| fp as f64 / i <= level);
            keep.push(last.saturating_sub(1));
        }
    }
    keep.sort_unstable();
    keep.dedup();
    keep
}
