//! One validator per concept. Every numeric option of every command and configuration
//! goes through one of these, so the same value gets the same verdict and the same
//! message everywhere (`margin train`'s TOML, `margin embed --scale`, `margin loss
//! --margin`, `margin eval --max-pairs`, the Python bindings later).
//!
//! Each returns [`MarginError::InvalidConfig`] naming the field as the user spelled it
//! (`"train.lr"`, `"--scale"`), the value, and the rule. The CLI turns them into clap
//! value parsers, so a bad flag is refused before anything runs.
//!
//! The rules themselves live in `margin_linalg::check` (Burn-free, so margin-data and
//! margin-eval use the same ones); this module names the field for [`MarginError`] and
//! adds the rules that need a [`Distance`] (margins against its range). The bounds on
//! sizes ([`MAX_DIM`], [`MAX_BATCH`]) are sanity bounds, not memory budgets; the run's
//! memory budget is checked separately (`margin_data::memory`).

use crate::{Distance, MarginError, Result};
use margin_linalg::check as rule;

pub use margin_linalg::check::{MAX_BATCH, MAX_CHANNELS, MAX_DIM};

fn named(field: &'static str) -> impl FnOnce(rule::Invalid) -> MarginError {
    move |e| MarginError::InvalidConfig { field, value: e.value, reason: e.reason }
}

/// A finite number (any sign).
pub fn finite(field: &'static str, v: f64) -> Result<f64> {
    rule::finite(v).map_err(named(field))
}

/// A finite number `> 0` (learning rate, scale, temperature).
pub fn positive(field: &'static str, v: f64) -> Result<f64> {
    rule::positive(v).map_err(named(field))
}

/// A finite number `>= 0` (weight decay, shifts).
pub fn non_negative(field: &'static str, v: f64) -> Result<f64> {
    rule::non_negative(v).map_err(named(field))
}

/// A fraction in `[0, 1)` (a held-out share, momentum).
pub fn fraction(field: &'static str, v: f64) -> Result<f64> {
    rule::fraction(v).map_err(named(field))
}

/// A count `>= min` (epochs, batches, queries).
pub fn count(field: &'static str, n: usize, min: usize) -> Result<usize> {
    rule::count(n, min).map_err(named(field))
}

/// A size in `[1, max]` (a dimension, a batch): a value past `max` is refused before
/// anything is allocated.
pub fn size(field: &'static str, n: usize, max: usize) -> Result<usize> {
    rule::size(n, max).map_err(named(field))
}

/// An interval `low < high` of optional finite bounds (the threshold reducer's): an empty
/// interval would keep nothing, so the loss would be 0 and nothing would train.
pub fn interval(field: &'static str, low: Option<f64>, high: Option<f64>) -> Result<()> {
    rule::interval(low, high).map_err(named(field))
}

/// The range of values `distance` takes between L2-normalised rows, `(closest, farthest)`
/// in its own units; `None` when the rows are not normalised (unbounded).
pub fn normalized_range(distance: &Distance) -> Option<(f64, f64)> {
    if !distance.normalizes() {
        return None;
    }
    Some(match distance {
        Distance::Lp(d) => match d.power {
            crate::Power::Euclidean => (0.0, 2.0),
            crate::Power::SquaredEuclidean => (0.0, 4.0),
        },
        // Similarities: larger is closer.
        Distance::Cosine(_) | Distance::Dot(_) => (1.0, -1.0),
    })
}

/// A margin compared against `distance` (a triplet margin: the gap between the positive's
/// and the negative's distance): finite, and when the rows are L2-normalised no larger
/// than the span of the distance — past it every tuple violates the margin at every step
/// (the hinge is always active, the seed's "margin too large"), which is a linear loss,
/// not a margin loss.
pub fn margin(field: &'static str, m: f64, distance: &Distance) -> Result<f64> {
    finite(field, m)?;
    if let Some((a, b)) = normalized_range(distance) {
        let span = (a - b).abs();
        if m.abs() > span {
            return Err(MarginError::InvalidConfig {
                field,
                value: m.to_string(),
                reason: margin_reason(distance),
            });
        }
    }
    Ok(m)
}

