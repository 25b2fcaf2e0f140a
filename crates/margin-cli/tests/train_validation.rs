//! Validation on held-out training classes keeps the best checkpoint by MAP@R.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

#[test]
fn validation_keeps_the_checkpoint_with_the_best_map_at_r() {
    let csv = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    assert!(csv.exists(), "{} is needed (../shared next to the repository)", csv.display());
    let dir = std::env::temp_dir().join(format!("margin-train-val-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo().join("configs/digits.toml"))
        .unwrap()
        .replace("../shared/data/sklearn_digits/digits.csv.gz", &csv.display().to_string())
        .replace("validate_every = 0", "validate_every = 1")
        .replace("train_classes = [0, 1, 2, 3, 4]", "train_classes = [0, 1, 2]\nval_classes = [3, 4]")
        // Three training classes remain: a batch of five classes is refused (no silent clamp).
        .replace("classes_per_batch = 5", "classes_per_batch = 3");
    let cfg = dir.join("digits.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_margin"))
        .args(["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q"])
        .args(["--epochs", "4"])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Every epoch reports a validation MAP@R; the best one's weights are kept.
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap();
    let val: Vec<f64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "epoch")
        .map(|v| v["val_map_at_r"].as_f64().expect("validation ran every epoch"))
        .collect();
    assert_eq!(val.len(), 4);
    assert!(val.iter().all(|v| (0.0..=1.0).contains(v)), "{val:?}");
    assert!(run.join("checkpoints/best").is_dir(), "best checkpoint kept");
    // A fraction on top of explicit class lists would be silently ignored: it is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_margin"))
        .args(["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("run2").to_str().unwrap(), "-q"])
        .args(["--val-fraction", "0.4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("split.val_classes"));
    // The saved state names the best epoch and score; the best/ checkpoint is that epoch's.
    let best = val.iter().copied().fold(f64::MIN, f64::max);
    let best_epoch = val.iter().position(|&v| v == best).unwrap() + 1;
    let state = |dir: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoints").join(dir).join("state.json")).unwrap()).unwrap()
    };
    let last = state("epoch-0004");
    assert_eq!(last["best"][0].as_f64(), Some(best), "{last}");
    assert_eq!(last["best"][1].as_u64(), Some(best_epoch as u64));
    assert_eq!(state("best")["epoch"].as_u64(), Some(best_epoch as u64));
}
