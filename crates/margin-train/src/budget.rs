//! The memory the training still needs once the data is loaded: the model, its gradients
//! and optimizer state, one batch's activations for the backward pass, the loss's pair
//! matrices, the parameters of a loss with class parameters (`C × d` class weights or
//! proxies, `C × K × d` SoftTriple centres, with their gradients and the optimiser's two
//! moments) and its `B × C·K` similarity matrices, and an evaluation batch — checked against what the machine has
//! ([`margin_data::memory`]) before the model is built, so that a `samples_per_class`
//! of 500,000 is an error naming the figures instead of an allocator abort.
//!
//! The estimate is deliberately simple and on the high side (it counts every activation
//! the backward pass may keep, twice for their gradients): it must catch impossible
//! runs, not predict the peak to the megabyte. The data set is not counted: it is already
//! in memory when this runs, so the available figure already excludes it.

use margin_data::ModelConfig;
use margin_data::memory::{Budget, MemoryError};

use crate::TrainConfig;

const F32: u64 = 4;

/// Parameters of the model of `cfg` on samples of `shape`, counted without building it.
pub fn parameter_count(cfg: &ModelConfig, shape: &[usize]) -> u64 {
    let s = |v: usize| v as u64;
    match cfg {
        ModelConfig::Mlp { hidden, embedding_dim, .. } => {
            let mut d = shape.iter().map(|&v| s(v)).fold(1u64, u64::saturating_mul);
            let mut n = 0u64;
            for &h in hidden.iter().chain(std::iter::once(embedding_dim)) {
                n = n.saturating_add(d.saturating_mul(s(h)).saturating_add(s(h)));
                d = s(h);
            }
            n
        }
        ModelConfig::Convnet4 { width, embedding_dim, .. } => {
            let (c, h, w) = (s(shape.first().copied().unwrap_or(1)), s(shape.get(1).copied().unwrap_or(1)), s(shape.get(2).copied().unwrap_or(1)));
            let w_ = s(*width);
            let convs = (c.saturating_mul(w_).saturating_mul(9) + w_).saturating_add(3u64.saturating_mul(w_.saturating_mul(w_).saturating_mul(9) + w_));
            let bns = 4 * 4 * w_;
            let fc = w_.saturating_mul(h / 16).saturating_mul(w / 16).saturating_mul(s(*embedding_dim)) + s(*embedding_dim);
            convs.saturating_add(bns).saturating_add(fc)
        }
        ModelConfig::Resnet(r) => {
            let head = r.head.embedding_dim as u64;
            let f = r.depth.feature_dim() as u64;
            let bn = if r.head.batch_norm { 4 * head } else { 0 };
            resnet_backbone_parameters(r.depth).saturating_add(f.saturating_mul(head) + head).saturating_add(bn)
        }
    }
}

/// Parameters and BatchNorm statistics of torchvision's backbone without `fc`
/// (torchvision's published counts minus `fc`'s; tested against the built module).
pub fn resnet_backbone_parameters(depth: margin_data::ResnetDepth) -> u64 {
    use margin_data::ResnetDepth::*;
    match depth {
        R18 => 11_176_512 + 9_600,
        R34 => 21_284_672 + 17_024,
        R50 => 23_508_032 + 53_120,
    }
}

/// Floats per input pixel a ResNet keeps for the backward pass (every conv, BatchNorm and
/// ReLU output; counted from torchvision's layer sizes, rounded up).
fn resnet_activations_per_pixel(depth: margin_data::ResnetDepth) -> u64 {
    use margin_data::ResnetDepth::*;
    match depth {
        R18 => 160,
        R34 => 250,
        R50 => 480,
    }
}

/// Floats of activations one sample keeps for the backward pass (and their gradients).
fn activations_per_sample(cfg: &ModelConfig, shape: &[usize]) -> u64 {
    let s = |v: usize| v as u64;
    match cfg {
        ModelConfig::Mlp { hidden, embedding_dim, .. } => {
            let input: u64 = shape.iter().map(|&v| s(v)).fold(1u64, u64::saturating_mul);
            let layers = hidden.iter().map(|&h| s(h)).fold(s(*embedding_dim), u64::saturating_add);
            input.saturating_add(layers.saturating_mul(3)).saturating_mul(2)
        }
        ModelConfig::Convnet4 { width, .. } => {
            let pixels = shape.iter().map(|&v| s(v)).skip(1).fold(1u64, u64::saturating_mul);
            let input = s(shape.first().copied().unwrap_or(1)).saturating_mul(pixels);
            // Conv, BatchNorm, ReLU outputs and the pool's, at 1, 1/4, 1/16, 1/64 of the pixels.
            let maps = s(*width).saturating_mul(pixels).saturating_mul(4).saturating_mul(4) / 3;
            input.saturating_add(maps).saturating_mul(2)
        }
        ModelConfig::Resnet(r) => {
            let pixels = shape.iter().map(|&v| s(v)).skip(1).fold(1u64, u64::saturating_mul);
            pixels.saturating_mul(resnet_activations_per_pixel(r.depth)).saturating_mul(2)
        }
    }
}

