//! The verdict on a run's margin, from its per-step statistics — the seed's advice made a
//! rule: "too small a margin yields overlapping clusters; too large stops learning because
//! the hinge is rarely active. Sweep margins and monitor the fraction of active constraints."
//!
//! **Figures.** The *late active fraction* is the mean active fraction (the share of mined
//! tuples with a non-zero loss) over the last [`LATE_WINDOW`] of the training steps — the
//! state training ends in, so a run that starts active and stalls is seen as stalled. The
//! *loss drop* is `(first − last) / |first|`, `first` and `last` the mean step loss over the
//! first and the last [`LOSS_WINDOW`] of the steps (0 when `first` is 0).
//!
//! **Rules**, for a loss with a hinge (triplet with a hard margin, contrastive):
//! - late active fraction ≤ [`STALL_ACTIVE_FRACTION`] → [`Verdict::MarginTooSmall`]: almost no
//!   tuple violates the margin — the margin is too small or the batches are too easy, and
//!   training has collapsed or stalled (the trainer's own stall warning uses the same level);
//! - late active fraction ≥ [`SATURATED_ACTIVE_FRACTION`] and loss drop < [`FLAT_LOSS_DROP`]
//!   → [`Verdict::MarginTooLarge`]: nearly every tuple stays active and the loss does not move;
//! - else [`Verdict::Ok`].
//!
//! A loss without a hinge (InfoNCE, the margin-softmax and proxy losses, a soft-margin
//! triplet) has no active set that a margin switches on and off: [`Verdict::NoHinge`], and the
//! report shows its loss curve instead. A run whose training diverged is [`Verdict::Diverged`].

use serde::{Deserialize, Serialize};

use crate::LossSpec;

/// At or below this late active fraction a hinge loss has stalled (the trainer warns below 0.01 too).
pub const STALL_ACTIVE_FRACTION: f64 = 0.01;
/// At or above this late active fraction nearly every tuple violates the margin.
pub const SATURATED_ACTIVE_FRACTION: f64 = 0.95;
/// A loss that fell by less than this share of its starting value is flat.
pub const FLAT_LOSS_DROP: f64 = 0.05;
/// The share of the steps, at the end, the late active fraction is taken over.
pub const LATE_WINDOW: f64 = 0.5;
/// The share of the steps, at the start and at the end, the loss drop compares.
pub const LOSS_WINDOW: f64 = 0.2;

/// What a run's statistics say about its margin (see the module docs for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Neither stalled nor saturated.
    Ok,
    /// Active fraction near 0: margin too small or easy batches (collapse / stall).
    MarginTooSmall,
    /// Active fraction near 1 with a flat loss: margin too large.
    MarginTooLarge,
    /// The loss has no hinge: judge it by its loss curve.
    NoHinge,
    /// Training diverged (non-finite embeddings or loss).
    Diverged,
}

/// The figures a verdict is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The verdict.
    pub verdict: Verdict,
    /// Mean active fraction over the last [`LATE_WINDOW`] of the steps (`None`: no step).
    pub late_active_fraction: Option<f64>,
    /// The loss drop (`None`: no step).
    pub loss_drop: Option<f64>,
}

impl Verdict {
    /// The verdict in words, for the report and the summary.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::MarginTooSmall => "margin too small or easy batches (collapse/stall)",
            Verdict::MarginTooLarge => "margin too large",
            Verdict::NoHinge => "no hinge: see the loss curve",
            Verdict::Diverged => "diverged",
        }
    }
}

/// Whether `loss` has a hinge whose active set a margin controls. Every loss is listed
/// (no wildcard): a new loss must say.
pub fn has_hinge(loss: &LossSpec) -> bool {
    match loss {
        LossSpec::Triplet { smooth, .. } => !smooth,
        LossSpec::Contrastive { .. } => true,
        LossSpec::InfoNce { .. }
        | LossSpec::Arcface { .. }
        | LossSpec::Cosface { .. }
        | LossSpec::NormalizedSoftmax { .. }
        | LossSpec::ProxyAnchor { .. }
        | LossSpec::ProxyNca { .. }
        | LossSpec::SoftTriple { .. } => false,
    }
}

