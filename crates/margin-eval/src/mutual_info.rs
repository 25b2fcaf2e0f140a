//! Normalised and adjusted mutual information between two labellings.
//!
//! Definitions follow scikit-learn (`normalized_mutual_info_score`,
//! `adjusted_mutual_info_score`, both with the default
//! `average_method="arithmetic"`), which pytorch-metric-learning calls:
//!
//! - `MI = Σ_ij (n_ij/N) ln(N n_ij / (a_i b_j))` over the contingency table
//!   `n_ij` with row sums `a_i`, column sums `b_j`;
//! - `NMI = MI / ((H(U) + H(V)) / 2)`;
//! - `AMI = (MI − E[MI]) / ((H(U) + H(V)) / 2 − E[MI])` (Vinh, Epps & Bailey
//!   2010, "Information Theoretic Measures for Clusterings Comparison"),
//!   where `E[MI]` is the expected mutual information under the
//!   hypergeometric model of random labellings with the same marginals.
//!
//! Special cases as in scikit-learn: two labellings that each put everything
//! in one group score 1; `MI = 0` gives `NMI = 0`; the AMI denominator is
//! kept at least machine epsilon away from 0.
//!
//! `E[MI]` is computed exactly with a table of `ln n!`, summing over the
//! *distinct* row and column sums (weighted by how often each occurs), which
//! makes it cheap for balanced classes.
//!
//! Every table is a `BTreeMap`, so every sum runs in the same order on every run: a
//! `HashMap`'s iteration order is seeded per process, which made NMI/AMI differ in their
//! last digits between two identical runs (same seed → same bits is a project rule).

use std::collections::BTreeMap;

/// Contingency table of two labellings: cell counts and both marginals.
struct Table {
    n: f64,
    a: BTreeMap<u32, u64>,
    b: BTreeMap<u32, u64>,
    cells: BTreeMap<(u32, u32), u64>,
}

impl Table {
    fn new(u: &[u32], v: &[u32]) -> Self {
        let mut t = Table {
            n: u.len() as f64,
            a: BTreeMap::new(),
            b: BTreeMap::new(),
            cells: BTreeMap::new(),
        };
        for (&x, &y) in u.iter().zip(v) {
            *t.cells.entry((x, y)).or_default() += 1;
            *t.a.entry(x).or_default() += 1;
            *t.b.entry(y).or_default() += 1;
        }
        t
    }

    /// Mutual information in nats.
    fn mutual_info(&self) -> f64 {
        let n = self.n;
        let mi: f64 = self
            .cells
            .iter()
            .map(|(&(x, y), &c)| {
                let c = c as f64;
                c / n * (n * c / (self.a[&x] as f64 * self.b[&y] as f64)).ln()
            })
            .sum();
        mi.max(0.0)
    }

    /// Arithmetic mean of the two entropies.
    fn mean_entropy(&self) -> f64 {
        let h = |m: &BTreeMap<u32, u64>| -> f64 {
            -m.values()
                .map(|&c| c as f64 / self.n)
                .map(|p| p * p.ln())
                .sum::<f64>()
        };
        (h(&self.a) + h(&self.b)) / 2.0
    }

    /// Both labellings put everything in one group (or are empty).
    fn trivial(&self) -> bool {
        self.a.len() <= 1 && self.b.len() <= 1
    }
}

/// Normalised mutual information of labellings `u` and `v` (same length).
pub fn normalized_mutual_info(u: &[u32], v: &[u32]) -> f64 {
    let t = Table::new(u, v);
    if t.trivial() {
        return 1.0;
    }
    let mi = t.mutual_info();
    if mi == 0.0 {
        return 0.0;
    }
    mi / t.mean_entropy()
}

/// Adjusted mutual information of labellings `u` and `v` (same length).
pub fn adjusted_mutual_info(u: &[u32], v: &[u32]) -> f64 {
    let t = Table::new(u, v);
    if t.trivial() {
        return 1.0;
    }
    let a: Vec<u64> = t.a.values().copied().collect();
    let b: Vec<u64> = t.b.values().copied().collect();
    let emi = expected_mutual_info(&a, &b, u.len() as u64);
    let den = t.mean_entropy() - emi;
    let den = if den < 0.0 {
        den.min(-f64::EPSILON)
    } else {
        den.max(f64::EPSILON)
    };
    (t.mutual_info() - emi) / den
}

