//! `margin sweep` end to end on sklearn digits (configs/digits.toml): three margins, one
//! epoch each, validated on 2 of the 5 training classes (the 20 % hold-out) — report.html,
//! sweep.jsonl (3 lines) and best.toml (the original file with the best margin, its own
//! epochs); a sweep killed mid-run (`MARGIN_FAULT`, margin-train's `fault` module) and
//! continued by the same command equals the uninterrupted one bit for bit (wall time aside);
//! another sweep's folder is refused; a configuration's own validation classes are used.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// configs/digits.toml with the data path made absolute and `edits` applied; P = 3 classes a
/// batch, so the 3 training classes left by the hold-out can fill one.
fn digits_config(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let csv = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    assert!(csv.is_file(), "{} is needed (../shared next to the repository)", csv.display());
    let mut text = std::fs::read_to_string(repo().join("configs/digits.toml")).unwrap().replace("../shared/data/sklearn_digits/digits.csv.gz", csv.to_str().unwrap());
    for (from, to) in [("classes_per_batch = 5", "classes_per_batch = 3")].iter().chain(edits) {
        assert!(text.contains(from), "configs/digits.toml has no {from:?}");
        text = text.replace(from, to);
    }
    let p = dir.join("digits.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn margin(args: &[&str], fault: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_margin"));
    c.args(args).env("RAYON_NUM_THREADS", "2").env_remove("MARGIN_FAULT");
    if let Some(f) = fault {
        c.env("MARGIN_FAULT", f);
    }
    c.output().unwrap()
}

fn sweep(cfg: &Path, out: &Path, extra: &[&str], fault: Option<&str>) -> Output {
    let mut args = vec!["sweep", "--config", cfg.to_str().unwrap(), "--param", "train.loss.margin=0.05,0.2,0.8", "--epochs", "1", "--jobs", "1", "--out", out.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    margin(&args, fault)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "status {:?}\nstdout:\n{}\nstderr:\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// sweep.jsonl's records without their wall time.
fn untimed(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("sweep.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall_seconds");
            v
        })
        .collect()
}

