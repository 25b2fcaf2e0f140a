//! The trainer's loss step is the loss's own `forward` with the configured miner: one
//! step of `Trainer::fit` logs exactly (same bits) the loss, active fraction, tuple count
//! and mean distances of `loss.forward(Batch::labelled(embeddings, labels), Tuples::mined(..))`
//! on the same embeddings — for the shipped default (contrastive + multi-similarity,
//! whose planned path is the fused one, pairs never listed) and for the triplet loss with
//! the default triplet-margin miner (the fused band).
//!
//! The seam is `fit` itself, observed through its public [`Observer`]: a helper exposed
//! only for this test would test itself, while this checks the step as training runs it.
//! The test rebuilds the step's input from public pieces — the model before `fit`, and
//! the first batch of the P×K plan for `(seed, epoch 1)`, which the trainer documents as
//! depending on nothing else.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use margin::sampler::{PKSampler, SmallClassPolicy};
use margin::{Batch, MetricLoss, Tuples};
use margin_data::{Dataset, ModelConfig};
use margin_train::{BuiltLoss, LossSpec, MinerSpec, Observer, SamplerConfig, StepRecord, TrainConfig, Trainer};
use rand::SeedableRng;

fn dataset() -> Dataset {
    common::blobs(6, 5, 8, 0x2545_f491_4f6c_dd1d)
}

/// The shipped default configuration, on a small MLP, one step of one epoch, no augmentation.
fn config(loss: Option<(LossSpec, MinerSpec)>) -> TrainConfig {
    let mut cfg = margin_train::parse_config(margin_train::DEFAULT_CONFIG, "the bundled default").unwrap().train;
    if let Some((l, m)) = loss {
        cfg.loss = l;
        cfg.miner = m;
    }
    cfg.model = ModelConfig::Mlp { hidden: vec![16], embedding_dim: 8, normalize: false };
    cfg.sampler = SamplerConfig { classes_per_batch: 4, samples_per_class: 4, batches_per_epoch: Some(1) };
    cfg.epochs = 1;
    cfg.augment = None;
    cfg.validate_every = 0;
    cfg
}

struct Steps(Vec<StepRecord>);

impl Observer for Steps {
    fn step(&mut self, s: &StepRecord) {
        self.0.push(s.clone());
    }
}

/// One `fit` step's record, and `forward` on the same embeddings with the same miner.
fn logged_and_direct(cfg: TrainConfig, name: &str) -> (StepRecord, margin::LossStats) {
    let train = dataset();
    let device = Device::flex().autodiff();
    let out = std::env::temp_dir().join(format!("margin-train-step-{}-{name}", std::process::id()));
    let trainer = Trainer::new(cfg.clone(), &train.sample_shape, &out, &device).unwrap();
    let model = trainer.model().clone();
    let mut steps = Steps(Vec::new());
    trainer.fit(&train, None, &mut steps).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(steps.0.len(), 1, "{name}: one step");

    // The first batch of epoch 1 (P clamped to the classes, as the trainer does), embedded
    // by the model as it was before the step.
    let sampler = PKSampler::new(&train.labels, cfg.sampler.classes_per_batch.min(6), cfg.sampler.samples_per_class, SmallClassPolicy::WithReplacement, cfg.seed).unwrap();
    let idx = &sampler.epoch_batches(1)[0];
    let x: Vec<f32> = idx.iter().flat_map(|&i| train.sample(i).iter().copied()).collect();
    let labels: Vec<i64> = idx.iter().map(|&i| train.labels[i]).collect();
    let emb = model.forward_flat(Tensor::<2>::from_data(TensorData::new(x, [idx.len(), train.dim()]), &device), &train.sample_shape);

    let built = cfg.loss.build().unwrap();
    let loss: &dyn MetricLoss = match &built {
        BuiltLoss::Triplet(l) => l,
        BuiltLoss::Contrastive(l) => l,
        BuiltLoss::InfoNce(l) => l,
    };
    let miner = cfg.miner.build(cfg.loss.distance()).unwrap().expect("a miner is configured");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0); // unused by these miners
    let direct = loss.forward(Batch::labelled(emb, &labels), Tuples::mined(&miner, &mut rng)).unwrap();
    (steps.0.remove(0), direct.stats)
}

fn assert_same(rec: &StepRecord, want: &margin::LossStats, what: &str) {
    assert!(want.num_tuples > 0 && want.loss > 0.0, "{what}: a step with active tuples ({want:?})");
    assert_eq!(rec.loss.to_bits(), want.loss.to_bits(), "{what}: loss {} vs {}", rec.loss, want.loss);
    assert_eq!(rec.active_fraction.to_bits(), want.active_fraction.to_bits(), "{what}: active fraction");
    assert_eq!(rec.num_tuples, want.num_tuples, "{what}: tuples");
    assert_eq!((rec.mean_ap_dist, rec.mean_an_dist), (want.mean_ap_dist, want.mean_an_dist), "{what}: mean distances");
}

#[test]
fn the_shipped_default_step_is_the_loss_forward_with_its_miner() {
    let cfg = config(None);
    assert!(matches!(cfg.loss, LossSpec::Contrastive { .. }), "the shipped default is contrastive");
    let miner = cfg.miner.build(cfg.loss.distance()).unwrap();
    assert!(matches!(miner, Some(margin::MinerConfig::MultiSimilarity(_))), "… with the multi-similarity miner: {miner:?}");
    let (rec, want) = logged_and_direct(cfg, "default");
    assert_same(&rec, &want, "contrastive + multi-similarity");
}

#[test]
fn a_triplet_step_is_the_loss_forward_with_its_miner() {
    let cfg = config(Some((LossSpec::default(), MinerSpec::default())));
    assert!(matches!(cfg.loss, LossSpec::Triplet { .. }));
    let (rec, want) = logged_and_direct(cfg, "triplet");
    assert_same(&rec, &want, "triplet + triplet-margin");
}