/// Expected mutual information of two random labellings with row sums `a`
/// and column sums `b` over `n` items (hypergeometric model).
pub fn expected_mutual_info(a: &[u64], b: &[u64], n: u64) -> f64 {
    if a.len() <= 1 || b.len() <= 1 {
        return 0.0;
    }
    let nf = n as f64;
    // ln k! for k = 0..=n.
    let mut lf = vec![0.0f64; n as usize + 1];
    for k in 1..=n as usize {
        lf[k] = lf[k - 1] + (k as f64).ln();
    }
    let group = |xs: &[u64]| {
        let mut m: BTreeMap<u64, u64> = BTreeMap::new();
        for &x in xs {
            *m.entry(x).or_default() += 1;
        }
        let mut g: Vec<(u64, u64)> = m.into_iter().collect();
        g.sort_unstable();
        g
    };
    let (ga, gb) = (group(a), group(b));
    let mut emi = 0.0;
    for &(ai, wa) in &ga {
        for &(bj, wb) in &gb {
            let lo = (ai + bj).saturating_sub(n).max(1);
            let hi = ai.min(bj);
            let mut s = 0.0;
            let fixed =
                lf[ai as usize] + lf[bj as usize] + lf[(n - ai) as usize] + lf[(n - bj) as usize]
                    - lf[n as usize];
            for nij in lo..=hi {
                let x = nij as f64;
                let term2 = (nf * x).ln() - (ai as f64).ln() - (bj as f64).ln();
                let gln = fixed
                    - lf[nij as usize]
                    - lf[(ai - nij) as usize]
                    - lf[(bj - nij) as usize]
                    - lf[(n + nij - ai - bj) as usize];
                s += x / nf * term2 * gln.exp();
            }
            emi += (wa * wb) as f64 * s;
        }
    }
    emi
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_labellings_give_the_same_bits_every_time() {
        // Many classes, so a per-instance hash order would change the summation order.
        let u: Vec<u32> = (0..3000u32).map(|i| (i * 7919) % 317).collect();
        let v: Vec<u32> = (0..3000u32).map(|i| (i * 104_729 + i / 3) % 311).collect();
        let (nmi, ami) = (normalized_mutual_info(&u, &v), adjusted_mutual_info(&u, &v));
        for _ in 0..20 {
            assert_eq!(normalized_mutual_info(&u, &v).to_bits(), nmi.to_bits());
            assert_eq!(adjusted_mutual_info(&u, &v).to_bits(), ami.to_bits());
        }
    }

    use super::*;

    #[test]
    fn matches_scikit_learn() {
        // Reference values from scikit-learn 1.9.1:
        // normalized_mutual_info_score / adjusted_mutual_info_score(u, v).
        let u = [0u32, 0, 0, 1, 1, 1, 2, 2, 2, 2];
        let v = [0u32, 0, 1, 1, 1, 2, 2, 2, 0, 2];
        let nmi = normalized_mutual_info(&u, &v);
        let ami = adjusted_mutual_info(&u, &v);
        assert!((nmi - NMI_REF).abs() < 1e-12, "nmi {nmi}");
        assert!((ami - AMI_REF).abs() < 1e-12, "ami {ami}");
        // Relabelling does not matter; identical partitions score 1.
        let w: Vec<u32> = u.iter().map(|&x| 7 - x).collect();
        assert!((normalized_mutual_info(&u, &w) - 1.0).abs() < 1e-12);
        assert!((adjusted_mutual_info(&u, &w) - 1.0).abs() < 1e-12);
        // Degenerate cases as in scikit-learn.
        assert_eq!(normalized_mutual_info(&[0, 0, 0], &[5, 5, 5]), 1.0);
        assert_eq!(normalized_mutual_info(&[0, 0, 1, 1], &[0, 1, 0, 1]), 0.0);
    }

    const NMI_REF: f64 = 0.44270128334605;
    const AMI_REF: f64 = 0.23728877770133558;

    #[test]
    fn matches_scikit_learn_larger() {
        // Same formulas in Python; values from scikit-learn 1.9.1.
        let u: Vec<u32> = (0..200u32).map(|i| (i * 7 + i / 3) % 5).collect();
        let v: Vec<u32> = (0..200u32)
            .map(|i| {
                if i % 4 != 0 {
                    (i * i + 3) % 6
                } else {
                    (i * 7 + i / 3) % 5
                }
            })
            .collect();
        assert!((normalized_mutual_info(&u, &v) - 0.10605445675230443).abs() < 1e-12);
        assert!((adjusted_mutual_info(&u, &v) - 0.08036804951463754).abs() < 1e-12);
        // Unequal group sizes (the last group has 30 items).
        let u: Vec<u32> = (0..150u32).map(|i| (i / 10).min(12)).collect();
        let v: Vec<u32> = (0..150u32).map(|i| (i / 7) % 9).collect();
        assert!((normalized_mutual_info(&u, &v) - 0.5579287272060033).abs() < 1e-12);
        assert!((adjusted_mutual_info(&u, &v) - 0.4704459186130464).abs() < 1e-12);
    }
}
