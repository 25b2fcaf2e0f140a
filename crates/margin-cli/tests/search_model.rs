//! `--model RUN --input DIR` on the search commands: a small ConvNet-4 trained here on a
//! generated image folder, an index of the folder built through the embed path, search and
//! verify by image path, dedup of planted duplicates, and an index of another model refused.

#[path = "bad_input/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SIZE: usize = 16;

fn margin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").env_remove("RUST_BACKTRACE").output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = margin(args);
    assert!(out.status.success(), "margin {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pgm(path: &Path, px: &[u8]) {
    let mut b = format!("P5 {SIZE} {SIZE} 255\n").into_bytes();
    b.extend_from_slice(px);
    std::fs::write(path, b).unwrap();
}

/// Class `c`'s image `i`: a bright bar whose row and slope depend on the class, with
/// seeded per-image noise.
fn image(c: usize, i: usize) -> Vec<u8> {
    let mut s = (c * 131 + i * 7 + 1) as u64;
    (0..SIZE * SIZE)
        .map(|p| {
            let (y, x) = (p / SIZE, p % SIZE);
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = (s >> 59) as i32 * 6;
            let bar = (y as i32 - (2 + 2 * c as i32) - (x as i32 * (c as i32 % 3)) / 4).abs() <= 1;
            (if bar { 200 } else { 30 } + noise).clamp(0, 255) as u8
        })
        .collect()
}

/// A folder of 6 classes × 8 images.
fn folder(root: &Path) {
    for c in 0..6 {
        let d = root.join(format!("class{c}"));
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..8 {
            pgm(&d.join(format!("{i}.pgm")), &image(c, i));
        }
    }
}

fn train(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let cfg = format!(
        "[data]\nkind = \"image_folder\"\npath = \"{}\"\nimage_size = {SIZE}\n\n[split]\ntest_fraction = 0.34\n\n[train]\nseed = {seed}\nepochs = 1\nlr = 1e-3\n\n\
         [train.model]\nkind = \"convnet4\"\nwidth = 8\nembedding_dim = 16\nnormalize = true\n\n[train.loss]\nkind = \"triplet\"\nmargin = 0.2\n\n\
         [train.miner]\nkind = \"batch-hard\"\n\n[train.sampler]\nclasses_per_batch = 3\nsamples_per_class = 4\n",
        dir.join("imgs").display()
    );
    std::fs::write(dir.join(format!("{name}.toml")), cfg).unwrap();
    let run = dir.join(name);
    ok(&["train", "--config", dir.join(format!("{name}.toml")).to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-eval", "--batches-per-epoch", "3"]);
    run
}

#[test]
fn model_input_indexes_searches_verifies_and_refuses_another_model() {
    let dir = harness::scratch("search-model");
    folder(&dir.join("imgs"));
    let run = train(&dir, "run", 0);
    let other = train(&dir, "other", 1);
    let (r, imgs, idx) = (run.to_str().unwrap(), dir.join("imgs"), dir.join("g.idx"));
    let (imgs, idx) = (imgs.to_str().unwrap(), idx.to_str().unwrap());
    let said = ok(&["index", "build", "-q", "--model", r, "--input", imgs, "--out", idx, "--metric", "cosine"]);
    assert!(said.contains("indexed 48 items (16-d"), "{said}");
    let info: Value = serde_json::from_str(&ok(&["index", "info", idx, "--json"])).unwrap();
    let fp = info["fingerprint"].as_str().unwrap();
    assert!(fp.contains("model.safetensors sha256:") && fp.contains("grey_image"), "{fp}");
    // Every image finds itself first (ids are the image paths, queries named by them too).
    let v: Value = serde_json::from_str(&ok(&["search", "--index", idx, "--model", r, "--input", imgs, "-k", "3", "--json"])).unwrap();
    for q in v.as_array().unwrap() {
        assert_eq!(q["query"], q["neighbors"][0]["id"], "{q}");
        assert!(q["neighbors"][0]["distance"].as_f64().unwrap() < 1e-4);
    }
    assert_eq!(v[0]["query"], "class0/0.pgm");
    // The same images embedded by another model: refused, naming both models.
    let out = margin(&["search", "--index", idx, "--model", other.to_str().unwrap(), "--input", imgs, "-k", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("built by model") && err.contains("re-index"), "{err}");
    // An index of precomputed embeddings cannot be checked against a model.
    let e = dir.join("e.npy");
    ok(&["embed", "--model", r, "--input", imgs, "--out", e.to_str().unwrap()]);
    let idx2 = dir.join("pre.idx");
    ok(&["index", "build", "-q", "--embeddings", e.to_str().unwrap(), "--out", idx2.to_str().unwrap()]);
    let out = margin(&["search", "--index", idx2.to_str().unwrap(), "--model", r, "--input", imgs]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("records no model"), "{}", String::from_utf8_lossy(&out.stderr));
    // Verify by image path: an image with itself matches at any threshold ≥ 0.
    let said = ok(&["verify", "--model", r, "--input", imgs, "class1/0.pgm", "class1/0.pgm", "--metric", "cosine", "--threshold", "0.001"]);
    assert!(said.contains("same"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