/// The budget of training `cfg` on samples of `shape` with `train_classes` training classes
/// (what a loss with class parameters holds parameters for; after `rotated_classes`).
pub fn training_budget(cfg: &TrainConfig, shape: &[usize], train_classes: usize) -> Budget {
    let params = parameter_count(&cfg.model, shape);
    let batch = (cfg.sampler.classes_per_batch as u64).saturating_mul(cfg.sampler.samples_per_class as u64);
    let mut b = Budget::new();
    b.add(format!("the model ({params} parameters) with its gradients and optimizer state"), params, 4 * F32);
    b.add(format!("a batch of {batch} samples"), batch, activations_per_sample(&cfg.model, shape).saturating_mul(F32));
    b.add("the loss's pair matrices", batch.saturating_mul(batch), 4 * 8);
    if let Some(name) = crate::param_loss::params_name(&cfg.loss) {
        let dim = crate::param_loss::embedding_dim(&cfg.model);
        let rows = (train_classes as u64).saturating_mul(crate::param_loss::rows_per_class(&cfg.loss) as u64);
        let n = crate::param_loss::parameter_count(&cfg.loss, train_classes, dim);
        // The values, their gradient and the optimiser's two moments (Adam's; SGD keeps fewer).
        b.add(format!("the loss's {name} ({rows} × {dim} = {n} parameters for {train_classes} training classes) with their gradients and optimizer state"), n, 4 * F32);
        // S = x̂ Ŵᵀ, its gradient and the host's f64 copies.
        b.add(format!("the loss's {batch} × {rows} similarity matrices"), batch.saturating_mul(rows), 4 * 8);
    }
    b.add(
        format!("an evaluation batch of {}", cfg.eval_batch),
        cfg.eval_batch as u64,
        (activations_per_sample(&cfg.model, shape) / 2).saturating_mul(F32),
    );
    b
}

/// What to lower when training does not fit.
const ADVICE: &str = "lower train.sampler.classes_per_batch × samples_per_class, train.eval_batch or the model's size (or set MARGIN_MEMORY_LIMIT if the machine's figure is wrong)";
/// The same with a loss with class parameters.
const ADVICE_PARAMS: &str = "lower train.sampler.classes_per_batch × samples_per_class, train.eval_batch, the model's size or, for the loss's parameters, the embedding dimension (or train.loss.centers_per_class) (or set MARGIN_MEMORY_LIMIT if the machine's figure is wrong)";

/// [`training_budget`] plus a lazy feed's loader (its cache and batches in flight).
pub fn training_budget_with(cfg: &TrainConfig, shape: &[usize], train_classes: usize, loader: Option<crate::feed::LoaderMemory>) -> Budget {
    let mut budget = training_budget(cfg, shape, train_classes);
    if let Some(l) = loader {
        l.add_to(&mut budget);
    }
    budget
}

/// Checks that training `cfg` on samples of `shape` with `train_classes` training classes
/// fits in the memory left.
pub fn check_training(cfg: &TrainConfig, shape: &[usize], train_classes: usize) -> Result<(), MemoryError> {
    check_training_with(cfg, shape, train_classes, None)
}

