//! A run written through a `MemorySink` (the trainer writes only through its sink) holds the same log and checkpoint
//! layout as a run folder, and resumes from memory exactly (the same model bits as an
//! uninterrupted run); the folder sink and the memory sink train the same model.

mod common;

use burn::tensor::Device;
use margin_data::{Dataset, ModelConfig};
use margin_train::{MemorySink, SamplerConfig, Schedule, Silent, TrainConfig, Trainer};

fn dataset() -> Dataset {
    common::blobs(6, 6, 8, 0x9e37_79b9_7f4a_7c15)
}

fn config(epochs: usize) -> TrainConfig {
    let mut cfg = margin_train::parse_config(margin_train::DEFAULT_CONFIG, "the bundled default").unwrap().train;
    cfg.model = ModelConfig::Mlp { hidden: vec![16], embedding_dim: 8, normalize: false };
    cfg.sampler = SamplerConfig { classes_per_batch: 4, samples_per_class: 3, batches_per_epoch: Some(3) };
    cfg.epochs = epochs;
    // A constant rate, so that a 2-epoch run extended to 3 is the 3-epoch run (a cosine
    // schedule depends on the total).
    cfg.schedule = Schedule::Constant;
    cfg.augment = None;
    cfg.validate_every = 0;
    cfg
}

/// The model's function, bit for bit: its embeddings of the data (parameter ids, which a
/// record also holds, differ between two initialisations of equal weights).
fn weights(model: &margin_models::EmbeddingNet) -> Vec<u32> {
    margin_models::embed(model, &dataset(), 64, false, &Device::flex()).iter().map(|v| v.to_bits()).collect()
}

/// The log's records without their wall-clock fields.
fn untimed(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["seconds", "train_seconds", "images_per_s"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect()
}

#[test]
fn memory_runs_resume_exactly_and_keep_the_run_layout() {
    let data = dataset();
    let device = Device::flex().autodiff();
    // Uninterrupted, in memory.
    let full = Trainer::with_sink(config(3), &[8], Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    // Two epochs, then resumed from the same memory for the third.
    let first = Trainer::with_sink(config(2), &[8], Box::new(MemorySink::new()), &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    let resumed = Trainer::resume_sink(first.sink, &[8], Some(3), &device).unwrap();
    assert_eq!(resumed.state().epoch, 2);
    let resumed = resumed.fit(&data, None, &mut Silent).unwrap();
    assert_eq!(weights(&resumed.model), weights(&full.model), "resumed from memory = uninterrupted");
    assert_eq!(resumed.state.step, full.state.step);
    // The memory holds the run folder's layout: the log, the pointer, the latest checkpoint only.
    let log = String::from_utf8(full.sink.read("train_log.jsonl").unwrap().unwrap()).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains(r#""kind":"step""#)).count(), 9);
    let resumed_log = String::from_utf8(resumed.sink.read("train_log.jsonl").unwrap().unwrap()).unwrap();
    assert_eq!(untimed(&log), untimed(&resumed_log), "the same log, line for line (timings aside)");
    assert!(full.sink.read("checkpoint.json").unwrap().is_some());
    assert_eq!(full.sink.subdirs("checkpoints").unwrap(), vec!["epoch-0003".to_string()]);
    for f in ["model.bpk", "optimizer.bpk", "state.json"] {
        assert!(full.sink.read(&format!("checkpoints/epoch-0003/{f}")).unwrap().is_some(), "{f}");
    }
    // The same run written to a folder trains the same model.
    let dir = std::env::temp_dir().join(format!("margin-sink-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let folder = Trainer::new(config(3), &[8], &dir, &device).unwrap().fit(&data, None, &mut Silent).unwrap();
    assert_eq!(weights(&folder.model), weights(&full.model), "folder sink = memory sink");
    assert!(dir.join("checkpoints/epoch-0003/model.bpk").is_file());
    assert_eq!(std::fs::read_to_string(dir.join("train_log.jsonl")).unwrap().lines().count(), log.lines().count());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Resuming a memory sink that holds no run is a clear error, not a panic.
#[test]
fn resuming_an_empty_sink_names_the_missing_file() {
    let Err(err) = Trainer::resume_sink(Box::new(MemorySink::new()), &[8], None, &Device::flex().autodiff()) else {
        panic!("an empty sink holds no run to resume");
    };
    let err = err.to_string();
    assert!(err.contains("checkpoint.json") && err.contains("missing"), "{err}");
}
