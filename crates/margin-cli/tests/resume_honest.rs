//! `margin train --resume` continues the run the folder holds, unchanged: overrides that
//! would change what was trained are refused (naming them), `--epochs` only extends, an
//! edited config.toml or changed data is refused (moved data is fine), run folders from
//! before the manifest still resume, and a missing output folder is named as such.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn digits_csv() -> PathBuf {
    let p = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    assert!(p.is_file(), "{} is needed (../shared next to the repository)", p.display());
    p
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-resume-honest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The digits config reading `csv`.
fn config(dir: &Path, csv: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("configs/digits.toml")).unwrap().replace("../shared/data/sklearn_digits/digits.csv.gz", &csv.display().to_string());
    let p = dir.join("digits.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn margin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").env_remove("RUST_BACKTRACE").output().unwrap()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "should fail; stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A 2-epoch run (2 batches an epoch) of the digits config in `dir/run`.
fn two_epochs(dir: &Path, csv: &Path) -> PathBuf {
    let cfg = config(dir, csv);
    let run = dir.join("run");
    ok(&margin(&["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--epochs", "2", "--batches-per-epoch", "2", "--no-eval"]));
    run
}

#[test]
fn resume_refuses_overrides_that_change_the_run() {
    let dir = tmp("overrides");
    let run = two_epochs(&dir, &digits_csv());
    let r = run.to_str().unwrap();
    let config_before = std::fs::read(run.join("config.toml")).unwrap();
    for (flag, value, field) in [("--lr", "0.01", "train.lr"), ("--seed", "7", "train.seed"), ("--batches-per-epoch", "5", "train.sampler.batches_per_epoch"), ("--val-fraction", "0.2", "split.val_fraction")] {
        let e = fails(&margin(&["train", "--resume", r, flag, value, "-q", "--no-eval"]));
        assert!(e.contains(&format!("{flag} {value}")) && e.contains(field) && e.contains("--out NEWDIR"), "{flag}: {e}");
    }
    // Fewer epochs than completed: both numbers named, config.toml untouched.
    let e = fails(&margin(&["train", "--resume", r, "--epochs", "1", "-q", "--no-eval"]));
    assert!(e.contains("epochs = 1") && e.contains("the 2 epochs the run has completed"), "{e}");
    assert_eq!(std::fs::read(run.join("config.toml")).unwrap(), config_before, "a refused resume leaves config.toml as it was");
    // The stored values themselves, --threads and a longer run are fine.
    ok(&margin(&["train", "--resume", r, "--lr", "0.0003", "--seed", "0", "--batches-per-epoch", "2", "--threads", "1", "--epochs", "3", "-q", "--no-eval"]));
    let log = std::fs::read_to_string(run.join("train_log.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains(r#""kind":"step""#)).count(), 6, "3 epochs of 2 batches");
    // A folder holding checkpoints is not overwritten by a new run, even without its pointer.
    std::fs::remove_file(run.join("checkpoint.json")).unwrap();
    let e = fails(&margin(&["train", "--config", dir.join("digits.toml").to_str().unwrap(), "--out", r, "-q"]));
    assert!(e.contains("already holds a run") && e.contains("--resume"), "{e}");
    // A missing output folder is named, not the temporary file.
    let out = dir.join("nodir/x.npy");
    let e = fails(&margin(&["embed", "--model", r, "--input", digits_csv().to_str().unwrap(), "--scale", "16", "--out", out.to_str().unwrap()]));
    assert!(e.contains("nodir") && e.contains("does not exist") && !e.contains(".tmp"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_refuses_an_edited_config_and_other_data_but_follows_moved_data() {
    let dir = tmp("edits");
    let csv = dir.join("digits.csv.gz");
    std::fs::copy(digits_csv(), &csv).unwrap();
    let run = two_epochs(&dir, &csv);
    let r = run.to_str().unwrap();
    let original = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for (from, to, field) in [("scale = 16.0", "scale = 8.0", "data.scale"), ("embedding_dim = 32", "embedding_dim = 16", "train.model.embedding_dim"), ("max_pairs = 200000", "max_pairs = 1000", "eval.max_pairs")] {
        assert!(original.contains(from), "{from}");
        std::fs::write(run.join("config.toml"), original.replace(from, to)).unwrap();
        let e = fails(&margin(&["train", "--resume", r, "--epochs", "3", "-q", "--no-eval"]));
        assert!(e.contains("config.toml was edited after the run started") && e.contains(field) && e.contains("margin train --config"), "{field}: {e}");
        assert!(!run.join("checkpoints/epoch-0003").exists(), "nothing trained");
    }
    std::fs::write(run.join("config.toml"), &original).unwrap();
    // Other bytes under the same name: refused, naming the file.
    std::fs::write(&csv, b"0,1\n2,3\n").unwrap();
    let e = fails(&margin(&["train", "--resume", r, "--epochs", "3", "-q", "--no-eval"]));
    assert!(e.contains("data.path") && e.contains("digits.csv.gz") && e.contains("not the data the run was trained on"), "{e}");
    // The same bytes somewhere else, the path edited: resumes.
    std::fs::remove_file(&csv).unwrap();
    let moved = dir.join("moved.csv.gz");
    std::fs::copy(digits_csv(), &moved).unwrap();
    std::fs::write(run.join("config.toml"), original.replace(&csv.display().to_string(), &moved.display().to_string())).unwrap();
    ok(&margin(&["train", "--resume", r, "--epochs", "3", "-q", "--no-eval"]));
    assert!(run.join("checkpoints/epoch-0003").is_dir());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_folders_from_before_the_manifest_still_resume() {
    let dir = tmp("old");
    let run = two_epochs(&dir, &digits_csv());
    let r = run.to_str().unwrap();
    // What an older margin wrote: no run.json.
    std::fs::remove_file(run.join("run.json")).unwrap();
    // Its [train] section is still checked against the checkpoint's stored configuration.
    let original = std::fs::read_to_string(run.join("config.toml")).unwrap();
    std::fs::write(run.join("config.toml"), original.replace("embedding_dim = 32", "embedding_dim = 16")).unwrap();
    let e = fails(&margin(&["train", "--resume", r, "--epochs", "3", "-q"]));
    assert!(e.contains("does not match the configuration stored with the run's checkpoint") && e.contains("train.model.embedding_dim"), "{e}");
    std::fs::write(run.join("config.toml"), &original).unwrap();
    ok(&margin(&["train", "--resume", r, "--epochs", "3", "-q"]));
    assert!(run.join("run.json").is_file(), "the resumed run has a manifest from now on");
    // The result is usable: embed reads the model back.
    let e = dir.join("e.npy");
    ok(&margin(&["embed", "--model", r, "--input", digits_csv().to_str().unwrap(), "--scale", "16", "--out", e.to_str().unwrap()]));
    let _ = std::fs::remove_dir_all(dir);
}
