//! Near-duplicate grouping by greedy representatives, and the `groups.json` it is written as.
//!
//! Why greedy representatives rather than connected components: a threshold graph's
//! components chain — `a ≈ b ≈ c ≈ …` puts two items far apart in one group, and on a
//! large gallery an identity-level threshold chains almost everything into one component.
//! Here every member is within the threshold *of its group's representative*, so a group's
//! diameter is at most twice the threshold whatever the gallery size.
//!
//! **The rule** ([`RULE`]): items are taken in input order; each joins the nearest
//! representative among its k nearest neighbours whose distance is at most the threshold
//! (ties: the earlier representative), otherwise it becomes a representative itself.
//! The order makes the result deterministic; the first item of a group in input order is
//! its representative. Only the k nearest neighbours are looked at (the index's kNN, so
//! 100,000 items need one batched search instead of 10¹⁰ distances): a representative
//! beyond an item's k nearest is not found, which matters only when more than k items lie
//! within the threshold of each other — [`group_naive`] is the all-pairs reference the
//! tests hold the kNN version equal to when k covers the gallery.

use serde::Serialize;

use crate::error::{Result, invalid};
use crate::index::{Index, Neighbours, Rows, SearchParams};

/// The grouping rule, as written into `groups.json`.
pub const RULE: &str = "greedy representatives: items in input order; each joins the nearest representative \
among its k nearest neighbours within the threshold (ties: the earlier representative), else it starts a group \
as its representative";

/// The format version of `groups.json`.
pub const GROUPS_VERSION: u32 = 1;

/// Which group each item joined: `rep[i]` is the representative's row (`i` itself for a
/// representative), `dist[i]` the distance to it (0 for a representative).
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Representative row of each row.
    pub rep: Vec<usize>,
    /// Distance of each row to its representative.
    pub dist: Vec<f32>,
}

/// Greedy grouping over each row's candidate list (`candidates(i)`: rows, e.g. its k
/// nearest neighbours; the row itself and later rows are skipped), deciding on
/// `distance(i, j)`. The index's kNN proposes the candidates, the direct formula decides:
/// the GEMM form of a Euclidean distance loses digits near 0, exactly where near-duplicates
/// lie, so the reported distances are the direct ones.
pub fn group_lists<'a>(n: usize, candidates: impl Fn(usize) -> &'a [u32], distance: impl Fn(usize, usize) -> f32, threshold: f32) -> Assignment {
    let mut rep = vec![usize::MAX; n];
    let mut dist = vec![0f32; n];
    for i in 0..n {
        let mut best: Option<(f32, usize)> = None;
        for &j in candidates(i) {
            let j = j as usize;
            // Only earlier rows have been decided; a representative is its own rep.
            if j >= i || rep[j] != j {
                continue;
            }
            let d = distance(i, j);
            if d <= threshold && best.is_none_or(|(bd, bj)| d < bd || (d == bd && j < bj)) {
                best = Some((d, j));
            }
        }
        match best {
            Some((d, j)) => {
                rep[i] = j;
                dist[i] = d;
            }
            None => rep[i] = i,
        }
    }
    Assignment { rep, dist }
}

/// The reference: the same rule over every pair's distance (`distance(i, j)`), O(n²).
pub fn group_naive(n: usize, distance: impl Fn(usize, usize) -> f32, threshold: f32) -> Assignment {
    let mut rep = vec![usize::MAX; n];
    let mut dist = vec![0f32; n];
    let mut reps: Vec<usize> = Vec::new();
    for i in 0..n {
        let mut best: Option<(f32, usize)> = None;
        for &r in &reps {
            let d = distance(i, r);
            if d <= threshold && best.is_none_or(|(bd, br)| d < bd || (d == bd && r < br)) {
                best = Some((d, r));
            }
        }
        match best {
            Some((d, r)) => {
                rep[i] = r;
                dist[i] = d;
            }
            None => {
                rep[i] = i;
                reps.push(i);
            }
        }
    }
    Assignment { rep, dist }
}

/// Groups the rows of `index` (built from exactly these `rows`, slot = row, nothing
/// removed) by searching each row's `k` nearest neighbours (`k` capped at the gallery).
///
/// # Errors
/// An index whose slots are not the rows (removed items), a threshold that is not finite,
/// and the search's own errors.
pub fn group(index: &dyn Index, rows: Rows, k: usize, ef: usize, threshold: f32) -> Result<(Assignment, Neighbours)> {
    if !threshold.is_finite() {
        return Err(invalid("threshold", format!("{threshold} (must be finite)")));
    }
    let n = index.len();
    if index.slots() != n || rows.data.len() != n * rows.dim {
        return Err(invalid("dedup index", "its slots must be the rows being grouped (no removed items)"));
    }
    let k = k.clamp(1, n);
    let nb = index.search(rows, k, &SearchParams { ef: ef.max(k), tags: None })?;
    let (m, dim) = (index.metric(), rows.dim);
    let row = |i: usize| &rows.data[i * dim..(i + 1) * dim];
    let a = group_lists(n, |i| nb.get(i).0, |i, j| crate::metric::distance(m, row(i), row(j)) as f32, threshold);
    Ok((a, nb))
}

/// One member of a group in `groups.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Member {
    /// The item's id.
    pub id: String,
    /// Its distance to the representative.
    pub distance: f32,
}

