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
    train_on(dir, "imgs", name, seed, 1, 3, "1e-3")
}

fn train_on(dir: &Path, data: &str, name: &str, seed: u64, epochs: usize, batches: usize, lr: &str) -> PathBuf {
    let cfg = format!(
        "[data]\nkind = \"image_folder\"\npath = \"{}\"\nimage_size = {SIZE}\n\n[split]\ntest_fraction = 0.34\n\n[train]\nseed = {seed}\nepochs = {epochs}\nlr = {lr}\n\n\
         [train.model]\nkind = \"convnet4\"\nwidth = 8\nembedding_dim = 16\nnormalize = true\n\n[train.loss]\nkind = \"triplet\"\nmargin = 0.2\n\n\
         [train.miner]\nkind = \"batch-hard\"\n\n[train.sampler]\nclasses_per_batch = 3\nsamples_per_class = 4\n",
        dir.join(data).display()
    );
    std::fs::write(dir.join(format!("{name}.toml")), cfg).unwrap();
    let run = dir.join(name);
    ok(&["train", "--config", dir.join(format!("{name}.toml")).to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-eval", "--batches-per-epoch", &batches.to_string()]);
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

/// A unique smooth texture: three seeded blobs.
fn texture(seed: u64, side: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32
    };
    let blobs: Vec<(f32, f32, f32, f32)> = (0..3).map(|_| (next() * 16.0, next() * 16.0, 1.5 + 3.0 * next(), 60.0 + 180.0 * next())).collect();
    let k = 16.0 / side as f32;
    (0..side * side)
        .map(|p| {
            let (y, x) = ((p / side) as f32 * k, (p % side) as f32 * k);
            blobs.iter().map(|&(by, bx, r, a)| a * (-((y - by).powi(2) + (x - bx).powi(2)) / (2.0 * r * r)).exp()).sum::<f32>().min(255.0)
        })
        .collect()
}

fn pgm_of(path: &Path, v: &[f32], w: usize, h: usize) {
    let mut b = format!("P5 {w} {h} 255\n").into_bytes();
    b.extend(v.iter().map(|x| x.round().clamp(0.0, 255.0) as u8));
    std::fs::write(path, b).unwrap();
}

/// Dedup of a folder with planted exact and near duplicates (re-quantised, resized,
/// cropped copies): precision and recall of the planted pairs, printed and held to a floor.
#[test]
fn dedup_finds_planted_near_duplicates_in_an_image_folder() {
    let dir = harness::scratch("search-model-dedup");
    // Training classes: 12 textures, each drawn 6 times with seeded noise and shifts.
    for c in 0..12u64 {
        let d = dir.join("tex").join(format!("t{c}"));
        std::fs::create_dir_all(&d).unwrap();
        let t = texture(1000 + c, SIZE + 2);
        for i in 0..6usize {
            let (dy, dx) = (i % 3, i / 3);
            let img: Vec<f32> = (0..SIZE * SIZE).map(|p| t[(p / SIZE + dy) * (SIZE + 2) + p % SIZE + dx] + ((p * 13 + i * 5) % 21) as f32 - 10.0).collect();
            pgm_of(&d.join(format!("{i}.pgm")), &img, SIZE, SIZE);
        }
    }
    let run = train_on(&dir, "tex", "run", 0, 8, 4, "3e-3");
    let pool = dir.join("pool");
    let originals = 60;
    for i in 0..originals {
        let d = pool.join(format!("set{}", i % 4));
        std::fs::create_dir_all(&d).unwrap();
        pgm_of(&d.join(format!("img{i:02}.pgm")), &texture(i as u64 + 1, SIZE), SIZE, SIZE);
    }
    let copies = pool.join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    let mut planted = Vec::new();
    for i in 0..20 {
        let orig = format!("set{}/img{i:02}.pgm", i % 4);
        let t = texture(i as u64 + 1, SIZE);
        let (name, img, w, h) = match i % 4 {
            0 => ("exact", t.clone(), SIZE, SIZE),
            // Re-quantised: ±3 grey levels of seeded noise.
            1 => ("requant", t.iter().enumerate().map(|(p, v)| v + ((p * 7 + i) % 7) as f32 - 3.0).collect(), SIZE, SIZE),
            // Resized: drawn at 12 × 12 (the loader resizes it back to 16).
            2 => ("resized", texture(i as u64 + 1, 12), 12, 12),
            // Cropped: one pixel off each side (14 × 14).
            _ => ("cropped", (0..14 * 14).map(|p| t[(p / 14 + 1) * SIZE + p % 14 + 1]).collect(), 14, 14),
        };
        let file = format!("copies/{name}{i:02}.pgm");
        pgm_of(&pool.join(&file), &img, w, h);
        planted.push((orig, file));
    }
    let measure = |threshold: &str| -> (f64, f64) {
        let out = dir.join("groups.json");
        let said = ok(&["dedup", "-q", "--model", run.to_str().unwrap(), "--input", pool.to_str().unwrap(), "--metric", "cosine", "--threshold", threshold, "--out", out.to_str().unwrap()]);
        assert!(said.contains("from --threshold"), "{said}");
        let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let mut found = Vec::new();
        for g in v["groups"].as_array().unwrap() {
            let mut all: Vec<&str> = vec![g["representative"].as_str().unwrap()];
            all.extend(g["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()));
            for a in 0..all.len() {
                for b in a + 1..all.len() {
                    found.push((all[a].to_string(), all[b].to_string()));
                }
            }
        }
        let is_planted = |(a, b): &(String, String)| planted.iter().any(|(x, y)| (x == a && y == b) || (x == b && y == a));
        let tp = found.iter().filter(|p| is_planted(p)).count();
        let precision = if found.is_empty() { 0.0 } else { tp as f64 / found.len() as f64 };
        let recall = tp as f64 / planted.len() as f64;
        println!("threshold {threshold}: {} pairs found, {tp} of {} planted: precision {precision:.3}, recall {recall:.3}", found.len(), planted.len());
        (precision, recall)
    };
    // Measured (2026-12-01; seeded, so the same on every run): cosine threshold 0.01 →
    // precision 0.306 recall 0.950; 0.005 → 0.526 / 1.000; 0.002 → 0.842 / 0.800;
    // 0.001 → 0.941 / 0.800; 0.0002 → 1.000 / 0.650. The floors sit below the 0.001 figures.
    // The threshold is given by hand: the card's calibrated dedup threshold is not there yet.
    let (precision, recall) = measure("0.001");
    assert!(precision >= 0.85 && recall >= 0.7, "precision {precision:.3}, recall {recall:.3}");
    // Exact copies are always found, at any threshold >= 0.
    let (_, r0) = measure("0.0000001");
    assert!(r0 >= 0.25, "exact copies (5 of 20 planted): recall {r0:.3}");
    let html = std::fs::read_to_string(dir.join("groups.html")).unwrap();
    assert!(html.contains("copies/exact00.pgm"), "the page lists the groups");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `margin train` with validation classes records calibrated thresholds (card version 3);
/// `margin verify --model` decides with them and says so; a rate the pairs cannot resolve,
/// and a metric the thresholds are not in, are refused.
#[test]
fn train_calibrates_thresholds_and_verify_uses_them() {
    let dir = harness::scratch("search-model-calibrate");
    for c in 0..30u64 {
        let d = dir.join("tex").join(format!("t{c:02}"));
        std::fs::create_dir_all(&d).unwrap();
        let t = texture(2000 + c, SIZE + 2);
        for i in 0..8usize {
            let (dy, dx) = (i % 3, (i / 3) % 3);
            let img: Vec<f32> = (0..SIZE * SIZE).map(|p| t[(p / SIZE + dy) * (SIZE + 2) + p % SIZE + dx] + ((p * 13 + i * 5) % 21) as f32 - 10.0).collect();
            pgm_of(&d.join(format!("{i}.pgm")), &img, SIZE, SIZE);
        }
    }
    let cfg = format!(
        "[data]\nkind = \"image_folder\"\npath = \"{}\"\nimage_size = {SIZE}\n\n[split]\ntest_fraction = 0.2\nval_fraction = 0.5\n\n[train]\nseed = 0\nepochs = 6\nlr = 3e-3\n\n\
         [train.model]\nkind = \"convnet4\"\nwidth = 8\nembedding_dim = 16\nnormalize = true\n\n[train.loss]\nkind = \"triplet\"\nmargin = 0.2\n\n\
         [train.miner]\nkind = \"batch-hard\"\n\n[train.sampler]\nclasses_per_batch = 4\nsamples_per_class = 4\n",
        dir.join("tex").display()
    );
    std::fs::write(dir.join("c.toml"), cfg).unwrap();
    let run = dir.join("run");
    ok(&["train", "--config", dir.join("c.toml").to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-eval", "--batches-per-epoch", "4"]);
    let card: Value = serde_json::from_slice(&std::fs::read(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["version"], 3);
    let t = &card["thresholds"];
    assert_eq!(t["metric"], "euclidean");
    // "validation classes: C classes, N samples": every pair of the N samples is used, and
    // with 8 images a class, C · 28 of them are genuine.
    let source = t["source"].as_str().unwrap();
    let words: Vec<&str> = source.split(|c: char| c == ' ' || c == ',').filter(|w| !w.is_empty()).collect();
    assert_eq!(words[..2], ["validation", "classes:"], "{source}");
    let (c, n): (u64, u64) = (words[2].parse().unwrap(), words[4].parse().unwrap());
    let (g, i) = (t["n_genuine"].as_u64().unwrap(), t["n_impostor"].as_u64().unwrap());
    assert_eq!((n, g, g + i), (8 * c, c * 28, n * (n - 1) / 2), "{t}");
    let eer = t["eer_threshold"].as_f64().unwrap();
    assert!(eer > 0.0 && eer < 2.0, "{t}");
    assert!(t["far"][0]["threshold"].as_f64().is_some(), "FAR 1e-2 is estimable from {i} impostor pairs: {t}");
    assert!(t["far"][1]["note"].as_str().unwrap().contains("not estimable"), "{t}");
    println!("calibrated: {t}");
    // Pairs from the test classes: a genuine pair (two draws of one texture) and an impostor.
    let pool = dir.join("pool");
    for (name, seed) in [("a", 5000u64), ("b", 6000)] {
        let d = pool.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let t = texture(seed, SIZE + 2);
        for k in 0..2usize {
            let img: Vec<f32> = (0..SIZE * SIZE).map(|p| t[(p / SIZE + k) * (SIZE + 2) + p % SIZE] + ((p * 13 + k * 5) % 21) as f32 - 10.0).collect();
            pgm_of(&d.join(format!("{k}.pgm")), &img, SIZE, SIZE);
        }
    }
    let (r, p) = (run.to_str().unwrap(), pool.to_str().unwrap());
    let genuine = ok(&["verify", "--model", r, "--input", p, "a/0.pgm", "a/1.pgm"]);
    assert!(genuine.contains("EER threshold") && genuine.contains("model.json"), "{genuine}");
    // The impostor is decided at the FAR 1e-2 threshold: at the EER threshold about one
    // impostor pair in ten (the EER) is accepted by design, so one fixed pair proves nothing.
    let impostor = ok(&["verify", "--model", r, "--input", p, "a/0.pgm", "b/0.pgm", "--json", "--far", "1e-2"]);
    let imp: Value = serde_json::from_str(impostor.trim()).unwrap();
    println!("genuine: {genuine}impostor: {imp}");
    assert!(genuine.contains("same"), "{genuine}");
    assert_eq!(imp["match"], false, "{imp}");
    assert!(imp["threshold_source"].as_str().unwrap().contains("FAR 1e-2"), "{imp}");
    let at_far = ok(&["verify", "--model", r, "--input", p, "a/0.pgm", "a/1.pgm", "--far", "1e-2"]);
    assert!(at_far.contains("FAR 1e-2"), "{at_far}");
    let out = margin(&["verify", "--model", r, "--input", p, "a/0.pgm", "a/1.pgm", "--far", "1e-3"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not estimable"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = margin(&["verify", "--model", r, "--input", p, "a/0.pgm", "a/1.pgm", "--far", "1e-2", "--metric", "cosine"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("euclidean distances"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
