//! The kill test: `margin train` aborted (`MARGIN_FAULT`, margin-train's `fault` module:
//! `std::process::abort()`, no cleanup) at every write step of its checkpoints and final
//! outputs, then `--resume`d, ends with exactly the uninterrupted run's weights, log,
//! card and test metrics, and no temporary file anywhere in the run folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-kill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn margin(args: &[&str], fault: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_margin"));
    c.args(args).env("RAYON_NUM_THREADS", "2").env_remove("MARGIN_FAULT");
    if let Some(f) = fault {
        c.env("MARGIN_FAULT", f);
    }
    c.output().unwrap()
}

/// The safetensors data section (the JSON header's metadata map has no fixed key order).
fn tensors(run: &Path) -> Vec<u8> {
    let b = std::fs::read(run.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    b[8 + n..].to_vec()
}

/// The log's records without their wall-clock fields.
fn untimed_log(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["seconds", "train_seconds", "images_per_s"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect()
}

/// metrics.json's results (the test metrics without their timings, the baseline, the
/// counts), and its clustering scores apart: margin-eval's NMI/AMI are not bit-reproducible
/// (two uninterrupted runs differ in the last digits), so they are compared to 1e-9.
fn test_metrics(run: &Path) -> (serde_json::Value, [f64; 2]) {
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    let t = m["test"].as_object_mut().unwrap();
    t.remove("seconds");
    let c = t.remove("clustering").unwrap();
    let scores = [c["nmi"].as_f64().unwrap(), c["ami"].as_f64().unwrap()];
    (serde_json::json!([m["test"], m["untrained"], m["train"]["steps"], m["train"]["epochs"], m["train"]["images_seen"]]), scores)
}

/// Temporary files and folders anywhere under `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            out.push(e.path());
        } else if e.path().is_dir() {
            out.extend(temporaries(&e.path()));
        }
    }
    out
}

#[test]
fn killed_at_every_write_step_then_resumed_equals_the_uninterrupted_run() {
    let csv = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    assert!(csv.is_file(), "{} is needed (../shared next to the repository)", csv.display());
    let dir = tmp("steps");
    let text = std::fs::read_to_string(repo().join("configs/digits.toml")).unwrap().replace("../shared/data/sklearn_digits/digits.csv.gz", &csv.display().to_string());
    let cfg = dir.join("digits.toml");
    std::fs::write(&cfg, text).unwrap();
    let train = |run: &Path, fault: Option<&str>| margin(&["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--batches-per-epoch", "2"], fault);
    let full = dir.join("full");
    let o = train(&full, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Each write step of epoch 2's checkpoint (the `#2`: the second time the point is
    // reached), the first pointer (before it: a folder with a checkpoint but no pointer),
    // and every final output.
    let mut points = Vec::new();
    for f in ["checkpoint/model.bpk", "checkpoint/optimizer.bpk", "checkpoint/state.json"] {
        for at in ["before", "partial", "after"] {
            points.push(format!("{f}:{at}#2"));
        }
    }
    points.extend(["checkpoint/publish:before#2".to_string(), "checkpoint/publish:after#2".to_string()]);
    for f in ["checkpoint.json", "model.safetensors", "model.json", "metrics.json", "report.html"] {
        for at in ["before", "partial", "after"] {
            points.push(format!("{f}:{at}{}", if f == "checkpoint.json" { "#1" } else { "" }));
        }
    }
    points.push("checkpoint.json:partial#3".into());
    for point in &points {
        let run = dir.join(point.replace([':', '/', '#'], "_"));
        let o = train(&run, Some(point));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(&format!("MARGIN_FAULT: aborting at {}", point.split('#').next().unwrap())), "{point}: the point was reached and aborted: {err}");
        if point.contains(":partial") {
            assert!(!temporaries(&run).is_empty(), "{point}: the kill left a temporary file");
        }
        let o = margin(&["train", "--resume", run.to_str().unwrap(), "-q"], None);
        assert!(o.status.success(), "{point}: resume failed: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(tensors(&run), tensors(&full), "{point}: weights");
        assert_eq!(untimed_log(&run), untimed_log(&full), "{point}: train_log.jsonl");
        assert_eq!(std::fs::read(run.join("model.json")).unwrap(), std::fs::read(full.join("model.json")).unwrap(), "{point}: model.json");
        let ((a, ca), (b, cb)) = (test_metrics(&run), test_metrics(&full));
        assert!(ca.iter().zip(cb).all(|(x, y)| (x - y).abs() < 1e-9), "{point}: clustering {ca:?} vs {cb:?}");
        let (a, b) = (a.to_string(), b.to_string());
        let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        assert!(a == b, "{point}: metrics.json differs at …{}… vs …{}…", &a[at.saturating_sub(80)..(at + 40).min(a.len())], &b[at.saturating_sub(80)..(at + 40).min(b.len())]);
        assert!(run.join("report.html").is_file(), "{point}");
        assert_eq!(temporaries(&run), Vec::<PathBuf>::new(), "{point}: temporaries left");
        let _ = std::fs::remove_dir_all(&run);
    }

    // Killed before the first checkpoint: nothing to resume, and the error says how to
    // start again; starting again in the same folder gives the uninterrupted run.
    let run = dir.join("early");
    let o = train(&run, Some("checkpoint/model.bpk:partial#1"));
    assert!(!o.status.success());
    let o = margin(&["train", "--resume", run.to_str().unwrap(), "-q"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no complete checkpoint") && err.contains("--out NEWDIR"), "{err}");
    let o = train(&run, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tensors(&run), tensors(&full));
    assert_eq!(untimed_log(&run), untimed_log(&full));
    assert_eq!(temporaries(&run), Vec::<PathBuf>::new());
    // Killed before its configuration was written: the folder is named as no run yet.
    let run = dir.join("earliest");
    let o = train(&run, Some("config.toml:partial"));
    assert!(!o.status.success());
    let o = margin(&["train", "--resume", run.to_str().unwrap(), "-q"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("has no config.toml") && err.contains("--out"), "{err}");
    let o = train(&run, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tensors(&run), tensors(&full));
    assert_eq!(temporaries(&run), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(dir);
}
