//! Losses with class parameters trained with the encoder: the parameters change, are saved
//! in each checkpoint and restored on resume (a resumed run equals an uninterrupted one, the
//! parameters bit for bit); the TOML section parses with PML's defaults; bad settings refused.

mod common;

use burn::tensor::Device;
use margin_data::{Dataset, ModelConfig};
use margin_train::param_loss::{ClassMap, init_for_run};
use margin_train::{LossSpec, MemorySink, SamplerConfig, Schedule, Silent, TrainConfig, Trainer};

fn dataset() -> Dataset {
    common::blobs(6, 6, 8, 0x9e37_79b9_7f4a_7c15)
}

fn config(epochs: usize, loss: LossSpec) -> TrainConfig {
    let mut cfg = margin_train::parse_config(margin_train::DEFAULT_CONFIG, "the bundled default").unwrap().train;
    cfg.model = ModelConfig::Mlp { hidden: vec![16], embedding_dim: 8, normalize: false };
    cfg.sampler = SamplerConfig { classes_per_batch: 4, samples_per_class: 3, batches_per_epoch: Some(3) };
    cfg.epochs = epochs;
    cfg.schedule = Schedule::Constant;
    cfg.augment = None;
    cfg.validate_every = 0;
    cfg.loss = loss;
    cfg.miner = margin_train::MinerSpec::none();
    cfg
}

fn embeddings(model: &margin_models::EmbeddingNet) -> Vec<u32> {
    margin_models::embed(model, &dataset(), 64, false, &Device::flex()).iter().map(|v| v.to_bits()).collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// One test for every run of this file: a run seeds the backend's global generator
/// (`Device::seed`) and draws the encoder from it, so two runs in parallel test threads
/// would interleave their draws.
#[test]
fn class_parameters_train_and_resume_exactly() {
    let data = dataset();
    let device = Device::flex().autodiff();
    // A stateless loss has no parameters and writes no loss files.
    let out = Trainer::with_sink(config(1, LossSpec::default()), &[8], Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    assert!(out.loss_params.is_none());
    assert!(out.sink.read("checkpoints/epoch-0001/loss.bpk").unwrap().is_none());
    for loss in [
        LossSpec::ProxyAnchor { margin: 0.1, alpha: 32.0, lr: Some(0.05) },
        LossSpec::Arcface { margin_degrees: 28.6, scale: 16.0, lr: None },
        LossSpec::SoftTriple { centers_per_class: 2, la: 20.0, gamma: 0.1, margin: 0.01, lr: Some(0.02) },
    ] {
        let full = Trainer::with_sink(config(3, loss.clone()), &[8], Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
        let trained = full.loss_params.clone().expect("a parametric loss reports its parameters");
        // They moved away from the run's initial draw.
        let classes = ClassMap::of(&data.labels).len();
        let initial = init_for_run(&config(3, loss.clone()), classes, 8, &device).unwrap().param_values();
        assert_eq!(initial.len(), trained.len(), "{loss:?}");
        let moved = initial.iter().zip(&trained).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(moved > 1e-3, "{loss:?}: the parameters changed by at most {moved}");
        // The checkpoint holds them beside the model.
        for f in ["loss.bpk", "loss_optimizer.bpk", "model.bpk"] {
            assert!(full.sink.read(&format!("checkpoints/epoch-0003/{f}")).unwrap().is_some(), "{loss:?}: {f}");
        }
        // Two epochs, resumed for the third: the same encoder and the same parameters, bit for bit.
        let first = Trainer::with_sink(config(2, loss.clone()), &[8], Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
        assert_ne!(bits(first.loss_params.as_ref().unwrap()), bits(&trained), "{loss:?}: epoch 3 moves them again");
        let resumed = Trainer::resume_sink(first.sink, &[8], Some(3), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
        assert_eq!(bits(resumed.loss_params.as_ref().unwrap()), bits(&trained), "{loss:?}: resumed parameters = uninterrupted");
        assert_eq!(embeddings(&resumed.model), embeddings(&full.model), "{loss:?}: resumed encoder = uninterrupted");
    }
    // A damaged parameter file is an error naming it, not a fresh draw.
    let loss = LossSpec::ProxyNca { softmax_scale: 1.0, lr: None };
    let first = Trainer::with_sink(config(1, loss), &[8], Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    let mut sink = first.sink;
    sink.write("checkpoints/epoch-0001/loss.bpk", b"not a record").unwrap();
    let err = Trainer::resume_sink(sink, &[8], Some(2), &device).unwrap().fit(&data, None, &mut Silent).unwrap_err().to_string();
    assert!(err.contains("checkpoints/epoch-0001/loss.bpk"), "{err}");
}


fn parse(loss: &str, miner: &str) -> Result<TrainConfig, String> {
    let base = margin_train::DEFAULT_CONFIG;
    let text = format!("{base}\n");
    let mut value: toml::Value = toml::from_str(&text).unwrap();
    let train = value.get_mut("train").unwrap().as_table_mut().unwrap();
    train.insert("loss".into(), toml::from_str(loss).unwrap());
    train.insert("miner".into(), toml::from_str(miner).unwrap());
    let text = toml::to_string(&value).unwrap();
    let cfg = margin_train::parse_config(&text, "test").map_err(|e| e.to_string())?.train;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[test]
fn the_toml_section_takes_pml_defaults_and_refuses_bad_settings() {
    let none = r#"kind = "none""#;
    let cfg = parse(r#"kind = "arcface""#, none).unwrap();
    assert_eq!(cfg.loss, LossSpec::Arcface { margin_degrees: 28.6, scale: 64.0, lr: None });
    let cfg = parse(r#"kind = "soft_triple""#, none).unwrap();
    assert_eq!(cfg.loss, LossSpec::SoftTriple { centers_per_class: 10, la: 20.0, gamma: 0.1, margin: 0.01, lr: None });
    let cfg = parse("kind = \"proxy_anchor\"\nlr = 0.01", none).unwrap();
    assert_eq!(cfg.loss, LossSpec::ProxyAnchor { margin: 0.1, alpha: 32.0, lr: Some(0.01) });
    for (kind, expect) in [
        ("cosface", LossSpec::Cosface { margin: 0.35, scale: 64.0, lr: None }),
        ("normalized_softmax", LossSpec::NormalizedSoftmax { temperature: 0.05, lr: None }),
        ("proxy_nca", LossSpec::ProxyNca { softmax_scale: 1.0, lr: None }),
    ] {
        assert_eq!(parse(&format!("kind = \"{kind}\""), none).unwrap().loss, expect);
    }
    for (loss, words) in [
        ("kind = \"arcface\"\nmargin = 0.5", "margin"),
        ("kind = \"arcface\"\nmargin_degrees = 200.0", "margin_degrees"),
        ("kind = \"cosface\"\nscale = 0.0", "scale"),
        ("kind = \"proxy_anchor\"\nlr = -1.0", "train.loss.lr"),
        ("kind = \"soft_triple\"\ncenters_per_class = 0", "centers_per_class"),
    ] {
        let e = parse(loss, none).unwrap_err();
        assert!(e.contains(words), "{loss}: {e}");
    }
    let e = parse(r#"kind = "proxy_nca""#, r#"kind = "batch-hard""#).unwrap_err();
    assert!(e.contains("train.miner") && e.contains("none"), "{e}");
}
