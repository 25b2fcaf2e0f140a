//! PKSampler: P distinct classes × K samples per batch, coverage, determinism,
//! sharding and resumption.

use margin::sampler::{PKSampler, SamplerState, SmallClassPolicy};
use proptest::prelude::*;

/// Class sizes → labels (class c has label 10·c + 1), interleaved.
fn labels_of(sizes: &[usize]) -> Vec<i64> {
    let mut v = Vec::new();
    let max = sizes.iter().copied().max().unwrap_or(0);
    for i in 0..max {
        for (c, &s) in sizes.iter().enumerate() {
            if i < s {
                v.push(10 * c as i64 + 1);
            }
        }
    }
    v
}

fn check_batch(batch: &[usize], labels: &[i64], p: usize, k: usize) {
    assert_eq!(batch.len(), p * k);
    let mut classes = Vec::new();
    for chunk in batch.chunks(k) {
        let y = labels[chunk[0]];
        assert!(chunk.iter().all(|&i| labels[i] == y), "a chunk is one class");
        classes.push(y);
    }
    classes.sort();
    classes.dedup();
    assert_eq!(classes.len(), p, "no class twice in a batch");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn prop_batches_are_p_classes_times_k_and_deterministic(
        sizes in proptest::collection::vec(1usize..12, 2..20), p in 1usize..5, k in 1usize..5,
        seed in any::<u64>(), skip in any::<bool>(), epoch in 0u64..3,
    ) {
        let labels = labels_of(&sizes);
        let policy = if skip { SmallClassPolicy::Skip } else { SmallClassPolicy::WithReplacement };
        let Ok(s) = PKSampler::new(&labels, p, k, policy, seed) else {
            let usable = sizes.iter().filter(|&&n| n >= k || !skip).count();
            prop_assert!(usable < p);
            return Ok(());
        };
        let batches = s.epoch_batches(epoch);
        for b in &batches {
            check_batch(b, &labels, p, k);
            if skip {
                prop_assert!(b.iter().all(|&i| sizes[(labels[i] / 10) as usize] >= k));
            }
        }
        // Coverage: every sample of a usable class is visited in the epoch.
        let seen: std::collections::HashSet<usize> = batches.concat().into_iter().collect();
        for (i, &y) in labels.iter().enumerate() {
            let usable = sizes[(y / 10) as usize] >= k || !skip;
            prop_assert!(!usable || seen.contains(&i), "sample {} not visited", i);
        }
        let again = PKSampler::new(&labels, p, k, policy, seed).unwrap().epoch_batches(epoch);
        prop_assert_eq!(&batches, &again);
    }
}

#[test]
fn every_sample_is_visited_once_per_epoch_when_sizes_allow() {
    // 12 classes of 8 samples, P = 4, K = 4: 24 batches, every sample exactly once.
    let labels = labels_of(&[8; 12]);
    let s = PKSampler::new(&labels, 4, 4, SmallClassPolicy::Skip, 3).unwrap();
    for epoch in 0..3 {
        let mut seen: Vec<usize> = s.epoch_batches(epoch).concat();
        assert_eq!(seen.len(), labels.len());
        seen.sort();
        assert_eq!(seen, (0..labels.len()).collect::<Vec<_>>());
    }
    assert_ne!(s.epoch_batches(0), s.epoch_batches(1), "reshuffled every epoch");
    // Uneven sizes ≥ K: every sample at least once (partial chunks are topped up).
    let labels = labels_of(&[5, 7, 9, 6, 11, 5, 8, 10]);
    let s = PKSampler::new(&labels, 2, 4, SmallClassPolicy::Skip, 9).unwrap();
    let seen: std::collections::HashSet<usize> = s.epoch_batches(0).concat().into_iter().collect();
    assert_eq!(seen.len(), labels.len());
}

#[test]
fn small_classes_follow_the_policy() {
    let labels = labels_of(&[2, 6, 6, 6]);
    let small: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == 1).collect();
    let skip = PKSampler::new(&labels, 2, 3, SmallClassPolicy::Skip, 1).unwrap();
    assert!(skip.epoch_batches(0).concat().iter().all(|i| !small.contains(i)));
    let repl = PKSampler::new(&labels, 2, 3, SmallClassPolicy::WithReplacement, 1).unwrap();
    let all = repl.epoch_batches(0).concat();
    assert!(small.iter().all(|i| all.contains(i)), "the small class is sampled, all its samples");
    assert!(PKSampler::new(&labels, 4, 3, SmallClassPolicy::Skip, 1).is_err(), "only 3 classes have ≥ K samples");
    assert!(PKSampler::new(&labels, 0, 3, SmallClassPolicy::Skip, 1).is_err());
}

#[test]
fn shards_are_disjoint_and_equal_in_length() {
    let labels = labels_of(&[9, 8, 7, 12, 4, 6, 10, 8, 8, 5]);
    let base = PKSampler::new(&labels, 3, 2, SmallClassPolicy::WithReplacement, 42).unwrap();
    let world = 3;
    let shards: Vec<Vec<Vec<usize>>> =
        (0..world).map(|r| base.clone().shard(r, world).unwrap().epoch_batches(0)).collect();
    let n = shards[0].len();
    assert!(n > 0 && shards.iter().all(|s| s.len() == n));
    let global = base.epoch_batches(0);
    for (r, s) in shards.iter().enumerate() {
        for (i, b) in s.iter().enumerate() {
            assert_eq!(b, &global[r + i * world], "rank {r} takes every {world}-th batch");
        }
    }
    assert!(base.clone().shard(3, 3).is_err());
}

#[test]
fn state_round_trips_and_resumes_exactly() {
    let labels = labels_of(&[6, 6, 6, 6, 6]);
    let mut a = PKSampler::new(&labels, 2, 3, SmallClassPolicy::Skip, 7).unwrap();
    let per_epoch = a.batches_per_epoch();
    assert!(per_epoch > 0);
    for _ in 0..per_epoch + 1 {
        a.next_batch().unwrap();
    }
    let saved = serde_json::to_string(&a.state()).unwrap();
    let expected: Vec<Vec<usize>> = (0..5).map(|_| a.next_batch().unwrap()).collect();
    let mut b = PKSampler::new(&labels, 2, 3, SmallClassPolicy::Skip, 7).unwrap();
    let state: SamplerState = serde_json::from_str(&saved).unwrap();
    assert_eq!(state.epoch, 1);
    b.restore(state);
    let resumed: Vec<Vec<usize>> = (0..5).map(|_| b.next_batch().unwrap()).collect();
    assert_eq!(resumed, expected);
}
