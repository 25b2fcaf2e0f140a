//! Seeded k-means++ clustering and its agreement with the labels (NMI, AMI).
//!
//! As in pytorch-metric-learning's `AccuracyCalculator` (`NMI`, `AMI`), the
//! embeddings are clustered by k-means into as many clusters as there are
//! distinct labels, and the clusters are compared with the labels by
//! normalised and adjusted mutual information (see [`crate::mutual_info`]).
//!
//! - Initialisation: k-means++ (Arthur & Vassilvitskii 2007, "k-means++: the
//!   advantages of careful seeding"): the first centre uniformly at random,
//!   each next one with probability proportional to the squared distance to
//!   the nearest centre chosen so far, from a `ChaCha8` generator seeded by
//!   [`ClusteringConfig::seed`].
//! - Iterations: Lloyd's, until no assignment changes or
//!   [`ClusteringConfig::max_iter`]. The assignment step is an exact 1-NN
//!   search of the points against the centroids on the same tiled GEMM as
//!   [`crate::knn`](mod@crate::knn); centroid sums are accumulated sequentially in `f64`,
//!   so the result does not depend on the number of threads.
//! - An empty cluster is re-seeded with the point farthest from its centroid.
//! - Space: for [`Distance::Cosine`] the rows are normalised first (spherical
//!   k-means-like); otherwise Euclidean k-means on the raw rows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{ClassIndex, Embeddings, Labelled};
use crate::distance::{Distance, Prepared};
use crate::error::{EvalError, Result, invalid};
use crate::knn::{KnnOptions, Space, search};
use crate::mutual_info::{adjusted_mutual_info, normalized_mutual_info};
use margin_linalg::Real;

/// k-means settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusteringConfig {
    /// Seed of the k-means++ initialisation.
    pub seed: u64,
    /// Maximum number of Lloyd iterations.
    pub max_iter: usize,
}

impl Default for ClusteringConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            max_iter: 30,
        }
    }
}

/// Result of [`kmeans`].
#[derive(Clone, Debug, PartialEq)]
pub struct KMeans {
    /// Cluster of each row.
    pub assignments: Vec<u32>,
    /// `k × dim` centroids, row-major.
    pub centroids: Vec<f64>,
    /// Sum of squared distances of the rows to their centroids.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Whether the assignments stopped changing before `max_iter`.
    pub converged: bool,
}

/// Clustering metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusteringReport {
    /// Number of clusters (= distinct labels).
    pub n_clusters: usize,
    /// Normalised mutual information (arithmetic-mean normalisation).
    pub nmi: f64,
    /// Adjusted mutual information (arithmetic-mean normalisation).
    pub ami: f64,
    /// k-means inertia.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Whether k-means converged within `max_iter`.
    pub converged: bool,
    /// Seed used.
    pub seed: u64,
}

/// Clusters `set` into as many clusters as it has labels and scores the
/// clusters against the labels.
pub fn clustering<T: Real>(
    set: &Labelled<T>,
    distance: Distance,
    config: &ClusteringConfig,
) -> Result<ClusteringReport> {
    let classes = ClassIndex::new(set.labels());
    let k = classes.n_classes();
    let km = kmeans(&set.embeddings, k, distance, config)?;
    Ok(ClusteringReport {
        n_clusters: k,
        nmi: normalized_mutual_info(&classes.ids, &km.assignments),
        ami: adjusted_mutual_info(&classes.ids, &km.assignments),
        inertia: km.inertia,
        iterations: km.iterations,
        converged: km.converged,
        seed: config.seed,
    })
}

/// Seeded k-means++ / Lloyd clustering of the rows of `e` into `k` clusters.
///
/// # Errors
/// [`EvalError::InvalidParameter`] for `k = 0`; [`EvalError::NotEnoughData`]
/// when `k` exceeds the number of rows.
pub fn kmeans<T: Real>(
    e: &Embeddings<T>,
    k: usize,
    distance: Distance,
    config: &ClusteringConfig,
) -> Result<KMeans> {
    if k == 0 {
        return Err(invalid("number of clusters", "must be at least 1"));
    }
    let (n, d) = (e.rows(), e.dim());
    if k > n {
        return Err(EvalError::NotEnoughData {
            input: e.name().to_string(),
            reason: format!("{n} rows cannot form {k} clusters"),
        });
    }
    let space_kind = if distance == Distance::Cosine {
        Distance::Cosine
    } else {
        Distance::SquaredEuclidean
    };
    let prepared = Prepared::new(e, space_kind);
    let points: &[T] = &prepared.data;
    let pts = Embeddings::new(e.name(), points, d)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut centroids = kmeans_pp(&pts, k, &mut rng);
    let mut assign = vec![u32::MAX; n];
    let mut dist2 = vec![0.0f64; n];
    let mut iterations = 0;
    let mut converged = false;
    for _ in 0..config.max_iter.max(1) {
        iterations += 1;
        let cent_t: Vec<T> = centroids.iter().map(|&c| T::from_f64(c)).collect();
        let cent = Embeddings::new("k-means centroids", &cent_t, d)?;
        let space = Space::new(&pts, Some(&cent), Distance::SquaredEuclidean)?;
        let nb = search(&space, 1, &KnnOptions::default());
        let changed = nb
            .indices
            .iter()
            .zip(&assign)
            .filter(|(a, b)| a != b)
            .count();
        assign.copy_from_slice(&nb.indices);
        for (o, v) in dist2.iter_mut().zip(&nb.values) {
            *o = v.to_f64();
        }
        if changed == 0 {
            converged = true;
            break;
        }
        centroids = update_centroids(&pts, &assign, &dist2, k);
    }
    // Exact inertia against the final centroids, in f64 (collected, then summed in row
    // order: the same bits on every run, whatever the thread count).
    let inertia = (0..n)
        .into_par_iter()
        .map(|i| sq_dist_f64(pts.row(i), &centroids[assign[i] as usize * d..][..d]))
        .collect::<Vec<f64>>()
        .into_iter()
        .sum::<f64>();
    Ok(KMeans {
        assignments: assign,
        centroids,
        inertia,
        iterations,
        converged,
    })
}

