//! P×K batch sampling: `P` classes, `K` samples of each, per batch — what makes
//! in-batch mining possible (Hermans et al. 2017).
//!
//! # Policy
//!
//! One epoch is planned from `(seed, epoch)` alone, so it is deterministic and
//! resumable:
//!
//! 1. Each class's samples are shuffled and cut into chunks of `K`. A last,
//!    partial chunk is topped up with other samples of the same class (drawn
//!    without repetition inside the chunk), so **every sample appears at least
//!    once per epoch** in any class with `≥ K` samples.
//! 2. A class with fewer than `K` samples follows [`SmallClassPolicy`]:
//!    [`SmallClassPolicy::WithReplacement`] gives it one chunk holding all its
//!    samples plus `K − n` of them drawn again (a sample may then occur twice in
//!    a batch); [`SmallClassPolicy::Skip`] leaves the class out.
//! 3. Chunks are grouped into batches of `P` chunks of **distinct classes**,
//!    always taking the classes with the most chunks left (random tie-break, so
//!    large classes are spread over the epoch and as few chunks as possible are
//!    left over). When fewer than `P` classes have chunks left at the end of the
//!    epoch, their batch is completed with fresh chunks (`K` random samples) of
//!    other classes, so no sample is left out; with `≥ P` usable classes every
//!    sample of a usable class is visited at least once per epoch.
//! 4. The batch order is shuffled. With `world_size > 1`, rank `r` takes batches
//!    `r, r + W, r + 2W, …` of the same global plan, truncated so that every rank
//!    gets the same number of batches (as data-parallel training needs).
//!
//! [`PKSampler::state`] / [`PKSampler::restore`] save and resume the position
//! (serde-serialisable [`SamplerState`]).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand::rngs::StdRng;

use crate::error::{MarginError, Result};

/// What to do with a class that has fewer than `K` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmallClassPolicy {
    /// Fill its chunk by drawing its samples again (duplicates within a batch).
    #[default]
    WithReplacement,
    /// Never sample the class.
    Skip,
}

/// Where a sampler stands: enough to resume exactly where training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SamplerState {
    /// The seed the plans derive from.
    pub seed: u64,
    /// Current epoch.
    pub epoch: u64,
    /// Index (within this rank's batches of the epoch) of the next batch.
    pub next_batch: usize,
}

/// P classes × K samples per batch. See the [module documentation](self) for the policy.
#[derive(Debug, Clone)]
pub struct PKSampler {
    /// Per class (in order of first appearance), the dataset indices of its samples.
    classes: Vec<Vec<usize>>,
    p: usize,
    k: usize,
    policy: SmallClassPolicy,
    rank: usize,
    world_size: usize,
    state: SamplerState,
    /// This rank's batches of `state.epoch` (planned lazily).
    plan: Option<Vec<Vec<usize>>>,
}

impl PKSampler {
    /// A sampler over a dataset with `labels` (one per sample), `p` classes and `k`
    /// samples per class per batch, deterministic for `seed`.
    ///
    /// Fails when `p` or `k` is 0, or when fewer than `p` classes can be sampled.
    pub fn new(labels: &[i64], p: usize, k: usize, policy: SmallClassPolicy, seed: u64) -> Result<Self> {
        for (field, v) in [("p", p), ("k", k)] {
            if v == 0 {
                return Err(MarginError::InvalidConfig { field, value: "0".into(), reason: "must be ≥ 1" });
            }
        }
        let mut order: Vec<i64> = Vec::new();
        let mut by_label: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        let mut classes: Vec<Vec<usize>> = Vec::new();
        for (i, &y) in labels.iter().enumerate() {
            let c = *by_label.entry(y).or_insert_with(|| {
                order.push(y);
                classes.push(Vec::new());
                classes.len() - 1
            });
            classes[c].push(i);
        }
        let usable = classes.iter().filter(|c| c.len() >= k || policy == SmallClassPolicy::WithReplacement).count();
        if usable < p {
            return Err(MarginError::InvalidConfig {
                field: "p",
                value: p.to_string(),
                reason: "more classes per batch than the dataset has (with enough samples)",
            });
        }
        Ok(PKSampler {
            classes,
            p,
            k,
            policy,
            rank: 0,
            world_size: 1,
            state: SamplerState { seed, epoch: 0, next_batch: 0 },
            plan: None,
        })
    }

    /// This sampler restricted to shard `rank` of `world_size` (data-parallel training).
    pub fn shard(mut self, rank: usize, world_size: usize) -> Result<Self> {
        if world_size == 0 || rank >= world_size {
            return Err(MarginError::InvalidConfig {
                field: "rank",
                value: format!("{rank} of {world_size}"),
                reason: "need 0 ≤ rank < world_size",
            });
        }
        self.rank = rank;
        self.world_size = world_size;
        self.plan = None;
        Ok(self)
    }