/// The mean of `v` (`None` when empty).
fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// At least one element, at most all: `share` of `n`.
fn window(n: usize, share: f64) -> usize {
    ((n as f64 * share).ceil() as usize).clamp(1, n.max(1))
}

/// The diagnosis of a run with per-step `loss` and `active` fractions (in step order).
pub fn judge(hinge: bool, loss: &[f64], active: &[f64]) -> Diagnosis {
    let late = mean(&active[active.len() - window(active.len(), LATE_WINDOW).min(active.len())..]);
    let w = window(loss.len(), LOSS_WINDOW).min(loss.len());
    let drop = match (mean(&loss[..w]), mean(&loss[loss.len() - w..])) {
        (Some(first), Some(last)) => Some(if first == 0.0 { 0.0 } else { (first - last) / first.abs() }),
        _ => None,
    };
    let verdict = match (hinge, late, drop) {
        (false, _, _) => Verdict::NoHinge,
        (true, Some(a), _) if a <= STALL_ACTIVE_FRACTION => Verdict::MarginTooSmall,
        (true, Some(a), Some(d)) if a >= SATURATED_ACTIVE_FRACTION && d < FLAT_LOSS_DROP => Verdict::MarginTooLarge,
        _ => Verdict::Ok,
    };
    Diagnosis { verdict, late_active_fraction: late, loss_drop: drop }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_at_their_thresholds() {
        let flat = vec![1.0; 10];
        let falling: Vec<f64> = (0..10).map(|i| 1.0 - 0.08 * i as f64).collect();
        // Stalled: active fraction at the stall level late in training, whatever came before.
        let stalling: Vec<f64> = (0..10).map(|i| if i < 5 { 0.5 } else { STALL_ACTIVE_FRACTION }).collect();
        assert_eq!(judge(true, &falling, &stalling).verdict, Verdict::MarginTooSmall);
        let just_above: Vec<f64> = vec![STALL_ACTIVE_FRACTION * 1.5; 10];
        assert_eq!(judge(true, &falling, &just_above).verdict, Verdict::Ok);
        // Saturated with a flat loss: too large; saturated but learning: ok.
        let saturated = vec![SATURATED_ACTIVE_FRACTION; 10];
        assert_eq!(judge(true, &flat, &saturated).verdict, Verdict::MarginTooLarge);
        assert_eq!(judge(true, &falling, &saturated).verdict, Verdict::Ok);
        let d = judge(true, &falling, &saturated);
        // first two steps mean 0.96, last two 0.32: a drop of 2/3.
        assert!((d.loss_drop.unwrap() - (0.96 - 0.32) / 0.96).abs() < 1e-12, "{d:?}");
        assert_eq!(d.late_active_fraction, Some(SATURATED_ACTIVE_FRACTION));
        // A loss falling by just under the flat level is still flat.
        let barely: Vec<f64> = (0..10).map(|i| if i < 5 { 1.0 } else { 1.0 - 0.99 * FLAT_LOSS_DROP }).collect();
        assert_eq!(judge(true, &barely, &saturated).verdict, Verdict::MarginTooLarge);
        // No hinge: whatever the figures.
        assert_eq!(judge(false, &flat, &stalling).verdict, Verdict::NoHinge);
        // No step at all: no figures, no verdict drawn from them.
        let none = judge(true, &[], &[]);
        assert_eq!((none.verdict, none.late_active_fraction, none.loss_drop), (Verdict::Ok, None, None));
        // One step: the windows are that step.
        let one = judge(true, &[2.0], &[1.0]);
        assert_eq!((one.verdict, one.loss_drop), (Verdict::MarginTooLarge, Some(0.0)));
    }

    #[test]
    fn hinges_are_the_hard_margin_losses() {
        let t = LossSpec::default();
        assert!(has_hinge(&t));
        let soft = LossSpec::Triplet { margin: 0.2, swap: false, smooth: true, distance: t.distance(), reducer: margin::Reducer::AvgNonZero };
        assert!(!has_hinge(&soft));
        assert!(!has_hinge(&LossSpec::InfoNce { temperature: 0.05 }));
        assert!(!has_hinge(&LossSpec::ProxyNca { softmax_scale: 1.0, lr: None }));
    }
}
