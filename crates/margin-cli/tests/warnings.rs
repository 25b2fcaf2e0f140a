//! Warnings reach the user whatever stderr is: here a pipe (not a terminal, where the
//! progress bar is hidden and used to swallow every line printed through it), without
//! `-q`. They are also in train_log.jsonl, in the epoch's record.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

#[test]
fn a_stalled_run_warns_on_a_piped_stderr_and_in_the_log() {
    let csv = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    let dir = std::env::temp_dir().join(format!("margin-warnings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A contrastive loss that no pair can violate: positives are penalised only beyond the
    // largest possible distance (2), negatives only within 0. Active fraction 0: stalled.
    let text = std::fs::read_to_string(repo().join("configs/digits.toml"))
        .unwrap()
        .replace("../shared/data/sklearn_digits/digits.csv.gz", csv.to_str().unwrap())
        .replace("kind = \"triplet\"\nmargin = 0.2", "kind = \"contrastive\"\npos_margin = 2.0\nneg_margin = 0.0")
        .replace("[train.miner]\nkind = \"batch-hard\"\n", "");
    assert!(text.contains("contrastive"));
    std::fs::write(dir.join("c.toml"), text).unwrap();
    let run = dir.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_margin"))
        .args(["train", "--config", dir.join("c.toml").to_str().unwrap(), "--out", run.to_str().unwrap(), "--no-eval"])
        .args(["--epochs", "2", "--batches-per-epoch", "2"])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("epoch   1: loss"), "epoch lines reach a piped stderr: {stderr}");
    assert!(stderr.contains("warning: active fraction 0.0000 for 2 epochs in a row"), "the stall warning reaches a piped stderr: {stderr}");
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap();
    let last: serde_json::Value = log.lines().rev().map(|l| serde_json::from_str(l).unwrap()).find(|v: &serde_json::Value| v["kind"] == "epoch").unwrap();
    assert!(last["warnings"][0].as_str().unwrap().contains("training has stalled"), "{last}");
    let _ = std::fs::remove_dir_all(&dir);
}