/// [`check_training`] with a lazy feed's loader counted too (its cache and batches in
/// flight; the file index is already loaded, so the available figure excludes it).
pub fn check_training_with(cfg: &TrainConfig, shape: &[usize], train_classes: usize, loader: Option<crate::feed::LoaderMemory>) -> Result<(), MemoryError> {
    let advice = if cfg.loss.is_parametric() { ADVICE_PARAMS } else { ADVICE };
    training_budget_with(cfg, shape, train_classes, loader).check("training", advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convnet4_parameters_match_the_built_model() {
        // ConvNet-4 width 64 on 1×28×28, 64-d: 4 conv blocks + BN + fc 64·1·1 → 64.
        let cfg = ModelConfig::Convnet4 { width: 64, embedding_dim: 64, normalize: false };
        let convs = (9 * 64 + 64) + 3 * (9 * 64 * 64 + 64);
        assert_eq!(parameter_count(&cfg, &[1, 28, 28]), (convs + 16 * 64 + 64 * 64 + 64) as u64);
        let mlp = ModelConfig::Mlp { hidden: vec![128], embedding_dim: 32, normalize: false };
        assert_eq!(parameter_count(&mlp, &[64]), (64 * 128 + 128 + 128 * 32 + 32) as u64);
    }

    #[test]
    fn the_default_run_fits_and_a_huge_batch_does_not() {
        let cfg = TrainConfig::omniglot_default();
        let b = training_budget(&cfg, &[1, 28, 28], 868);
        assert!(b.total() < 2 << 30, "the default run's estimate {} stays below 2 GiB", b.total());
        assert!(b.check_against("training", "", 8 << 30, "").is_ok());
        let mut big = cfg.clone();
        big.sampler.samples_per_class = 500_000;
        big.sampler.classes_per_batch = 2;
        let e = training_budget(&big, &[1, 28, 28], 868).check_against("training", "lower it", 8 << 30, "").unwrap_err().to_string();
        assert!(e.contains("a batch of 1000000 samples"), "{e}");
    }

    #[test]
    fn resnet_counts_match_the_built_modules() {
        use burn::module::Module;
        use margin_data::{Freeze, HeadConfig, ResnetConfig, ResnetDepth};
        use margin_models::BuildEncoder;
        let device = burn::tensor::Device::flex();
        for depth in ResnetDepth::ALL {
            let head = HeadConfig { embedding_dim: 32, batch_norm: true, ..HeadConfig::default() };
            let cfg = ModelConfig::Resnet(ResnetConfig { depth, weights: None, head, freeze: Freeze::None });
            let net = cfg.init(&[3, 64, 64], &device).unwrap();
            // Burn's num_params counts BatchNorm's running statistics too, as the budget does.
            assert_eq!(parameter_count(&cfg, &[3, 64, 64]), net.num_params() as u64, "{depth:?}");
        }
        let r50 = ModelConfig::Resnet(ResnetConfig { depth: ResnetDepth::R50, weights: None, head: HeadConfig::default(), freeze: Freeze::None });
        assert!(activations_per_sample(&r50, &[3, 224, 224]) > 20_000_000, "ResNet-50 keeps ~23M floats an image at 224");
    }

    fn param_specs() -> Vec<crate::LossSpec> {
        use crate::LossSpec::*;
        vec![
            Arcface { margin_degrees: 28.6, scale: 64.0, lr: None },
            Cosface { margin: 0.35, scale: 64.0, lr: None },
            NormalizedSoftmax { temperature: 0.05, lr: None },
            ProxyAnchor { margin: 0.1, alpha: 32.0, lr: None },
            ProxyNca { softmax_scale: 1.0, lr: None },
            SoftTriple { centers_per_class: 3, la: 20.0, gamma: 0.1, margin: 0.01, lr: None },
        ]
    }

    #[test]
    fn loss_parameter_counts_match_the_built_modules() {
        use burn::module::Module;
        let device = burn::tensor::Device::flex();
        for spec in param_specs() {
            for (c, d) in [(7, 5), (1, 64)] {
                let built = crate::param_loss::init_seeded(&spec, 3, c, d, &device).unwrap();
                assert_eq!(crate::param_loss::parameter_count(&spec, c, d), built.num_params() as u64, "{spec:?} {c}×{d}");
            }
        }
        assert_eq!(crate::param_loss::parameter_count(&crate::LossSpec::default(), 100, 64), 0, "a stateless loss holds none");
        // A stateless loss adds no line; a parametric one its parameters and matrices.
        let cfg = TrainConfig::omniglot_default();
        let plain = training_budget(&cfg, &[1, 28, 28], 868).total();
        let mut arc = cfg.clone();
        arc.loss = param_specs()[0].clone();
        let dim = crate::param_loss::embedding_dim(&arc.model) as u64;
        let batch = (cfg.sampler.classes_per_batch * cfg.sampler.samples_per_class) as u64;
        assert_eq!(training_budget(&arc, &[1, 28, 28], 868).total() - plain, 868 * dim * 16 + batch * 868 * 32);
    }

    #[test]
    fn a_huge_class_count_times_dimension_is_refused_naming_the_loss_parameters() {
        let mut cfg = TrainConfig::omniglot_default();
        let dim = crate::param_loss::embedding_dim(&cfg.model);
        cfg.loss = param_specs()[3].clone(); // Proxy-Anchor
        assert!(training_budget(&cfg, &[1, 28, 28], 868).check_against("training", ADVICE_PARAMS, 8 << 30, "").is_ok(), "868 proxies fit");
        let classes = 50_000_000;
        let e = training_budget(&cfg, &[1, 28, 28], classes).check_against("training", ADVICE_PARAMS, 8 << 30, "").unwrap_err().to_string();
        let n = classes as u64 * dim as u64;
        assert!(e.contains(&format!("the loss's proxies ({classes} × {dim} = {n} parameters for {classes} training classes)")), "{e}");
        assert!(e.contains("embedding dimension"), "{e}");
        cfg.loss = param_specs()[5].clone(); // SoftTriple, 3 centres a class
        let e = training_budget(&cfg, &[1, 28, 28], classes).check_against("training", ADVICE_PARAMS, 8 << 30, "").unwrap_err().to_string();
        assert!(e.contains(&format!("the loss's centers ({} × {dim} = {} parameters", 3 * classes, 3 * n)), "{e}");
    }
}