#[test]
fn three_margins_give_the_report_the_lines_and_best_toml() {
    let dir = tmp("three");
    // Every triplet, not batch-hard's hardest: with batch-hard every hardest triplet is active
    // in a short run, and a margin that is a constant in every active hinge changes nothing.
    let all = ("kind = \"batch-hard\"", "kind = \"none\"");
    let cfg = digits_config(&dir, &[all]);
    let out = dir.join("sweep");
    let stdout = ok(&sweep(&cfg, &out, &[], None));
    assert!(stdout.contains("best: #"), "{stdout}");
    let lines = untimed(&out);
    assert_eq!(lines.len(), 3);
    let mut best = (f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["index"], i);
        assert_eq!(l["version"], 1);
        assert_eq!(l["status"]["kind"], "finished");
        let v = &l["validation"];
        assert_eq!((v["source"].as_str(), v["classes"].as_array().map(Vec::len), v["train_classes"].as_u64()), (Some("held_out"), Some(2), Some(3)));
        for c in v["classes"].as_array().unwrap() {
            let c: i64 = c.as_str().unwrap().parse().unwrap();
            assert!((0..5).contains(&c), "validation class {c} is not a training class");
        }
        let m = &l["metrics"];
        for k in ["map_at_r", "precision_at_1", "auc"] {
            let x = m[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{k} = {x}");
        }
        let steps = l["steps"]["active_fraction"].as_array().unwrap();
        assert!(!steps.is_empty() && steps.len() == l["steps"]["loss"].as_array().unwrap().len());
        assert_eq!(l["epochs"].as_array().unwrap().len(), 1, "--epochs 1");
        assert!(l["hinge"].as_bool().unwrap() && l["loss"] == "triplet");
        assert!(l["diagnosis"]["verdict"].is_string() && l["diagnosis"]["late_active_fraction"].is_number());
        let margin = l["params"][0]["value"].as_f64().unwrap();
        assert_eq!(l["params"][0]["path"], "train.loss.margin");
        let key = (m["map_at_r"].as_f64().unwrap(), m["precision_at_1"].as_f64().unwrap());
        if key.0 > best.0 || (key.0 == best.0 && key.1 > best.1) {
            best = (key.0, key.1, margin);
        }
        assert!(out.join("runs").join(l["id"].as_str().unwrap()).join("train_log.jsonl").is_file());
    }
    // A larger margin keeps more triplets active; the late active fraction is the mean over
    // the last half of the steps.
    let late = |i: usize| lines[i]["diagnosis"]["late_active_fraction"].as_f64().unwrap();
    assert!(late(0) < late(1) && late(1) < late(2), "margins 0.05, 0.2, 0.8: {} {} {}", late(0), late(1), late(2));
    for l in &lines {
        let a: Vec<f64> = l["steps"]["active_fraction"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let half = &a[a.len() - a.len().div_ceil(2)..];
        let mean = half.iter().sum::<f64>() / half.len() as f64;
        assert!((mean - l["diagnosis"]["late_active_fraction"].as_f64().unwrap()).abs() < 1e-12);
    }
    // best.toml: the original text (comments, epochs, split) with the best margin.
    let text = std::fs::read_to_string(out.join("best.toml")).unwrap();
    assert!(text.starts_with("# A small end-to-end check"), "comments kept:\n{text}");
    let b: toml::Table = text.parse().unwrap();
    assert_eq!(b["train"]["epochs"].as_integer(), Some(3), "the original's epochs, not --epochs");
    assert_eq!(b["train"]["loss"]["margin"].as_float(), Some(best.2), "the best margin");
    assert!(b["split"].get("calibration_fraction").is_none() && b["split"].get("seed").is_none(), "the original's split");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Active fraction of every run") && html.contains("vs train.loss.margin"));
    assert!(!html.contains("<script") && !html.contains("http://"));
    // best.toml trains (its own configuration, untouched by the sweep).
    let run = dir.join("best-run");
    ok(&margin(&["train", "--config", out.join("best.toml").to_str().unwrap(), "--out", run.to_str().unwrap(), "--epochs", "1", "--no-eval", "-q"], None));

    // The same command again: every run is finished, nothing is trained, the lines stay.
    let again = ok(&sweep(&cfg, &out, &[], None));
    assert!(again.contains("3 run(s) finished by an earlier call"), "{again}");
    assert_eq!(untimed(&out), lines);
    // Another grid, other epochs, an edited configuration: refused, naming each difference.
    let o = margin(&["sweep", "--config", cfg.to_str().unwrap(), "--param", "train.loss.margin=0.05,0.2", "--epochs", "2", "--out", out.to_str().unwrap(), "-q"], None);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("another sweep") && e.contains("the grid differs") && e.contains("epochs differ"), "{e}");
    let edited = digits_config(&dir, &[all, ("lr = 3e-4", "lr = 1e-3")]);
    let e = String::from_utf8_lossy(&sweep(&edited, &out, &[], None).stderr).into_owned();
    assert!(e.contains("another sweep") && e.contains("train.lr"), "{e}");
}

