//! The ResNet encoder as margin trains it: `ModelConfig::Resnet` → `EmbeddingNet`, the head,
//! freezing (frozen parameters untouched by a training step, frozen BatchNorm in eval mode on
//! the training device), pretrained initialisation, and the save/load round trip.

use std::path::{Path, PathBuf};

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use margin_data::{Freeze, HeadConfig, ModelCard, ModelConfig, ResnetConfig, ResnetDepth, card::Preprocessing};
use margin_models::BuildEncoder;
use margin_models::resnet::ResNet;

fn golden_pth() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/resnet18/resnet18.pth")
}

fn config(freeze: Freeze, weights: Option<PathBuf>) -> ModelConfig {
    ModelConfig::Resnet(ResnetConfig {
        depth: ResnetDepth::R18,
        weights,
        head: HeadConfig { embedding_dim: 16, batch_norm: true, normalize: true, lr_multiplier: 10.0 },
        freeze,
    })
}

const SHAPE: [usize; 3] = [3, 32, 32];

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

#[test]
fn resnet_embeddings_have_the_head_dimension_and_unit_norm() {
    let device = Device::flex();
    device.seed(1);
    let net = config(Freeze::None, None).init(&SHAPE, &device).unwrap();
    let x = Tensor::<2>::random([3, 3 * 32 * 32], Distribution::Normal(0.0, 1.0), &device);
    let e = net.forward_flat(x, &SHAPE);
    assert_eq!(e.dims(), [3, 16]);
    let v = host(e);
    for r in v.chunks(16) {
        let n: f32 = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "row norm {n}");
    }
    assert!(config(Freeze::None, None).init(&[1, 32, 32], &device).unwrap_err().to_string().contains("RGB"));
}

#[test]
fn a_training_step_leaves_frozen_parts_and_their_statistics_alone() {
    let device = Device::flex().autodiff();
    device.seed(2);
    let net = config(Freeze::Stages(1), None).init(&SHAPE, &device).unwrap();
    let r = net.resnet.as_ref().unwrap();
    assert!(!r.backbone.conv1.weight.val().is_require_grad());
    assert!(!r.backbone.layers[0].blocks[1].conv2.weight.val().is_require_grad());
    assert!(r.backbone.layers[1].blocks[0].conv1.weight.val().is_require_grad());
    assert!(r.head.linear.weight.val().is_require_grad());
    let before = |n: &margin_models::EmbeddingNet| {
        let b = &n.resnet.as_ref().unwrap().backbone;
        (host(b.conv1.weight.val()), host(b.layers[0].blocks[0].bn1.running_mean.value_sync()), host(b.layers[1].blocks[0].conv1.weight.val()), host(b.layers[1].blocks[0].bn1.running_mean.value_sync()))
    };
    let (w0, m0, w1, m1) = before(&net);
    let x = Tensor::<2>::random([4, 3 * 32 * 32], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<2>::random([4, 16], Distribution::Normal(0.0, 1.0), &device);
    let loss = (net.forward_flat(x, &SHAPE) - y).square().mean();
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let net = AdamConfig::new().init().step(1e-2, net, grads);
    let (w0b, m0b, w1b, m1b) = before(&net);
    assert_eq!(w0, w0b, "frozen stem weight changed");
    assert_eq!(m0, m0b, "frozen layer1 BatchNorm statistics changed");
    assert_ne!(w1, w1b, "layer2 should train");
    assert_ne!(m1, m1b, "layer2's BatchNorm should update its running statistics");
}

#[test]
fn a_frozen_backbone_on_the_training_device_computes_eval_mode_features() {
    let dev = Device::flex().autodiff();
    let frozen = config(Freeze::Backbone, Some(golden_pth())).init_pretrained(&SHAPE, &dev).unwrap();
    let eval = ResNet::from_file(ResnetDepth::R18, &golden_pth(), &Device::flex()).unwrap();
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &Device::flex());
    let a = host(frozen.resnet.as_ref().unwrap().backbone.forward_features(Tensor::from_data(x.to_data(), &dev)));
    let b = host(eval.forward_features(x));
    let d = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
    assert!(d < 1e-4, "frozen (autodiff) vs eval features differ by {d}");
}

#[test]
fn init_ignores_the_pretrained_path_and_init_pretrained_reads_it() {
    let dev = Device::flex();
    // A trained model's card may name a weights file that is gone: init builds the architecture.
    let gone = config(Freeze::None, Some(PathBuf::from("/nonexistent/resnet18.pth")));
    assert!(gone.init(&SHAPE, &dev).is_ok());
    let e = gone.init_pretrained(&SHAPE, &dev).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/resnet18.pth") && e.contains("no such file"), "{e}");
    let wrong = ModelConfig::Resnet(ResnetConfig { depth: ResnetDepth::R34, weights: Some(golden_pth()), head: HeadConfig::default(), freeze: Freeze::None });
    let e = wrong.init_pretrained(&SHAPE, &dev).unwrap_err().to_string();
    assert!(e.contains("resnet18, not resnet34"), "{e}");
}

#[test]
fn a_saved_resnet_model_loads_back_equal() {
    let dev = Device::flex();
    dev.seed(3);
    let cfg = config(Freeze::Stages(2), Some(golden_pth()));
    let net = cfg.init_pretrained(&SHAPE, &dev).unwrap();
    let dir = std::env::temp_dir().join(format!("margin-resnet-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let card = ModelCard { sample_shape: SHAPE.to_vec(), ..ModelCard::new(cfg, Preprocessing::Features { dim: 1, scale: 1.0 }, true) };
    margin_models::weights::save_model(&net, &card, &dir).unwrap();
    let (_, back) = margin_models::weights::load_model(&dir, &dev).unwrap();
    let x = Tensor::<2>::random([2, 3 * 32 * 32], Distribution::Normal(0.0, 1.0), &dev);
    assert_eq!(host(net.forward_flat(x.clone(), &SHAPE)), host(back.forward_flat(x, &SHAPE)));
    std::fs::remove_dir_all(dir).unwrap();
}