/// One group of two or more items.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// The representative's id.
    pub representative: String,
    /// The other members, nearest first (ties: input order).
    pub members: Vec<Member>,
}

/// The content of `groups.json` (version [`GROUPS_VERSION`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Groups {
    /// Format version.
    pub version: u32,
    /// The threshold used, in the metric's unit (smaller is closer).
    pub threshold: f32,
    /// Where the threshold came from (`--threshold`, the model card, …).
    pub threshold_source: String,
    /// The metric.
    pub metric: String,
    /// The grouping rule ([`RULE`]).
    pub rule: String,
    /// Groups of two or more, largest first (ties: the representative's input order).
    pub groups: Vec<Group>,
    /// Items in no group of two or more.
    pub singletons: usize,
}

impl Groups {
    /// The groups of an assignment, with ids; `rule` names the k used.
    pub fn new(a: &Assignment, ids: &[String], threshold: f32, threshold_source: &str, metric: &str, k: usize) -> Self {
        let n = a.rep.len();
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, &r) in a.rep.iter().enumerate() {
            if r != i {
                members[r].push(i);
            }
        }
        let mut reps: Vec<usize> = (0..n).filter(|&i| a.rep[i] == i && !members[i].is_empty()).collect();
        reps.sort_by_key(|&r| (std::cmp::Reverse(members[r].len()), r));
        let in_groups: usize = reps.iter().map(|&r| 1 + members[r].len()).sum();
        let groups = reps
            .iter()
            .map(|&r| {
                let mut m = members[r].clone();
                m.sort_by(|&x, &y| a.dist[x].total_cmp(&a.dist[y]).then(x.cmp(&y)));
                Group { representative: ids[r].clone(), members: m.iter().map(|&i| Member { id: ids[i].clone(), distance: a.dist[i] }).collect() }
            })
            .collect();
        Groups {
            version: GROUPS_VERSION,
            threshold,
            threshold_source: threshold_source.to_string(),
            metric: metric.to_string(),
            rule: format!("{RULE} (k = {k})"),
            groups,
            singletons: n - in_groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FlatIndex, Metric, Spec};
    use crate::index::Items;
    use rand::{Rng, SeedableRng};

    fn points(n: usize, seed: u64) -> Vec<f32> {
        // Clusters of near-duplicates: a few centres, small jitter, some lone points.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut v = Vec::new();
        for i in 0..n {
            let c = (i * 7 % 5) as f32 * 3.0;
            let spread = if i % 4 == 0 { 2.0 } else { 0.1 };
            v.push(c + rng.random_range(-spread..spread));
            v.push(c * 0.5 + rng.random_range(-spread..spread));
        }
        v
    }

    #[test]
    fn knn_grouping_equals_the_all_pairs_reference_when_k_covers_the_gallery() {
        for seed in 0..5 {
            let n = 60;
            let data = points(n, seed);
            let idx = FlatIndex::build(&Spec::new(Metric::Euclidean, 2, ""), Items::rows(Rows::new("p", &data, 2))).unwrap();
            let (a, _) = group(&idx, Rows::new("p", &data, 2), n, 0, 0.3).unwrap();
            let d = |i: usize, j: usize| crate::metric::distance(Metric::Euclidean, &data[2 * i..2 * i + 2], &data[2 * j..2 * j + 2]) as f32;
            let b = group_naive(n, d, 0.3);
            assert_eq!(a.rep, b.rep, "seed {seed}");
            assert_eq!(a.dist, b.dist, "seed {seed}");
            assert!(a.rep.iter().enumerate().filter(|(i, r)| i != *r).count() > 10, "the data must hold groups");
            // Every member lies within the threshold of its representative (no chaining).
            for i in 0..n {
                assert!(d(i, a.rep[i]) <= 0.3 + 1e-5);
                assert_eq!(a.rep[a.rep[i]], a.rep[i]);
            }
        }
    }

    #[test]
    fn chains_are_cut_and_groups_are_ordered() {
        // 0 — 1 — 2 — 3 on a line, 0.5 apart, threshold 0.6: components would chain all
        // four; greedy representatives give {0, 1} and {2, 3}.
        let data = [0.0f32, 0.5, 1.0, 1.5, 10.0];
        let d = |i: usize, j: usize| (data[i] - data[j]).abs();
        let a = group_naive(5, d, 0.6);
        assert_eq!(a.rep, [0, 0, 2, 2, 4]);
        let ids: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        let g = Groups::new(&a, &ids, 0.6, "--threshold", "euclidean", 5);
        assert_eq!(g.groups.len(), 2);
        assert_eq!(g.groups[0].representative, "a");
        assert_eq!(g.groups[1].members[0].id, "d");
        assert_eq!(g.singletons, 1);
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["groups"][0]["members"][0]["distance"], 0.5);
    }

    #[test]
    fn a_non_finite_threshold_is_refused() {
        let data = [0.0f32, 1.0];
        let idx = FlatIndex::build(&Spec::new(Metric::Euclidean, 1, ""), Items::rows(Rows::new("p", &data, 1))).unwrap();
        let e = group(&idx, Rows::new("p", &data, 1), 2, 0, f32::NAN).unwrap_err().to_string();
        assert!(e.contains("threshold"), "{e}");
    }
}
