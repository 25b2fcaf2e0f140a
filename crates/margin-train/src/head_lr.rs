//! A separate learning rate for a ResNet's embedding head (`model.head.lr_multiplier`): a
//! fresh head on a pretrained backbone usually learns faster than the backbone may change.
//!
//! Burn's optimizers take a per-parameter learning-rate policy (`ModuleLearningRate`); the
//! head's parameters are one `ParamGroup` (by their ids, taken from the module once), at
//! `lr × multiplier`, every other parameter at `lr`. The group is rebuilt from the model
//! when the trainer starts or resumes (ids are stable across checkpoints).

use burn::module::ParamGroup;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use margin_data::ModelConfig;
use margin_models::EmbeddingNet;

/// The head's parameter group and learning-rate multiplier, when the model has a head whose
/// multiplier is not 1.
#[derive(Clone)]
pub struct HeadLr {
    group: ParamGroup,
    multiplier: f64,
}

impl HeadLr {
    /// For `model` built from `cfg`: `None` unless a ResNet head with a multiplier ≠ 1.
    pub fn of(cfg: &ModelConfig, model: &EmbeddingNet) -> Option<HeadLr> {
        let (ModelConfig::Resnet(r), Some(enc)) = (cfg, &model.resnet) else { return None };
        (r.head.lr_multiplier != 1.0).then(|| HeadLr { group: ParamGroup::ids_from_module(enc.head.clone()), multiplier: r.head.lr_multiplier })
    }

    /// The policy of one step at base learning rate `lr`.
    pub fn policy(&self, lr: f64) -> ModuleLearningRate {
        ModuleLrScheduler::new(lr).with_group(self.group.clone(), lr * self.multiplier).step()
    }
}

/// The learning-rate policy of one step: `lr` for everything, or with the head's multiplier.
pub fn policy(head: Option<&HeadLr>, lr: f64) -> ModuleLearningRate {
    match head {
        Some(h) => h.policy(lr),
        None => ModuleLearningRate::from(lr),
    }
}

// `LrScheduler` is named so the constant schedulers (`f64`) above resolve.
#[allow(dead_code)]
fn _uses(_: &dyn LrScheduler) {}
