//! Genuine/impostor pairs from labelled embeddings, their distance
//! histograms, and the verification report built on them.
//!
//! **Which pairs.** When the set has at most
//! [`VerificationConfig::max_pairs`] unordered pairs `{i, j}`, `i ≠ j`, all are
//! used. Otherwise a seeded sample of exactly `max_pairs` distinct pairs
//! (fewer only if the set has fewer pairs of a kind): up to half genuine
//! pairs, drawn uniformly without replacement from all genuine pairs (all of
//! them if there are fewer), the rest impostor pairs, drawn uniformly without
//! replacement from all impostor pairs. Uniform *within* each kind keeps the
//! TAR/FAR estimates unbiased; balancing the kinds keeps enough genuine pairs
//! when there are many classes (uniform pairs over 1,000 classes would be
//! 0.1 % genuine). The report states the counts and whether it sampled.

use std::collections::HashSet;

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{ClassIndex, Labelled};
use crate::distance::Distance;
use crate::error::{EvalError, Result, invalid};
use margin_linalg::Real;
use crate::verification::{
    Polarity, VerificationConfig, VerificationMetrics, verification_metrics,
};

/// Genuine and impostor pairs of row indices (`i < j`).
#[derive(Clone, Debug, PartialEq)]
pub struct Pairs {
    /// Same-label pairs.
    pub genuine: Vec<(u32, u32)>,
    /// Different-label pairs.
    pub impostor: Vec<(u32, u32)>,
    /// `true` when these are all pairs of the set.
    pub exhaustive: bool,
}

/// Histograms of pair values over shared bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` bin edges, ascending; bin `b` is `[edges[b], edges[b+1])`,
    /// the last bin closed.
    pub edges: Vec<f64>,
    /// Genuine (same-class) pairs per bin.
    pub genuine: Vec<u64>,
    /// Impostor (different-class) pairs per bin.
    pub impostor: Vec<u64>,
}

/// Verification over labelled embeddings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// Distance used to score pairs.
    pub distance: Distance,
    /// Whether all pairs were used (else a seeded sample).
    pub exhaustive: bool,
    /// Total unordered pairs in the set.
    pub total_pairs: u64,
    /// Seed of the sample (meaningful when not exhaustive).
    pub seed: u64,
    /// Decision rule of the thresholds, in words.
    pub rule: String,
    /// The metrics (including counts of genuine and impostor pairs).
    pub metrics: VerificationMetrics,
    /// Same-class vs different-class distance histograms.
    pub histogram: Histogram,
}

