//! The metric vocabulary is the workspace's one: [`Metric`] *is* margin-eval's
//! [`Distance`](margin_eval::Distance) (`euclidean`, `squared-euclidean`, `cosine`, `dot`;
//! `l2` accepted for euclidean), so a name means the same thing in a config file, in
//! `margin loss` and in an index. What this crate adds is the convention of its output:
//! **a reported distance is smaller-is-closer** — the Euclidean distance, its square,
//! `1 − cosine`, and `−dot` for [`Metric::Dot`] (margin-eval's kNN reports the inner product
//! itself; this crate negates it, so every result list is sorted ascending).
//!
//! Internally the graph and the exact scan rank by a *key*: the squared distance for both
//! Euclidean metrics (the root is taken once, on the k results), `1 − q̂·r̂` for cosine over
//! rows normalised when they enter the index, `−q·r` for dot.

use crate::error::{Result, invalid};

/// How closeness is measured (the conventions page's vocabulary).
pub use margin_eval::Distance as Metric;

/// Parses a metric name (`euclidean`, `l2`, `squared-euclidean`, `cosine`, `dot`, …).
///
/// # Errors
/// [`crate::SearchError::InvalidParameter`] naming the accepted names.
pub fn parse_metric(name: &str) -> Result<Metric> {
    name.parse::<Metric>().map_err(|_| invalid("metric", format!("{name:?} (expected euclidean, squared-euclidean, cosine or dot; l2 = euclidean)")))
}

/// The distance between two rows under this crate's convention (smaller is closer):
/// margin-eval's direct f64 formula, negated for [`Metric::Dot`]. What `margin verify`
/// reports, and the reference the index's distances are tested against.
pub fn distance(m: Metric, a: &[f32], b: &[f32]) -> f64 {
    let v = m.between(a, b);
    if m == Metric::Dot { -v } else { v }
}

/// The metric's code in the index file.
pub(crate) fn code(m: Metric) -> u8 {
    match m {
        Metric::Euclidean => 0,
        Metric::SquaredEuclidean => 1,
        Metric::Cosine => 2,
        Metric::Dot => 3,
    }
}

/// The metric of a file code.
pub(crate) fn from_code(c: u8) -> Option<Metric> {
    Some(match c {
        0 => Metric::Euclidean,
        1 => Metric::SquaredEuclidean,
        2 => Metric::Cosine,
        3 => Metric::Dot,
        _ => return None,
    })
}

/// Whether rows are L2-normalised when they enter an index of this metric.
pub(crate) fn normalises(m: Metric) -> bool {
    m == Metric::Cosine
}

/// The reported distance of an internal key.
#[inline]
pub(crate) fn report(m: Metric, key: f32) -> f32 {
    match m {
        Metric::Euclidean => key.max(0.0).sqrt(),
        Metric::SquaredEuclidean => key.max(0.0),
        Metric::Cosine | Metric::Dot => key,
    }
}

/// Scales `row` to unit L2 norm (an all-zero row stays zero: it has no direction, and its
/// cosine distance to anything is 1, as in margin-eval).
pub(crate) fn normalise(row: &mut [f32]) {
    let n = f64::from(margin_linalg::dot(row, row)).sqrt();
    if n > 0.0 {
        let inv = (1.0 / n) as f32;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        assert_eq!(parse_metric("l2").unwrap(), Metric::Euclidean);
        assert_eq!(parse_metric("squared-euclidean").unwrap(), Metric::SquaredEuclidean);
        let e = parse_metric("manhattan").unwrap_err().to_string();
        assert!(e.contains("metric") && e.contains("manhattan") && e.contains("cosine"), "{e}");
        for m in Metric::ALL {
            assert_eq!(from_code(code(m)), Some(m));
            assert_eq!(parse_metric(m.name()).unwrap(), m);
        }
        assert_eq!(from_code(9), None);
        assert_eq!(report(Metric::Euclidean, 25.0), 5.0);
        assert_eq!(report(Metric::Euclidean, -1e-6), 0.0);
    }
}
