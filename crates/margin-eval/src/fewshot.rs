//! N-way K-shot episodes drawn from labelled embeddings.
//!
//! An episode draws `n_way` classes uniformly among the classes with at
//! least `k_shot + n_query` rows, then from each class `k_shot` support and
//! `n_query` query rows uniformly without replacement. Each query is
//! assigned the class of the nearest prototype, the prototype being the mean
//! of the class's support embeddings (Snell, Swersky & Zemel 2017,
//! "Prototypical Networks for Few-shot Learning"; with `k_shot = 1` this is
//! 1-nearest-neighbour). For cosine the supports are normalised before
//! averaging; for dot the largest inner product wins. Ties go to the class
//! drawn first.
//!
//! Accuracy is the mean over episodes of the per-episode accuracy, with the
//! 95 % confidence interval `± 1.96 · s / √episodes` (`s` the sample standard
//! deviation over episodes), as customary in the few-shot literature
//! (e.g. Vinyals et al. 2016, Snell et al. 2017). All episodes are drawn
//! sequentially from one `ChaCha8` stream before being scored in parallel, so
//! results depend on the seed only, not on the thread count.

use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{ClassIndex, Labelled};
use crate::distance::Distance;
use crate::error::{EvalError, Result, invalid};
use margin_linalg::Real;

/// Episode settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FewShotConfig {
    /// Classes per episode (N).
    pub n_way: usize,
    /// Support examples per class (K).
    pub k_shot: usize,
    /// Query examples per class.
    pub n_query: usize,
    /// Number of episodes.
    pub episodes: usize,
    /// Seed of the episode sampler.
    pub seed: u64,
}

impl Default for FewShotConfig {
    fn default() -> Self {
        Self {
            n_way: 5,
            k_shot: 1,
            n_query: 15,
            episodes: 1000,
            seed: 0,
        }
    }
}

/// Few-shot accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FewShotReport {
    /// The settings used.
    pub config: FewShotConfig,
    /// Distance used.
    pub distance: Distance,
    /// Classes that had enough rows to be drawn.
    pub eligible_classes: usize,
    /// Mean episode accuracy.
    pub accuracy: f64,
    /// Half-width of the 95 % confidence interval.
    pub ci95: f64,
    /// Sample standard deviation of the episode accuracies.
    pub std: f64,
}

/// Runs `config.episodes` seeded N-way K-shot episodes on `set`.
///
/// # Errors
/// [`EvalError::InvalidParameter`] for zero ways, shots, queries or
/// episodes; [`EvalError::NotEnoughData`] when fewer than `n_way` classes
/// have `k_shot + n_query` rows.
pub fn few_shot<T: Real>(
    set: &Labelled<T>,
    distance: Distance,
    config: &FewShotConfig,
) -> Result<FewShotReport> {
    for (name, v) in [
        ("n_way", config.n_way),
        ("k_shot", config.k_shot),
        ("n_query", config.n_query),
        ("episodes", config.episodes),
    ] {
        if v == 0 {
            return Err(invalid(name, "must be at least 1"));
        }
    }
    let classes = ClassIndex::new(set.labels());
    let per_class = config.k_shot + config.n_query;
    let eligible: Vec<usize> = (0..classes.n_classes())
        .filter(|&c| classes.members[c].len() >= per_class)
        .collect();
    if eligible.len() < config.n_way {
        return Err(EvalError::NotEnoughData {
            input: set.labels_name().to_string(),
            reason: format!(
                "{}-way episodes need {} classes with at least {per_class} rows ({}-shot + {} queries); only {} have",
                config.n_way,
                config.n_way,
                config.k_shot,
                config.n_query,
                eligible.len()
            ),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // episodes × n_way × per_class row indices (support first).
    let draws: Vec<Vec<u32>> = (0..config.episodes)
        .map(|_| {
            let mut rows = Vec::with_capacity(config.n_way * per_class);
            for c in index::sample(&mut rng, eligible.len(), config.n_way) {
                let members = &classes.members[eligible[c]];
                rows.extend(
                    index::sample(&mut rng, members.len(), per_class)
                        .into_iter()
                        .map(|i| members[i]),
                );
            }
            rows
        })
        .collect();
    let accs: Vec<f64> = draws
        .par_iter()
        .map(|rows| episode_accuracy(set, distance, config, rows))
        .collect();
    let e = accs.len() as f64;
    let mean = accs.iter().sum::<f64>() / e;
    let std = if accs.len() > 1 {
        (accs.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / (e - 1.0)).sqrt()
    } else {
        0.0
    };
    Ok(FewShotReport {
        config: config.clone(),
        distance,
        eligible_classes: eligible.len(),
        accuracy: mean,
        ci95: 1.96 * std / e.sqrt(),
        std,
    })
}

fn episode_accuracy<T: Real>(
    set: &Labelled<T>,
    distance: Distance,
    config: &FewShotConfig,
    rows: &[u32],
) -> f64 {
    let e = &set.embeddings;
    let d = e.dim();
    let per_class = config.k_shot + config.n_query;
    let mut protos = vec![0.0f64; config.n_way * d];
    for (c, block) in rows.chunks_exact(per_class).enumerate() {
        let p = &mut protos[c * d..(c + 1) * d];
        for &r in &block[..config.k_shot] {
            let row = e.row(r as usize);
            let scale = if distance == Distance::Cosine {
                let n = row
                    .iter()
                    .map(|v| v.to_f64() * v.to_f64())
                    .sum::<f64>()
                    .sqrt();
                if n > 0.0 { 1.0 / n } else { 0.0 }
            } else {
                1.0
            };
            for (a, v) in p.iter_mut().zip(row) {
                *a += v.to_f64() * scale;
            }
        }
        p.iter_mut().for_each(|a| *a /= config.k_shot as f64);
    }
    let mut correct = 0usize;
    for (c, block) in rows.chunks_exact(per_class).enumerate() {
        for &q in &block[config.k_shot..] {
            let row: Vec<f64> = e.row(q as usize).iter().map(|v| v.to_f64()).collect();
            let mut best = (0usize, f64::NAN);
            for p in 0..config.n_way {
                let v = distance.between(&row, &protos[p * d..(p + 1) * d]);
                let closer = best.1.is_nan()
                    || if distance.higher_is_closer() {
                        v > best.1
                    } else {
                        v < best.1
                    };
                if closer {
                    best = (p, v);
                }
            }
            correct += usize::from(best.0 == c);
        }
    }
    correct as f64 / (config.n_way * config.n_query) as f64
}