/// A threshold on `distance` itself (a contrastive loss's positive or negative margin):
/// finite, and within the distance's range between normalised rows, where outside it
/// every pair (or none) is active at every step.
pub fn threshold(field: &'static str, t: f64, distance: &Distance) -> Result<f64> {
    finite(field, t)?;
    if let Some((a, b)) = normalized_range(distance) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        if !(lo..=hi).contains(&t) {
            return Err(MarginError::InvalidConfig { field, value: t.to_string(), reason: threshold_reason(distance) });
        }
    }
    Ok(t)
}

fn margin_reason(distance: &Distance) -> &'static str {
    match normalized_range(distance) {
        Some((_, 4.0)) => "exceeds 4, the span of the squared Euclidean distance between L2-normalised embeddings: every tuple would violate it at every step (margin too large); the margin is in squared units",
        Some((_, 2.0)) => "exceeds 2, the span of the Euclidean distance between L2-normalised embeddings: every tuple would violate it at every step (margin too large)",
        _ => "exceeds 2, the span of the cosine similarity: every tuple would violate it at every step (margin too large)",
    }
}

fn threshold_reason(distance: &Distance) -> &'static str {
    match normalized_range(distance) {
        Some((_, 4.0)) => "is outside [0, 4], the range of the squared Euclidean distance between L2-normalised embeddings (the margin is in squared units)",
        Some((_, 2.0)) => "is outside [0, 2], the range of the Euclidean distance between L2-normalised embeddings",
        _ => "is outside [-1, 1], the range of the cosine similarity",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_beyond_the_normalised_span_are_refused_naming_the_units() {
        let e = Distance::euclidean_normalized();
        assert_eq!(margin("train.loss.margin", 0.2, &e).unwrap(), 0.2);
        let err = margin("train.loss.margin", 1e300, &e).unwrap_err().to_string();
        assert!(err.contains("train.loss.margin") && err.contains("exceeds 2"), "{err}");
        let sq = Distance::from_name("squared-euclidean", true).unwrap();
        assert!(margin("m", 3.0, &sq).is_ok());
        assert!(margin("m", 4.5, &sq).unwrap_err().to_string().contains("squared units"));
        let raw = Distance::from_name("euclidean", false).unwrap();
        assert!(margin("m", 1e6, &raw).is_ok(), "unnormalised distances are unbounded");
        assert!(margin("m", f64::NAN, &raw).is_err());
        let cos = Distance::from_name("cosine", true).unwrap();
        assert!(threshold("neg", 0.5, &cos).is_ok() && threshold("neg", 1.5, &cos).is_err());
    }

    #[test]
    fn an_empty_threshold_interval_is_refused() {
        assert!(interval("reducer", Some(0.1), Some(0.5)).is_ok());
        assert!(interval("reducer", None, Some(0.5)).is_ok());
        let err = interval("reducer", Some(0.5), Some(0.1)).unwrap_err().to_string();
        assert!(err.contains("low must be < high"), "{err}");
        assert!(interval("reducer", Some(f64::NAN), None).is_err());
    }

    #[test]
    fn sizes_and_counts() {
        assert!(size("train.model.embedding_dim", 100_000_000_000, MAX_DIM).unwrap_err().to_string().contains("the largest accepted is 65536"));
        assert!(size("d", 0, MAX_DIM).is_err());
        assert!(count("--episode-queries", 0, 1).is_err());
        assert!(positive("--scale", -16.0).unwrap_err().to_string().contains("--scale = -16"));
        assert!(positive("--scale", f64::NAN).is_err() && positive("--scale", 0.0).is_err());
        assert!(fraction("split.val_fraction", 1.0).is_err());
    }
}
