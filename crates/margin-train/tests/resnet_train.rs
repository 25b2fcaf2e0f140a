//! Training a ResNet from the configuration: pretrained weights from a path, frozen stem and
//! stages, the head's own learning rate, and an exact resume.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use margin_data::{Freeze, HeadConfig, ModelConfig, ResnetConfig, ResnetDepth};
use margin_train::{MemorySink, SamplerConfig, Schedule, Silent, TrainConfig, Trainer};

const SHAPE: [usize; 3] = [3, 32, 32];

/// The device's random generator is one per process and the trainer seeds it: the tests
/// of this file run one at a time, or a concurrent test's draws would land in another's
/// initialisation.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn golden_pth() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/resnet18/resnet18.pth")
}

fn config(epochs: usize, freeze: Freeze, lr_multiplier: f64) -> TrainConfig {
    let mut cfg = margin_train::parse_config(margin_train::DEFAULT_CONFIG, "the bundled default").unwrap().train;
    cfg.model = ModelConfig::Resnet(ResnetConfig {
        depth: ResnetDepth::R18,
        weights: Some(golden_pth()),
        head: HeadConfig { embedding_dim: 8, batch_norm: false, normalize: true, lr_multiplier },
        freeze,
    });
    cfg.sampler = SamplerConfig { classes_per_batch: 2, samples_per_class: 2, batches_per_epoch: Some(1) };
    cfg.epochs = epochs;
    cfg.lr = 1e-3;
    cfg.schedule = Schedule::Constant;
    cfg.augment = None;
    cfg.validate_every = 0;
    cfg
}

fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

fn max_change(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn a_resnet_trains_from_pretrained_weights_with_frozen_stages_and_a_faster_head() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = common::blobs(3, 3, 3 * 32 * 32, 0x5eed);
    let data = margin_data::Dataset::new("blobs", data.features.clone(), SHAPE.to_vec(), data.labels.clone()).unwrap();
    let device = Device::flex().autodiff();
    let start = Trainer::with_sink(config(1, Freeze::Stages(3), 10.0), &SHAPE, Box::new(MemorySink::new()), &device).unwrap();
    let r0 = start.model().resnet.as_ref().unwrap();
    let pretrained = margin_models::resnet::ResNet::from_file(ResnetDepth::R18, &golden_pth(), &Device::flex()).unwrap();
    assert_eq!(host(r0.backbone.conv1.weight.val()), host(pretrained.conv1.weight.val()), "starts from the pretrained weights");
    let (stem, l4, head) = (host(r0.backbone.conv1.weight.val()), host(r0.backbone.layers[3].blocks[1].conv2.weight.val()), host(r0.head.linear.weight.val()));
    let done = start.fit(&data, None, &mut Silent).unwrap();
    let r1 = done.model.resnet.as_ref().unwrap();
    assert_eq!(host(r1.backbone.conv1.weight.val()), stem, "the frozen stem is unchanged");
    // Adam's first step moves every trained weight by about its learning rate.
    let d4 = max_change(&host(r1.backbone.layers[3].blocks[1].conv2.weight.val()), &l4);
    let dh = max_change(&host(r1.head.linear.weight.val()), &head);
    assert!(d4 > 1e-4 && d4 < 2e-3, "layer4 moved by {d4} at lr 1e-3");
    assert!(dh > 5e-3 && dh < 2e-2, "the head moved by {dh} at lr 1e-3 × 10");
}

#[test]
fn a_resumed_resnet_run_equals_an_uninterrupted_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = common::blobs(3, 3, 3 * 32 * 32, 0x5eed);
    let data = margin_data::Dataset::new("blobs", data.features.clone(), SHAPE.to_vec(), data.labels.clone()).unwrap();
    let device = Device::flex().autodiff();
    let embed = |m: &margin_models::EmbeddingNet| margin_models::embed(m, &data, 16, false, &Device::flex());
    let full = Trainer::with_sink(config(2, Freeze::Stages(2), 10.0), &SHAPE, Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    let first = Trainer::with_sink(config(1, Freeze::Stages(2), 10.0), &SHAPE, Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    let resumed = Trainer::resume_sink(first.sink, &SHAPE, Some(2), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    assert_eq!(embed(&resumed.model), embed(&full.model));
    let r = resumed.model.resnet.as_ref().unwrap();
    assert!(!r.backbone.layers[1].blocks[0].conv1.weight.val().is_require_grad(), "freezing holds after a resume");
}


