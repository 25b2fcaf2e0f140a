//! Preprocessing travels with the model: `margin embed` applies the model card's
//! preprocessing, refuses flags that contradict it, never invents labels, and still reads
//! a version-1 card (written before preprocessing was recorded) with a warning.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn digits_csv() -> PathBuf {
    let p = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    assert!(p.is_file(), "{} is needed (../shared next to the repository)", p.display());
    p
}

fn margin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").output().unwrap()
}

fn ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn refused(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(needle), "expected a refusal naming {needle:?}, got: {err}");
}

fn read(p: &Path) -> Array2<f32> {
    Array2::<f32>::read_npy(std::fs::File::open(p).unwrap()).unwrap()
}

/// Trains the bundled digits configuration (scale 16) for one epoch into `dir/run`.
fn trained_run(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("configs/digits.toml")).unwrap();
    let text = text.replace("../shared/data/sklearn_digits/digits.csv.gz", &digits_csv().display().to_string()).replace("epochs = 3", "epochs = 1");
    let cfg = dir.join("digits.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    ok(&margin(&["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "--no-eval", "-q"]));
    run
}

#[test]
fn embed_applies_the_card_and_refuses_contradictions() {
    let dir = std::env::temp_dir().join(format!("margin-embed-card-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = trained_run(&dir);
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["version"], 4);
    assert_eq!(card["preprocessing"], serde_json::json!({"kind": "features", "dim": 64, "scale": 16.0}));

    let (model, input) = (run.to_str().unwrap(), digits_csv());
    let input = input.to_str().unwrap();
    let e = |name: &str| dir.join(name).to_str().unwrap().to_string();
    // The card's scale is applied without a flag; repeating it is accepted and identical.
    ok(&margin(&["embed", "--model", model, "--input", input, "--out", &e("a.npy")]));
    ok(&margin(&["embed", "--model", model, "--input", input, "--scale", "16", "--out", &e("b.npy")]));
    let a = read(Path::new(&e("a.npy")));
    assert_eq!(a.dim(), (1797, 32));
    assert_eq!(a, read(Path::new(&e("b.npy"))));
    // Contradicting flags are refused, naming them.
    refused(&margin(&["embed", "--model", model, "--input", input, "--scale", "8", "--out", &e("c.npy")]), "--scale 8 contradicts the model card");
    refused(&margin(&["embed", "--model", model, "--input", input, "--invert", "--out", &e("c.npy")]), "--invert");
    assert!(!dir.join("c.npy").exists(), "a refused command writes nothing");

    // An .npy input has no labels: --labels-out is refused instead of writing made-up ones.
    let rows = dir.join("rows.npy");
    let x: Vec<f32> = (0..3 * 64).map(|i| (i % 17) as f32).collect();
    margin_data::npy::write_npy_f32(&rows, &[3, 64], &x).unwrap();
    refused(
        &margin(&["embed", "--model", model, "--input", rows.to_str().unwrap(), "--out", &e("d.npy"), "--labels-out", &e("l.npy")]),
        "has no labels",
    );
    assert!(!dir.join("l.npy").exists());
    // Without --labels-out it embeds, scaled by the card: the same rows as the CSV path gives
    // for the same values.
    ok(&margin(&["embed", "--model", model, "--input", rows.to_str().unwrap(), "--out", &e("d.npy")]));
    assert_eq!(read(Path::new(&e("d.npy"))).dim(), (3, 32));

    // A version-1 card (no version, no preprocessing) still loads; the flags decide, with a warning.
    let mut old = card.clone();
    old.as_object_mut().unwrap().remove("version");
    old.as_object_mut().unwrap().remove("preprocessing");
    std::fs::write(run.join("model.json"), serde_json::to_vec(&old).unwrap()).unwrap();
    // …beside weights as that margin wrote them: without the card's hash (margin-models'
    // weights.rs), which a newer save binds to its own card.
    let mut w = std::fs::read(run.join("model.safetensors")).unwrap();
    let at = w.windows(24).position(|x| x == b"margin.model_card_sha256").expect("the card's hash is in the weights");
    w[at..at + 6].copy_from_slice(b"xxxxxx");
    std::fs::write(run.join("model.safetensors"), &w).unwrap();
    let out = margin(&["embed", "--model", model, "--input", input, "--scale", "16", "--out", &e("f.npy")]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("records no preprocessing"));
    assert_eq!(read(Path::new(&e("f.npy"))), a, "the old card with the right flags gives the same embeddings");

    // A card from a newer margin is refused with a message saying what to do.
    let mut newer = card.clone();
    newer["version"] = serde_json::json!(99);
    std::fs::write(run.join("model.json"), serde_json::to_vec(&newer).unwrap()).unwrap();
    refused(&margin(&["embed", "--model", model, "--input", input, "--out", &e("g.npy")]), "upgrade margin");
    let _ = std::fs::remove_dir_all(&dir);
}