#[test]
fn a_killed_sweep_continues_to_the_uninterrupted_result() {
    let dir = tmp("kill");
    let cfg = digits_config(&dir, &[]);
    let whole = dir.join("whole");
    ok(&sweep(&cfg, &whole, &[], None));
    let killed = dir.join("killed");
    // The second run's epoch checkpoint is published, its pointer not yet written: killed.
    let o = sweep(&cfg, &killed, &[], Some("checkpoint/publish:after#2"));
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("MARGIN_FAULT: aborting"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(untimed(&killed).len(), 1, "the first run was recorded before the kill");
    assert!(!killed.join("best.toml").exists());
    // The same command continues: run 1 skipped, run 2 resumed from its checkpoint, run 3 run.
    let o = margin(&["sweep", "--config", cfg.to_str().unwrap(), "--param", "train.loss.margin=0.05,0.2,0.8", "--epochs", "1", "--jobs", "1", "--out", killed.to_str().unwrap()], None);
    ok(&o);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("1 of 3 runs finished before") && e.contains("run #2") && e.contains("resuming after epoch 1"), "{e}");
    assert_eq!(untimed(&killed), untimed(&whole), "bit for bit");
    assert_eq!(std::fs::read(killed.join("best.toml")).unwrap(), std::fs::read(whole.join("best.toml")).unwrap());
    // Killed while the line is being written: the file is the old one or the new one.
    let torn = dir.join("torn");
    let o = sweep(&cfg, &torn, &[], Some("sweep.jsonl:partial#2"));
    assert!(!o.status.success());
    assert_eq!(untimed(&torn).len(), 1, "the half-written replacement never became sweep.jsonl");
    ok(&sweep(&cfg, &torn, &[], None));
    assert_eq!(untimed(&torn), untimed(&whole));
    let left: Vec<String> = std::fs::read_dir(&torn).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.contains(".tmp")).collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn parallel_runs_and_the_configuration_s_validation_classes() {
    let dir = tmp("val");
    let cfg = digits_config(&dir, &[("test_classes = [5, 6, 7, 8, 9]", "val_classes = [5, 6]\ntest_classes = [7, 8, 9]"), ("classes_per_batch = 3", "classes_per_batch = 5")]);
    let out = dir.join("sweep");
    ok(&margin(&["sweep", "--config", cfg.to_str().unwrap(), "--param", "train.loss.margin=0.1,0.3", "--param", "train.lr=3e-4", "--epochs", "1", "--jobs", "2", "--out", out.to_str().unwrap(), "-q"], None));
    let lines = untimed(&out);
    assert_eq!(lines.len(), 2);
    for l in &lines {
        let v = &l["validation"];
        assert_eq!(v["source"], "configuration");
        assert_eq!(v["classes"], serde_json::json!(["5", "6"]));
        assert_eq!(v["train_classes"], 5);
        assert_eq!(l["params"].as_array().unwrap().len(), 2);
    }
    // Two runs side by side give what they give one at a time.
    let serial = dir.join("serial");
    ok(&margin(&["sweep", "--config", cfg.to_str().unwrap(), "--param", "train.loss.margin=0.1,0.3", "--param", "train.lr=3e-4", "--epochs", "1", "--jobs", "1", "--out", serial.to_str().unwrap(), "-q"], None));
    let metrics = |ls: &[serde_json::Value]| ls.iter().map(|l| (l["metrics"].clone(), l["steps"].clone())).collect::<Vec<_>>();
    assert_eq!(metrics(&untimed(&serial)), metrics(&lines));
}

#[test]
fn a_diverged_run_is_a_result_and_never_best() {
    let dir = tmp("diverged");
    let cfg = digits_config(&dir, &[]);
    let out = dir.join("sweep");
    let stdout = ok(&margin(&["sweep", "--config", cfg.to_str().unwrap(), "--param", "train.lr=1e30,1e-3", "--epochs", "1", "--out", out.to_str().unwrap(), "-q"], None));
    let lines = untimed(&out);
    assert_eq!(lines[0]["status"]["kind"], "diverged");
    assert!(lines[0]["status"]["error"].as_str().unwrap().contains("lower train.lr"));
    assert!(lines[0]["metrics"].is_null() && lines[0]["diagnosis"]["verdict"] == "diverged");
    assert_eq!(lines[1]["status"]["kind"], "finished");
    assert!(stdout.contains("best: #2"), "{stdout}");
    let best: toml::Table = std::fs::read_to_string(out.join("best.toml")).unwrap().parse().unwrap();
    assert_eq!(best["train"]["lr"].as_float(), Some(1e-3));
}
