//! `check_embeddings`: which cause it names for unusable embeddings — the model's weights
//! (a parameter set to NaN here), the input sample, or an overflow inside the network —
//! and that usable embeddings pass. The CLI's and Python's refusals are this one check.

use std::path::Path;

use margin::burn::module::{Module, ModuleMapper, Param};
use margin::burn::tensor::{Device, Tensor};
use margin_data::{Dataset, ModelConfig};
use margin_models::{BuildEncoder, EmbeddingFault, EmbeddingNet, check_embeddings};

fn mlp() -> EmbeddingNet {
    let cfg = ModelConfig::Mlp { hidden: vec![], embedding_dim: 2, normalize: false };
    cfg.init(&[3], &Device::flex()).expect("a linear map")
}

/// Three finite samples of 3 features.
fn samples() -> Dataset {
    Dataset::new("x.npy", (0..9).map(|i| i as f32).collect(), vec![3], vec![0; 3]).unwrap()
}

const WEIGHTS: &str = "run/model.safetensors";

#[test]
fn usable_embeddings_pass() {
    let emb = margin_models::embed(&mlp(), &samples(), 2, false, &Device::flex());
    check_embeddings(&emb, 2, &samples(), &mlp(), Path::new(WEIGHTS)).unwrap();
}

#[test]
fn a_non_finite_input_sample_is_named_by_row_and_position() {
    let mut ds = samples();
    // Past Dataset::new's own check, as a caller that skipped it would be.
    ds.features[5] = f32::INFINITY;
    let emb = vec![0.0, 0.0, f32::NAN, 0.0, 0.0, 0.0];
    let e = check_embeddings(&emb, 2, &ds, &mlp(), Path::new(WEIGHTS)).unwrap_err();
    assert_eq!(e, EmbeddingFault::Input { input: "x.npy".into(), row: 1, position: 2, value: f32::INFINITY });
    assert!(e.to_string().starts_with("x.npy: sample 1 has the non-finite value inf at position 2"), "{e}");
}

#[test]
fn finite_inputs_and_weights_with_an_overflowing_row_name_the_overflow() {
    let emb = vec![0.0, 0.0, 0.0, 0.0, 3e38, 3e38];
    let e = check_embeddings(&emb, 2, &samples(), &mlp(), Path::new(WEIGHTS)).unwrap_err();
    assert!(matches!(e, EmbeddingFault::Overflow { row: 2, .. }), "{e}");
    assert!(e.to_string().contains("overflow inside the network"), "{e}");
}

struct Poison;

impl ModuleMapper for Poison {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.mul_scalar(f32::NAN))
    }
}

#[test]
fn a_non_finite_parameter_is_blamed_before_the_input() {
    let net = mlp().map(&mut Poison);
    let emb = margin_models::embed(&net, &samples(), 2, false, &Device::flex());
    assert!(emb[0].is_nan(), "the poisoned model's output is NaN");
    let e = check_embeddings(&emb, 2, &samples(), &net, Path::new(WEIGHTS)).unwrap_err();
    let EmbeddingFault::Parameter { weights, bad } = &e else { panic!("{e}") };
    assert_eq!(weights, Path::new(WEIGHTS));
    assert!(bad.value.is_nan() && bad.index == 0, "{bad:?}");
    assert!(e.to_string().contains("run/model.safetensors: the model's parameter") && e.to_string().contains("diverged"), "{e}");
}
