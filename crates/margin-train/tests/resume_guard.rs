//! What a resume trusts: the checkpoint pointer (a replayed corpus, and a pointer into
//! another run), a run without a pointer (the newest complete checkpoint, or a clear
//! error), fewer epochs than completed, the temporary files a kill leaves, and the model
//! card checked against its weights.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use margin_data::{Dataset, ModelCard, ModelConfig};
use margin_train::{MemorySink, PointerError, SamplerConfig, Schedule, Silent, TrainConfig, Trainer, parse_pointer};

fn dataset() -> Dataset {
    common::blobs(6, 6, 8, 0x9e37_79b9_7f4a_7c15)
}

fn config(epochs: usize) -> TrainConfig {
    let mut cfg = margin_train::parse_config(margin_train::DEFAULT_CONFIG, "the bundled default").unwrap().train;
    cfg.model = ModelConfig::Mlp { hidden: vec![16], embedding_dim: 8, normalize: false };
    cfg.sampler = SamplerConfig { classes_per_batch: 4, samples_per_class: 3, batches_per_epoch: Some(2) };
    cfg.epochs = epochs;
    cfg.schedule = Schedule::Constant;
    cfg.augment = None;
    cfg.validate_every = 0;
    cfg
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-resume-guard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A folder run of `epochs` epochs in `dir`.
fn train(dir: &Path, epochs: usize) -> margin_models::EmbeddingNet {
    Trainer::new(config(epochs), &[8], dir, &Device::flex().autodiff()).unwrap().fit(&dataset(), None, &mut Silent).unwrap().model
}

fn resume_err(dir: &Path, epochs: Option<usize>) -> String {
    match Trainer::resume(dir, &[8], epochs, &Device::flex().autodiff()) {
        Ok(_) => panic!("resuming {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn bits(model: &margin_models::EmbeddingNet) -> Vec<u32> {
    margin_models::embed(model, &dataset(), 64, false, &Device::flex()).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn the_pointer_corpus_replays_as_recorded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pointers");
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    let mut seen = 0;
    for line in expected.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (file, want) = (parts.next().unwrap(), parts.next().unwrap());
        let got = match parse_pointer(&std::fs::read(dir.join(file)).unwrap()) {
            Ok(p) => {
                assert_eq!(Some(p.dir.as_str()), parts.next(), "{file}");
                assert_eq!(format!("checkpoints/epoch-{:04}", p.epoch), p.dir, "{file}");
                "ok"
            }
            Err(e) => {
                assert!(e.to_string().starts_with("corrupt checkpoint pointer"), "{file}: {e}");
                match e {
                    PointerError::Json(_) => "Json",
                    PointerError::OutsideRun { .. } => "OutsideRun",
                    PointerError::EpochMismatch { .. } => "EpochMismatch",
                }
            }
        };
        assert_eq!(got, want, "{file}");
        seen += 1;
    }
    // Every file of the corpus is in the list (a file without a line would never be replayed).
    let files = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().file_name() != "expected.txt").count();
    assert_eq!(seen, files);
    assert!(seen >= 20);
}

#[test]
fn a_pointer_cannot_lead_out_of_the_run_or_to_another_epoch() {
    let (a, b) = (tmp("ptr-a"), tmp("ptr-b"));
    train(&a, 2);
    train(&b, 2);
    let b_rel = format!("../{}/checkpoints/epoch-0002", b.file_name().unwrap().to_str().unwrap());
    std::fs::write(a.join("checkpoint.json"), format!(r#"{{"epoch":2,"dir":"{b_rel}"}}"#)).unwrap();
    let e = resume_err(&a, None);
    assert!(e.contains("checkpoint.json") && e.contains("not a checkpoint folder of this run"), "{e}");
    // The state of the folder must be the pointer's epoch.
    std::fs::rename(a.join("checkpoints/epoch-0002"), a.join("checkpoints/epoch-0001")).unwrap();
    std::fs::write(a.join("checkpoint.json"), r#"{"epoch":1,"dir":"checkpoints/epoch-0001"}"#).unwrap();
    let e = resume_err(&a, None);
    assert!(e.contains("state.json") && e.contains("holds epoch 2"), "{e}");
    for d in [a, b] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn without_a_pointer_the_newest_complete_checkpoint_resumes() {
    let full = train(&tmp("full"), 3);
    let dir = tmp("nopointer");
    train(&dir, 2);
    std::fs::remove_file(dir.join("checkpoint.json")).unwrap();
    // A newer, incomplete epoch folder (no model, no optimizer) is passed over.
    std::fs::create_dir_all(dir.join("checkpoints/epoch-0003")).unwrap();
    std::fs::write(dir.join("checkpoints/epoch-0003/state.json"), b"{}").unwrap();
    let t = Trainer::resume(&dir, &[8], Some(3), &Device::flex().autodiff()).unwrap();
    assert_eq!(t.state().epoch, 2);
    let resumed = t.fit(&dataset(), None, &mut Silent).unwrap();
    assert_eq!(bits(&resumed.model), bits(&full), "resumed from epoch-0002 = uninterrupted");
    // No complete checkpoint at all: the error says so and how to start again.
    std::fs::remove_file(dir.join("checkpoint.json")).unwrap();
    std::fs::remove_dir_all(dir.join("checkpoints/epoch-0003/")).unwrap();
    std::fs::create_dir_all(dir.join("checkpoints/epoch-0001")).unwrap();
    std::fs::write(dir.join("checkpoints/epoch-0001/model.bpk"), b"garbage").unwrap();
    let e = resume_err(&dir, None);
    assert!(e.contains("no complete checkpoint") && e.contains("margin train --config") && e.contains("config.toml --out NEWDIR"), "{e}");
    assert!(e.starts_with(&format!("cannot resume {}:", dir.display())), "the run folder is named: {e}");
    assert!(e.contains("epoch-0001"), "the incomplete folder is named: {e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fewer_epochs_than_completed_are_refused() {
    let device = Device::flex().autodiff();
    let done = Trainer::with_sink(config(3), &[8], Box::new(MemorySink::new()), &device).unwrap().fit(&dataset(), None, &mut Silent).unwrap();
    let Err(e) = Trainer::resume_sink(done.sink, &[8], Some(2), &device) else { panic!("2 < 3 epochs completed") };
    let e = e.to_string();
    assert!(e.contains("epochs = 2") && e.contains("the 3 epochs the run has completed"), "{e}");
}

#[test]
fn a_resume_sweeps_the_temporaries_a_kill_left() {
    let dir = tmp("sweep");
    train(&dir, 1);
    let stale = [".model.safetensors.tmp26448", ".checkpoint.json.tmp1", ".metrics.json.tmp77", ".report.html.tmp5", "checkpoints/.epoch-0002.tmp"];
    for s in stale {
        if s.ends_with(".tmp") {
            std::fs::create_dir_all(dir.join(s)).unwrap();
            std::fs::write(dir.join(s).join("model.bpk"), b"half").unwrap();
        } else {
            std::fs::write(dir.join(s), b"half").unwrap();
        }
    }
    // best/ moved aside by a publish that never finished comes back.
    std::fs::create_dir_all(dir.join("checkpoints/.best.old")).unwrap();
    std::fs::write(dir.join("checkpoints/.best.old/state.json"), b"{}").unwrap();
    let t = Trainer::resume(&dir, &[8], Some(2), &Device::flex().autodiff()).unwrap();
    for s in stale {
        assert!(!dir.join(s).exists(), "{s} swept");
    }
    assert!(dir.join("checkpoints/best/state.json").is_file() && !dir.join("checkpoints/.best.old").exists());
    t.fit(&dataset(), None, &mut Silent).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_model_card_is_checked_against_the_weights() {
    let dir = tmp("card");
    std::fs::create_dir_all(&dir).unwrap();
    let model = train(&dir.join("run"), 1);
    let card = ModelCard::new(config(1).model, margin_data::card::Preprocessing::Features { dim: 8, scale: 1.0 }, true);
    margin_train::save_model(&model, &card, &dir).unwrap();
    let (read, loaded) = margin_models::weights::load_model(&dir, &Device::flex()).unwrap();
    assert_eq!(read, card);
    assert_eq!(bits(&loaded), bits(&model));
    // An edited card (another embedding size) no longer belongs to these weights.
    let edited = String::from_utf8(std::fs::read(dir.join("model.json")).unwrap()).unwrap().replace("\"embedding_dim\": 8", "\"embedding_dim\": 4");
    std::fs::write(dir.join("model.json"), &edited).unwrap();
    let e = margin_models::weights::load_model(&dir, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("model.json") && e.contains("different model card"), "{e}");
    // Weights without the card's hash (written before it existed) are checked by shape.
    let mut w = std::fs::read(dir.join("model.safetensors")).unwrap();
    let key = b"margin.model_card_sha256";
    let at = w.windows(key.len()).position(|x| x == key).expect("the hash is in the header");
    w[at..at + 6].copy_from_slice(b"xxxxxx");
    std::fs::write(dir.join("model.safetensors"), &w).unwrap();
    let e = margin_models::weights::load_model(&dir, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("tensor `mlp.layers.1.weight` has shape [16, 8]") && e.contains("expects [16, 4]"), "{e}");
    // Saving refuses a card that does not describe the model.
    let wrong = ModelCard::new(ModelConfig::Mlp { hidden: vec![16], embedding_dim: 4, normalize: false }, card.preprocessing.clone().unwrap(), true);
    let e = margin_train::save_model(&model, &wrong, &dir.join("run")).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("tensor `mlp.layers.1.weight` has shape [16, 8]") && e.contains("expects [16, 4]"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
