//! End-to-end `margin train` on sklearn digits (classes 0–4 train, 5–9 unseen test),
//! resume equivalence, the leakage refusal and clear errors for corrupt inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// sklearn digits from `../shared`; every test here needs it, so a missing file fails the
/// test (naming the path) instead of skipping it.
fn digits_csv() -> PathBuf {
    let p = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    assert!(p.is_file(), "{} is needed (../shared next to the repository)", p.display());
    p
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-train-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The bundled digits config with the data path made absolute.
fn digits_config(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("configs/digits.toml")).unwrap();
    let text = text.replace("../shared/data/sklearn_digits/digits.csv.gz", &digits_csv().display().to_string());
    let p = dir.join("digits.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}

fn margin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").output().unwrap()
}

fn metrics(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn digits_end_to_end_beats_untrained() {
    let dir = tmp("e2e");
    let cfg = digits_config(&dir, |s| s);
    let run = dir.join("run");
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["model.safetensors", "model.json", "config.toml", "metrics.json", "train_log.jsonl", "report.html"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let m = metrics(&run);
    let trained = m["test"]["retrieval"]["map_at_r"].as_f64().unwrap();
    let untrained = m["untrained"]["map_at_r"].as_f64().unwrap();
    assert!(trained > untrained, "trained MAP@R {trained} should beat untrained {untrained}");
    assert!(m["train"]["images_per_s"].as_f64().unwrap() > 0.0);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("http://") && !html.contains("<script"));
    // The log has one step record per step and one epoch record per epoch.
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains(r#""kind":"epoch""#)).count(), 3);

    // A second run into the same folder is refused (it would overwrite the first).
    let again = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--resume"));

    // `margin embed` with the trained model.
    let e = dir.join("e.npy");
    let out = margin(&["embed", "--model", run.to_str().unwrap(), "--input", digits_csv().to_str().unwrap(), "--scale", "16", "--out", e.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let arr = margin_data::npy::read_npy(&e).unwrap();
    assert_eq!(arr.header.shape, vec![1797, 32]);
}

#[test]
fn resume_gives_the_same_metrics() {
    let dir = tmp("resume");
    let cfg = digits_config(&dir, |s| s.replace("epochs = 3", "epochs = 4"));
    let full = dir.join("full");
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", full.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Interrupted after epoch 2 (simulated by a run of 2 epochs), then resumed to 4.
    let part = dir.join("part");
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", part.to_str().unwrap(), "--epochs", "2", "-q", "--no-eval"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A crash mid-checkpoint leaves a temporary folder behind; resume must ignore it.
    std::fs::create_dir_all(part.join("checkpoints/.epoch-0003.tmp")).unwrap();
    std::fs::write(part.join("checkpoints/.epoch-0003.tmp/model.bpk"), b"garbage").unwrap();
    let out = margin(&["train", "--resume", part.to_str().unwrap(), "--epochs", "4", "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (metrics(&full), metrics(&part));
    assert_eq!(a["test"]["retrieval"], b["test"]["retrieval"]);
    assert_eq!(a["test"]["verification"]["metrics"]["auc"], b["test"]["verification"]["metrics"]["auc"]);
    assert_eq!(a["train"]["steps"], b["train"]["steps"]);
    let (la, lb) = (std::fs::read_to_string(full.join("train_log.jsonl")).unwrap(), std::fs::read_to_string(part.join("train_log.jsonl")).unwrap());
    let losses = |l: &str| l.lines().filter_map(|x| serde_json::from_str::<serde_json::Value>(x).ok()).filter(|v| v["kind"] == "step").map(|v| v["loss"].as_f64().unwrap()).collect::<Vec<_>>();
    assert_eq!(losses(&la), losses(&lb));
    // Same weights: compare the safetensors data sections (the JSON header's metadata
    // map has no fixed key order).
    let data = |p: PathBuf| {
        let b = std::fs::read(p).unwrap();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        b[8 + n..].to_vec()
    };
    assert_eq!(data(full.join("model.safetensors")), data(part.join("model.safetensors")));
}

#[test]
fn overlapping_split_is_refused() {
    let dir = tmp("leak");
    let cfg = digits_config(&dir, |s| s.replace("test_classes = [5, 6, 7, 8, 9]", "test_classes = [4, 5, 6, 7, 8, 9]"));
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap(), "-q"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data leakage") && err.contains('4'), "{err}");
    // Separate train and test files that share classes are refused too.
    let cfg = digits_config(&dir, |s| {
        s.replace("[split]\ntrain_classes = [0, 1, 2, 3, 4]\ntest_classes = [5, 6, 7, 8, 9]", "[split]")
            .replace("scale = 16.0", &format!("scale = 16.0\ntest = \"{}\"", digits_csv().display()))
    });
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("run2").to_str().unwrap(), "-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("data leakage"), "{err}");
}

#[test]
fn corrupt_inputs_name_the_file() {
    let dir = tmp("corrupt");
    // Truncated CSV row, truncated gzip, truncated npz.
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, "1,2,0\n3,4\n").unwrap();
    let gz = dir.join("bad.csv.gz");
    std::fs::write(&gz, &std::fs::read(digits_csv()).unwrap()[..40]).unwrap();
    for bad in [&csv, &gz] {
        let cfg = dir.join("c.toml");
        std::fs::write(&cfg, format!("[data]\nkind = \"csv\"\npath = \"{}\"\n[split]\ntest_fraction = 0.5\n[train]\nepochs = 1\nlr = 1e-3\n[train.model]\nkind = \"mlp\"\n", bad.display())).unwrap();
        let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("r").to_str().unwrap(), "-q"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(bad.file_name().unwrap().to_str().unwrap()), "{err}");
    }
    let npz_src = repo().join("data/omniglot/images_evaluation.npz");
    assert!(npz_src.is_file(), "{} is needed (bundled with the repository)", npz_src.display());
    let npz = dir.join("images_evaluation.npz");
    std::fs::write(&npz, &std::fs::read(&npz_src).unwrap()[..100_000]).unwrap();
    let e = margin_data::load_omniglot_npz(&npz, 28, 0).unwrap_err().to_string();
    assert!(e.contains("images_evaluation.npz"), "{e}");
    // A bad config field is named.
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[data]\nkind = \"csv\"\npath = \"x.csv\"\n[train]\nepochs = 1\nlr = 1e-3\nbogus = 3\n[train.model]\nkind = \"mlp\"\n").unwrap();
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("bogus") && err.contains("bad.toml"), "{err}");
}
