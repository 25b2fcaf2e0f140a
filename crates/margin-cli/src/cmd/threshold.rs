//! Which distance threshold a command decides with, and where it came from: `--threshold T`
//! (the user's), or `--far F` (a calibrated threshold of the model card, when the card has
//! one for that false-accept rate). Every command that decides prints the value and its
//! source, so a decision can always be traced to a number and its origin.

use anyhow::{Result, bail};

/// The flags of a decision threshold.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ThresholdArgs {
    /// Decide with this distance threshold (in the metric's unit, smaller is closer: a
    /// pair matches when its distance is at most T).
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = crate::flags::finite, conflicts_with = "far")]
    pub threshold: Option<f64>,
    /// Decide with the model card's threshold calibrated at this false-accept rate
    /// (e.g. 1e-3; needs a card with calibrated thresholds, `--model RUN`).
    #[arg(long, value_name = "F", value_parser = crate::flags::positive)]
    pub far: Option<f64>,
}

/// A threshold in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The distance threshold (a pair matches at `distance <= value`).
    pub value: f32,
    /// Where it came from, in words (`--threshold`, `model card: FAR 1e-3 …`).
    pub source: String,
}

impl Threshold {
    /// Whether a distance matches.
    pub fn matches(&self, distance: f32) -> bool {
        distance <= self.value
    }
}

/// The threshold the flags ask for (`None`: no flag given); `card` supplies `--far`
/// thresholds when the command has a model card.
pub fn resolve(a: &ThresholdArgs, card: Option<&dyn CardThresholds>) -> Result<Option<Threshold>> {
    if let Some(t) = a.threshold {
        return Ok(Some(Threshold { value: t as f32, source: "--threshold".into() }));
    }
    let Some(far) = a.far else { return Ok(None) };
    let Some(card) = card else {
        bail!("--far {far} needs a model card with calibrated thresholds (--model RUN); with precomputed embeddings give --threshold T");
    };
    card.at_far(far).map(Some)
}

/// A source of calibrated thresholds (the model card).
pub trait CardThresholds {
    /// The threshold calibrated at false-accept rate `far`, with its source.
    ///
    /// # Errors
    /// A card without calibrated thresholds, or without one for `far`.
    fn at_far(&self, far: f64) -> Result<Threshold>;
}

/// Requires a threshold: the flags', else `fallback` (e.g. the card's default), else an error.
pub fn required(t: Option<Threshold>, fallback: Option<Threshold>, command: &str) -> Result<Threshold> {
    match t.or(fallback) {
        Some(t) => Ok(t),
        None => bail!("{command} needs a threshold: give --threshold T (a distance) or --far F with a model card that has calibrated thresholds"),
    }
}