fn sq_dist_f64<T: Real>(a: &[T], c: &[f64]) -> f64 {
    a.iter()
        .zip(c)
        .map(|(&x, &y)| (x.to_f64() - y) * (x.to_f64() - y))
        .sum()
}

/// k-means++ seeding; returns `k × d` centroids.
fn kmeans_pp<T: Real>(pts: &Embeddings<T>, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (n, d) = (pts.rows(), pts.dim());
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centroids.extend(pts.row(first).iter().map(|v| v.to_f64()));
    let mut min_d2: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| sq_dist_f64(pts.row(i), &centroids[..d]))
        .collect();
    let mut cumsum = vec![0.0f64; n];
    for _ in 1..k {
        let mut total = 0.0;
        for (c, &v) in cumsum.iter_mut().zip(&min_d2) {
            total += v;
            *c = total;
        }
        let pick = if total > 0.0 {
            let u = rng.random_range(0.0..total);
            cumsum.partition_point(|&c| c <= u).min(n - 1)
        } else {
            rng.random_range(0..n)
        };
        let start = centroids.len();
        centroids.extend(pts.row(pick).iter().map(|v| v.to_f64()));
        let c = &centroids[start..start + d];
        min_d2.par_iter_mut().enumerate().for_each(|(i, m)| {
            let v = sq_dist_f64(pts.row(i), c);
            if v < *m {
                *m = v;
            }
        });
    }
    centroids
}

/// Means of the assigned rows; an empty cluster takes the farthest row not
/// already taken by another empty cluster.
fn update_centroids<T: Real>(
    pts: &Embeddings<T>,
    assign: &[u32],
    dist2: &[f64],
    k: usize,
) -> Vec<f64> {
    let d = pts.dim();
    let mut sums = vec![0.0f64; k * d];
    let mut counts = vec![0usize; k];
    for (i, &a) in assign.iter().enumerate() {
        let a = a as usize;
        counts[a] += 1;
        for (s, v) in sums[a * d..(a + 1) * d].iter_mut().zip(pts.row(i)) {
            *s += v.to_f64();
        }
    }
    let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
    if !empty.is_empty() {
        let mut order: Vec<usize> = (0..assign.len()).collect();
        order.sort_by(|&a, &b| dist2[b].total_cmp(&dist2[a]).then(a.cmp(&b)));
        for (&c, &i) in empty.iter().zip(&order) {
            counts[c] = 1;
            for (s, v) in sums[c * d..(c + 1) * d].iter_mut().zip(pts.row(i)) {
                *s = v.to_f64();
            }
        }
    }
    for (c, &cnt) in counts.iter().enumerate() {
        let inv = 1.0 / cnt as f64;
        sums[c * d..(c + 1) * d].iter_mut().for_each(|s| *s *= inv);
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_blobs_are_recovered() {
        // Three tight blobs far apart.
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for (c, centre) in [[0.0f64, 0.0], [10.0, 0.0], [0.0, 10.0]].iter().enumerate() {
            for j in 0..20 {
                let t = j as f64 * 0.3;
                data.extend([centre[0] + 0.1 * t.sin(), centre[1] + 0.1 * t.cos()]);
                labels.push(c as i64 + 100);
            }
        }
        let e = Embeddings::new("blobs", &data, 2).unwrap();
        let set = Labelled::new(e, "labels", &labels).unwrap();
        for seed in 0..5 {
            let r = clustering(
                &set,
                Distance::Euclidean,
                &ClusteringConfig { seed, max_iter: 50 },
            )
            .unwrap();
            assert!(
                (r.nmi - 1.0).abs() < 1e-12 && (r.ami - 1.0).abs() < 1e-12,
                "seed {seed}: {r:?}"
            );
            assert!(r.converged);
        }
    }

    #[test]
    fn too_many_clusters_is_an_error() {
        let data = [0.0f32, 1.0];
        let e = Embeddings::new("two rows", &data, 1).unwrap();
        assert!(matches!(
            kmeans(&e, 3, Distance::Euclidean, &ClusteringConfig::default()),
            Err(EvalError::NotEnoughData { .. })
        ));
    }
}