/// Chooses the pairs of `labels` (see the module docs).
pub fn make_pairs(labels: &[i64], max_pairs: usize, seed: u64) -> Result<Pairs> {
    if max_pairs < 2 {
        return Err(invalid("max pairs", "must be at least 2"));
    }
    let n = labels.len() as u64;
    let classes = ClassIndex::new(labels);
    let total = n * n.saturating_sub(1) / 2;
    let sizes: Vec<u64> = classes.members.iter().map(|m| m.len() as u64).collect();
    let total_gen: u64 = sizes.iter().map(|&c| c * c.saturating_sub(1) / 2).sum();
    let total_imp = total - total_gen;
    if total <= max_pairs as u64 {
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for i in 0..labels.len() {
            for j in i + 1..labels.len() {
                let p = (i as u32, j as u32);
                if classes.ids[i] == classes.ids[j] {
                    genuine.push(p)
                } else {
                    impostor.push(p)
                }
            }
        }
        return Ok(Pairs {
            genuine,
            impostor,
            exhaustive: true,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let want_gen = total_gen.min(max_pairs as u64 / 2);
    let want_imp = total_imp.min(max_pairs as u64 - want_gen);
    // Genuine: uniform indices into the concatenated per-class triangles.
    let mut starts = Vec::with_capacity(sizes.len());
    let mut acc = 0u64;
    for &c in &sizes {
        starts.push(acc);
        acc += c * c.saturating_sub(1) / 2;
    }
    let decode = |g: u64| -> (u32, u32) {
        let c = starts.partition_point(|&s| s <= g) - 1;
        let (a, b) = triangle(g - starts[c]);
        let m = &classes.members[c];
        (m[a as usize], m[b as usize])
    };
    let mut genuine: Vec<(u32, u32)> = if want_gen == total_gen {
        (0..total_gen).map(decode).collect()
    } else {
        sample_u64(&mut rng, total_gen, want_gen)
            .into_iter()
            .map(decode)
            .collect()
    };
    genuine.sort_unstable();
    // Impostor: i with probability ∝ (n − |class(i)|), then j uniform outside i's class.
    let mut by_class: Vec<u32> = Vec::with_capacity(labels.len());
    let mut class_start = vec![0usize; sizes.len()];
    for (c, m) in classes.members.iter().enumerate() {
        class_start[c] = by_class.len();
        by_class.extend_from_slice(m);
    }
    let weights: Vec<u64> = classes.ids.iter().map(|&c| n - sizes[c as usize]).collect();
    let mut cum = Vec::with_capacity(weights.len());
    let mut s = 0u64;
    for w in &weights {
        s += w;
        cum.push(s);
    }
    let mut seen: HashSet<(u32, u32)> = HashSet::with_capacity(want_imp as usize);
    while (seen.len() as u64) < want_imp {
        let u = rng.random_range(0..s);
        let i = cum.partition_point(|&c| c <= u);
        let c = classes.ids[i] as usize;
        let r = rng.random_range(0..weights[i]) as usize;
        let j = if r < class_start[c] {
            by_class[r]
        } else {
            by_class[r + sizes[c] as usize]
        };
        let p = if (i as u32) < j {
            (i as u32, j)
        } else {
            (j, i as u32)
        };
        seen.insert(p);
    }
    let mut impostor: Vec<(u32, u32)> = seen.into_iter().collect();
    impostor.sort_unstable();
    Ok(Pairs {
        genuine,
        impostor,
        exhaustive: false,
    })
}

/// `amount` distinct values from `0..len`, uniformly.
fn sample_u64(rng: &mut ChaCha8Rng, len: u64, amount: u64) -> Vec<u64> {
    if let Ok(l) = usize::try_from(len) {
        return index::sample(rng, l, amount as usize)
            .into_iter()
            .map(|v| v as u64)
            .collect();
    }
    let mut seen = HashSet::with_capacity(amount as usize);
    while (seen.len() as u64) < amount {
        seen.insert(rng.random_range(0..len));
    }
    seen.into_iter().collect()
}

/// The `t`-th pair `(a, b)`, `a < b`, in the order (0,1), (0,2), (1,2), (0,3), …
fn triangle(t: u64) -> (u64, u64) {
    let mut b = ((((8 * t + 1) as f64).sqrt() + 1.0) / 2.0) as u64;
    while b * (b - 1) / 2 > t {
        b -= 1;
    }
    while (b + 1) * b / 2 <= t {
        b += 1;
    }
    (t - b * (b - 1) / 2, b)
}

/// Distance (or dot product) of each pair, computed in `f64`.
pub fn pair_values<T: Real>(
    set: &Labelled<T>,
    pairs: &[(u32, u32)],
    distance: Distance,
) -> Vec<f64> {
    let e = &set.embeddings;
    pairs
        .par_iter()
        .map(|&(i, j)| distance.between(e.row(i as usize), e.row(j as usize)))
        .collect()
}

/// Histograms of `genuine` and `impostor` over `bins` equal bins spanning both.
pub fn histogram(genuine: &[f64], impostor: &[f64], bins: usize) -> Histogram {
    let bins = bins.max(1);
    let all = genuine.iter().chain(impostor).copied();
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi <= lo {
        (lo, hi) = (lo - 0.5, lo + 0.5);
    }
    let width = (hi - lo) / bins as f64;
    let edges = (0..=bins)
        .map(|b| if b == bins { hi } else { lo + width * b as f64 })
        .collect();
    let count = |vals: &[f64]| {
        let mut h = vec![0u64; bins];
        for &v in vals {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            h[b] += 1;
        }
        h
    };
    Histogram {
        edges,
        genuine: count(genuine),
        impostor: count(impostor),
    }
}

/// Verification metrics of the pairs of a labelled set (see the module docs).
///
/// # Errors
/// [`EvalError::NotEnoughData`] when the set has no genuine or no impostor
/// pair; parameter errors from [`verification_metrics`].
pub fn verification<T: Real>(
    set: &Labelled<T>,
    distance: Distance,
    config: &VerificationConfig,
) -> Result<VerificationReport> {
    let pairs = make_pairs(set.labels(), config.max_pairs, config.seed)?;
    for (kind, p) in [
        ("genuine (same-label)", &pairs.genuine),
        ("impostor (different-label)", &pairs.impostor),
    ] {
        if p.is_empty() {
            return Err(EvalError::NotEnoughData {
                input: set.labels_name().to_string(),
                reason: format!("no {kind} pairs for verification"),
            });
        }
    }
    let g = pair_values(set, &pairs.genuine, distance);
    let i = pair_values(set, &pairs.impostor, distance);
    let polarity = if distance.higher_is_closer() {
        Polarity::HigherIsGenuine
    } else {
        Polarity::LowerIsGenuine
    };
    let metrics = verification_metrics(&g, &i, polarity, config)?;
    let n = set.labels().len() as u64;
    Ok(VerificationReport {
        distance,
        exhaustive: pairs.exhaustive,
        total_pairs: n * (n - 1) / 2,
        seed: config.seed,
        rule: match polarity {
            Polarity::HigherIsGenuine => format!("same identity when {distance} ≥ threshold"),
            Polarity::LowerIsGenuine => {
                format!("same identity when {distance} distance ≤ threshold")
            }
        },
        metrics,
        histogram: histogram(&g, &i, config.histogram_bins),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangle_enumerates_pairs() {
        let mut t = 0;
        for b in 1..60u64 {
            for a in 0..b {
                assert_eq!(triangle(t), (a, b));
                t += 1;
            }
        }
    }

    #[test]
    fn exhaustive_and_sampled_pairs() {
        let labels: Vec<i64> = (0..40).map(|i| i % 4).collect();
        let all = make_pairs(&labels, 10_000, 0).unwrap();
        assert!(all.exhaustive);
        assert_eq!(all.genuine.len(), 4 * 45);
        assert_eq!(all.impostor.len(), 780 - 180);
        let s = make_pairs(&labels, 100, 3).unwrap();
        assert!(!s.exhaustive);
        assert_eq!((s.genuine.len(), s.impostor.len()), (50, 50));
        let gs: HashSet<_> = s.genuine.iter().collect();
        assert_eq!(gs.len(), 50);
        assert!(
            s.genuine
                .iter()
                .all(|&(i, j)| i < j && labels[i as usize] == labels[j as usize])
        );
        assert!(
            s.impostor
                .iter()
                .all(|&(i, j)| i < j && labels[i as usize] != labels[j as usize])
        );
        assert_eq!(s, make_pairs(&labels, 100, 3).unwrap(), "seeded");
        assert_ne!(s, make_pairs(&labels, 100, 4).unwrap());
    }

    #[test]
    fn histogram_bins() {
        let h = histogram(&[0.0, 0.1, 1.0], &[0.5, 0.99], 2);
        assert_eq!(h.edges, vec![0.0, 0.5, 1.0]);
        assert_eq!(h.genuine, vec![2, 1]);
        assert_eq!(h.impostor, vec![0, 2]);
    }
}