    /// Samples per batch, `P · K`.
    pub fn batch_size(&self) -> usize {
        self.p * self.k
    }

    /// The current position.
    pub fn state(&self) -> SamplerState {
        self.state
    }

    /// Resumes from a saved position.
    pub fn restore(&mut self, state: SamplerState) {
        self.state = state;
        self.plan = None;
    }

    /// Starts epoch `epoch` from its first batch.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.restore(SamplerState { seed: self.state.seed, epoch, next_batch: 0 });
    }

    /// Number of batches this rank gets per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.epoch_batches(self.state.epoch).len()
    }

    /// This rank's batches of `epoch`, each `P·K` dataset indices (class by class, `K` each).
    pub fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        let all = self.global_plan(epoch);
        let per_rank = all.len() / self.world_size;
        all.into_iter().skip(self.rank).step_by(self.world_size).take(per_rank).collect()
    }

    /// The next batch; moves to the next epoch when this one is exhausted.
    /// `None` only when an epoch has no batch at all.
    pub fn next_batch(&mut self) -> Option<Vec<usize>> {
        for _ in 0..2 {
            if self.plan.is_none() {
                self.plan = Some(self.epoch_batches(self.state.epoch));
            }
            let plan = self.plan.as_ref().expect("planned above");
            if let Some(b) = plan.get(self.state.next_batch) {
                self.state.next_batch += 1;
                return Some(b.clone());
            }
            if plan.is_empty() {
                return None;
            }
            self.set_epoch(self.state.epoch + 1);
        }
        None
    }

    /// Whether class `c` can be sampled under the policy.
    fn usable(&self, c: usize) -> bool {
        self.classes[c].len() >= self.k || self.policy == SmallClassPolicy::WithReplacement
    }

    /// Every batch of `epoch` for all ranks, before sharding.
    fn global_plan(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = StdRng::seed_from_u64(self.state.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let k = self.k;
        // 1–2: chunks of K per class.
        let mut chunks: Vec<Vec<Vec<usize>>> = Vec::with_capacity(self.classes.len());
        for members in &self.classes {
            let mut m = members.clone();
            m.shuffle(&mut rng);
            let mut cls = Vec::new();
            if m.len() < k {
                if self.policy == SmallClassPolicy::WithReplacement {
                    let mut c = m.clone();
                    while c.len() < k {
                        c.push(m[rng.random_range(0..m.len())]);
                    }
                    cls.push(c);
                }
            } else {
                for part in m.chunks(k) {
                    let mut c = part.to_vec();
                    if c.len() < k {
                        let mut others: Vec<usize> = m.iter().copied().filter(|i| !c.contains(i)).collect();
                        others.shuffle(&mut rng);
                        c.extend(others.into_iter().take(k - c.len()));
                    }
                    cls.push(c);
                }
            }
            chunks.push(cls);
        }
        // 3: batches of P distinct classes, most chunks left first.
        let tiebreak: Vec<u64> = (0..chunks.len()).map(|_| rng.random()).collect();
        let mut heap: std::collections::BinaryHeap<(usize, u64, usize)> =
            (0..chunks.len()).filter(|&c| !chunks[c].is_empty()).map(|c| (chunks[c].len(), tiebreak[c], c)).collect();
        let mut batches = Vec::new();
        while heap.len() >= self.p {
            let picked: Vec<(usize, u64, usize)> = (0..self.p).map(|_| heap.pop().expect("len ≥ p")).collect();
            let mut batch = Vec::with_capacity(self.p * k);
            for &(left, t, c) in &picked {
                batch.extend(chunks[c].pop().expect("class has a chunk left"));
                if left > 1 {
                    heap.push((left - 1, t, c));
                }
            }
            batches.push(batch);
        }
        // Fewer than P classes have chunks left: complete the batch with fresh chunks
        // of other (usable) classes, so that no sample is left out of the epoch.
        while !heap.is_empty() {
            let picked: Vec<usize> = std::iter::from_fn(|| heap.pop()).map(|(_, _, c)| c).collect();
            let mut batch = Vec::with_capacity(self.p * k);
            for &c in &picked {
                batch.extend(chunks[c].pop().expect("class has a chunk left"));
                if !chunks[c].is_empty() {
                    heap.push((chunks[c].len(), tiebreak[c], c));
                }
            }
            let mut fillers: Vec<usize> = (0..self.classes.len())
                .filter(|c| !picked.contains(c) && self.usable(*c))
                .collect();
            fillers.shuffle(&mut rng);
            for &c in fillers.iter().take(self.p - picked.len()) {
                let mut m = self.classes[c].clone();
                m.shuffle(&mut rng);
                while m.len() < k {
                    m.push(self.classes[c][rng.random_range(0..self.classes[c].len())]);
                }
                batch.extend(m.into_iter().take(k));
            }
            batches.push(batch);
        }
        // 4: shuffled order.
        batches.shuffle(&mut rng);
        batches
    }
}
